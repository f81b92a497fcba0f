"""(question, passage) pairs for the retrieval agent, built from the travel catalog.

The catalog becomes an index of short passages, one per fact a traveller asks about (a place,
where to stay, how to get there and around, when to go, customs, safety, costs). Passages
state the fact without saying which question it answers ("Shinkansen bullet trains between
cities..."), so matching a question to a passage takes meaning, not a shared heading word.

Held out by destination, like the travel plans: the test questions ask about countries no
training pair mentions, with question templates no training pair uses. Hard negatives are the
same kind of passage from another destination: the embedder must learn the place, not the topic.
"""

from __future__ import annotations

from domaintune.data.catalog import Destination, DestinationFile
from domaintune.data.common import heldout, load_checked, rng
from domaintune.data.travel import months
from domaintune.params import RetrievalData

# Questions per facet. {dest}: the destination, {city}: a city of it, {place}: an attraction.
QUESTIONS: dict[str, list[str]] = {
    "place": [
        "What is {place} like?", "Is {place} worth a visit?", "Tell me about {place} in {city}.",
        "Any tips for visiting {place}?", "what's special about {place}", "Should I go to {place} when I'm in {city}?",
        "When is the best time of day to see {place}?", "How long do I need at {place}?",
    ],
    "stay": [
        "Where should I stay in {city}?", "Which area of {city} is best for a first trip?",
        "Good neighbourhood to book a hotel in {city}?", "best part of {city} to stay in",
        "We're a family visiting {city}: which district should we pick for our hotel?",
        "Where do couples usually stay in {city}?",
    ],
    "arrive": [
        "How do I get to {dest}?", "Which airport should I fly into for {dest}?", "getting to {dest} from abroad",
        "What's the easiest way to reach {dest}?", "Where do international flights land for {dest}?",
        "how do people usually travel into {dest}",
    ],
    "around": [
        "How do I get around {dest}?", "What's public transport like in {dest}?", "Do I need a car in {dest}?",
        "best way to move between cities in {dest}", "Is there a metro or train network in {dest}?",
        "How should we travel around once we're in {dest}?",
    ],
    "when": [
        "When is the best time to visit {dest}?", "Which months should I avoid for {dest}?",
        "what season is good for a trip to {dest}", "Is summer a good time to go to {dest}?",
        "When does {dest} have its best weather?", "What time of year is {dest} at its worst?",
    ],
    "customs": [
        "What local customs should I know in {dest}?", "Do people tip in {dest}?", "etiquette tips for {dest}",
        "How should I dress and behave respectfully in {dest}?", "Any cultural do's and don'ts for {dest}?",
        "What could offend locals in {dest}?",
    ],
    "safety": [
        "Is {dest} safe for tourists?", "What scams should I watch for in {dest}?", "safety tips for {dest}",
        "Anything dangerous I should know about before going to {dest}?", "How safe is it to travel around {dest}?",
        "What are the main risks for visitors in {dest}?",
    ],
    "cost": [
        "How expensive is {dest}?", "What does a day in {dest} cost?", "daily budget for {dest}",
        "How much money do I need per day in {dest}?", "Is {dest} cheap for backpackers?",
        "What should I budget for a mid-range trip to {dest}?",
    ],
}


def passages(dest: Destination) -> list[dict]:
    """The destination's facts as index passages: ``{"id", "dest", "facet", "text", "place", "city"}``."""
    d, out = dest.name, []

    def add(facet: str, text: str, **extra: str) -> None:
        out.append({"id": f"{d}#{facet}#{len([p for p in out if p['facet'] == facet])}", "dest": d,
                    "facet": facet, "text": text, **extra})

    for a in dest.attractions:
        add("place", f"{a.name}, {a.city} ({d}): {a.note}.", place=a.name, city=a.city)
    for s in dest.stay_areas:
        add("stay", f"{s.name} in {s.city}, {d}: good for {s.good_for}.", city=s.city)
    add("arrive", f"{d}: {dest.getting_there}.")
    add("around", f"{d}: {dest.local_transport}.")
    best = f"{months(dest.best_months)}: {dest.best_reason}"
    worst = f" Less good in {months(dest.worst_months)}: {dest.worst_reason}." if dest.worst_months else ""
    add("when", f"{d} is best in {best}.{worst}")
    add("customs", f"{d}: " + "; ".join(dest.customs) + ".")
    add("safety", f"{d}: " + "; ".join(dest.safety) + ".")
    c = dest.daily_cost_usd
    add("cost", f"{d} per person per day, international flights aside: about USD {c.budget:g} on a budget, "
                f"{c.mid:g} mid-range, {c.luxury:g} in luxury (currency {dest.currency}).")
    return out


def _question(template: str, p: dict) -> str:
    return template.format(dest=p["dest"], city=p.get("city", p["dest"]), place=p.get("place", p["dest"]))


def build_retrieval(cfg: RetrievalData, seed: int) -> tuple[dict[str, list[dict]], dict]:
    """``{"corpus", "train", "test"}`` rows and their stats.

    corpus: every passage of the catalog (the index searched at test time, all destinations);
    train: ``{"query", "positive", "negative"}`` (hard negative: the same facet elsewhere);
    test: ``{"query", "dest", "facet", "relevant": [passage ids]}`` on held-out destinations.
    """
    dests = load_checked(cfg.catalog, DestinationFile).destinations
    r = rng(seed, "retrieval")
    test_countries = heldout(sorted({d.country for d in dests}), cfg.test_fraction, minimum=2)
    corpus = [p for d in dests for p in passages(d)]
    by_facet: dict[str, list[dict]] = {}
    for p in corpus:
        by_facet.setdefault(p["facet"], []).append(p)
    test_templates = {f: heldout(ts, cfg.heldout_template_share) for f, ts in QUESTIONS.items()}
    train, test = [], []
    for dest in dests:
        is_test = dest.country in test_countries
        mine = [p for p in corpus if p["dest"] == dest.name]
        for p in mine:
            templates = [t for t in QUESTIONS[p["facet"]] if (t in test_templates[p["facet"]]) == is_test]
            if is_test:
                # One question per passage; a stay question is answered by any stay area of that city.
                q = _question(r.choice(templates), p)
                same = [o["id"] for o in mine if o["facet"] == p["facet"]
                        and (p["facet"] != "stay" or o.get("city") == p.get("city"))]
                relevant = [p["id"]] if p["facet"] == "place" else same
                if not any(t["query"] == q for t in test):
                    test.append({"query": q, "dest": dest.name, "facet": p["facet"], "relevant": relevant})
                continue
            others = [o for o in by_facet[p["facet"]] if o["dest"] != dest.name
                      and o["dest"] not in {x.name for x in dests if x.country in test_countries}]
            for t in r.sample(templates, min(cfg.questions_per_passage, len(templates))):
                train.append({"query": _question(t, p), "positive": p["text"], "negative": r.choice(others)["text"]})
    r.shuffle(train)
    stats = {"passages": len(corpus), "destinations": len(dests), "train_pairs": len(train),
             "test_queries": len(test), "heldout": {"countries": sorted(test_countries),
                                                    "destinations": sorted({t["dest"] for t in test})},
             "test_by_facet": {f: sum(t["facet"] == f for t in test) for f in QUESTIONS}}
    return {"corpus": corpus, "train": train, "test": test}, stats
