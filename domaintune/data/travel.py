"""Travel-planning conversations generated from the hand-written destination catalog.

Answers are specific and checkable: the budget line items add up to no more than the stated
budget, every named place comes from the catalog, tips follow the traveler type. Test
records use destinations that no training record mentions.
"""

from __future__ import annotations

import math
from pathlib import Path

from domaintune.cli import InputError
from domaintune.data.common import heldout, load_yaml, rng
from domaintune.params import TravelData

SYSTEM = "You are a friendly, precise travel planner. Give concrete plans with budgets that add up."
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
REQUESTS = [
    "Plan a {days}-day trip to {dest} for {who} with a budget of {budget}.",
    "Can you make me a {days}-day itinerary for {dest}? It's {who} and we have {budget} in total.",
    "I have {budget} for {days} days in {dest}, {who}. What should the plan look like?",
    "{dest} for {days} days, {who}, total budget {budget}. Help me plan it.",
    "Suggest a {days} day {dest} itinerary, {who}, spending at most {budget}.",
    "We're thinking about {dest}: {days} days, {budget}, {who}. Can you put together a plan?",
]
FOLLOWUPS = [
    "Would you like me to suggest specific hotels in {area}?",
    "Should I add a day trip or adjust the pace of any day?",
    "Do you want me to rebalance the budget towards food or activities?",
    "Would you like tips on getting from the airport to {area}?",
]
SHARES = (("Stay", 0.40), ("Food", 0.25), ("Local transport", 0.15), ("Activities and entry fees", 0.20))


def money(amount: float, currency: str) -> str:
    if currency == "INR":
        # Indian digit grouping (2,00,000), as Indian travelers write budgets.
        s = str(int(round(amount)))
        head, tail = s[:-3], s[-3:]
        groups = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        return "INR " + ",".join(([head] if head else []) + groups + [tail])
    return f"USD {int(round(amount)):,}"


def load_catalog(catalog: str | Path, travelers: str | Path) -> tuple[list[dict], list[dict]]:
    dests = load_yaml(catalog, required=("destinations",))["destinations"]
    types = load_yaml(travelers, required=("travelers",))["travelers"]
    for i, d in enumerate(dests):
        for key in ("name", "currency", "best_months", "best_reason", "daily_cost_usd", "attractions",
                    "stay_areas", "customs"):
            if key not in d:
                raise InputError(f"{catalog}: destinations[{i}] ({d.get('name', '?')}): missing key {key!r}")
        if len(d["attractions"]) < 3:
            raise InputError(f"{catalog}: destinations[{i}] ({d['name']}): needs at least 3 attractions")
    for i, t in enumerate(types):
        for key in ("id", "label", "party_size", "default_tier", "phrasings", "tips"):
            if key not in t:
                raise InputError(f"{travelers}: travelers[{i}]: missing key {key!r}")
    return dests, types


def plan_answer(dest: dict, who: dict, days: int, currency: str, fx: float, budget: float,
                r, followup: bool) -> tuple[str, dict]:
    party = who["party_size"]
    per_day = dest["daily_cost_usd"][who["default_tier"]] * party * (fx if currency == "INR" else 1.0)
    spend = per_day * days
    lines = [f"Here is a {days}-day {dest['name']} plan for a {who['label']} on {money(budget, currency)}.", "",
             f"Budget breakdown for {party} {'person' if party == 1 else 'people'}, excluding international flights:"]
    total = 0
    for label, share in SHARES:
        amount = math.floor(spend * share / 100) * 100 if currency == "INR" else math.floor(spend * share)
        total += amount
        lines.append(f"- {label}: {money(amount, currency)}")
    lines.append(f"Total: {money(total, currency)}, leaving {money(budget - total, currency)} as a buffer.")
    lines += ["", "Day by day:"]
    sights = r.sample(dest["attractions"], k=min(days, len(dest["attractions"])))
    places = []
    for day in range(days):
        a = sights[day % len(sights)]
        if day < len(sights):
            places.append(a["name"])
            lines.append(f"Day {day + 1}: {a['name']} in {a['city']}: {a['note']}.")
        else:
            lines.append(f"Day {day + 1}: a slower day around {a['city']}, markets and local food.")
    area = r.choice(dest["stay_areas"])
    places.append(area["name"])
    lines += ["", f"Where to stay: {area['name']} in {area['city']}, good for {area['good_for']}.", "", "Tips:"]
    lines += [f"- {t}" for t in r.sample(who["tips"], k=2)]
    lines.append(f"- {r.choice(dest['customs'])}")
    best = ", ".join(MONTHS[m - 1] for m in dest["best_months"])
    lines += ["", f"Best time to go: {best} ({dest['best_reason']})."]
    if followup:
        lines += ["", r.choice(FOLLOWUPS).format(area=area["name"])]
    meta = {"destination": dest["name"], "traveler": who["id"], "days": days, "currency": currency,
            "budget": budget, "total": total, "places": places, "followup": followup}
    return "\n".join(lines), meta


def build_travel(cfg: TravelData, seed: int) -> tuple[list[dict], dict]:
    dests, types = load_catalog(cfg.catalog, cfg.travelers)
    test_dests = heldout([d["name"] for d in dests], cfg.test_fraction)
    r = rng(seed, "travel")
    records = []
    n_test = max(1, round(cfg.examples * cfg.test_fraction))
    for i in range(cfg.examples):
        split = "test" if i < n_test else "train"
        pool = [d for d in dests if (d["name"] in test_dests) == (split == "test")]
        dest, who = r.choice(pool), r.choice(types)
        days = r.randint(3, 7)
        currency = r.choice(["INR", "USD"])
        fx = cfg.inr_per_usd
        per_day = dest["daily_cost_usd"][who["default_tier"]] * who["party_size"] * (fx if currency == "INR" else 1.0)
        step = 5000 if currency == "INR" else 100
        budget = math.ceil(per_day * days * r.uniform(1.05, 1.3) / step) * step
        request = r.choice(REQUESTS).format(days=days, dest=dest["name"], who=r.choice(who["phrasings"]),
                                            budget=money(budget, currency))
        content, meta = plan_answer(dest, who, days, currency, fx, budget, r, r.random() < cfg.followup_share)
        records.append({
            "id": f"travel-{i:05d}", "task": "travel", "lang": "en", "split": split,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": request},
                         {"role": "assistant", "content": content}],
            "meta": meta,
        })
    stats = {"destinations": len(dests), "heldout_destinations": len(test_dests), "traveler_types": len(types)}
    return records, stats
