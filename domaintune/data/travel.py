"""Travel-planner conversations generated from the hand-written destination catalog.

Three request types, each with many phrasings so the model learns the task, not a template:

- ``plan``: a trip for a traveler type, duration and budget (INR, USD, ...). The answer has a
  budget breakdown whose line items add up to no more than the budget, a day-by-day plan
  naming catalog places, tips for that traveler type and, for a share of answers, a closing
  follow-up question. A budget too small for the trip is said so, with a shorter plan that fits.
- ``clarify``: a vague first message; the assistant asks only for what is missing, then plans.
- ``compare``: "X vs Y for a family": costs, seasons, highlights and a reasoned pick.

Test records use destinations (whole countries) that no training plan visits.
"""

from __future__ import annotations

import math
import random

from domaintune.data.catalog import TIERS, Destination, TravelerType, load_catalog
from domaintune.data.common import heldout, rng
from domaintune.params import TravelData

SYSTEM = "You are a friendly, precise travel planner. Give concrete plans with budgets that add up."
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December"]
# Where a trip's money goes (international flights excluded); floors keep the sum within budget.
SHARES = (("Stay", 0.40), ("Food", 0.25), ("Local transport", 0.15), ("Activities and entry fees", 0.20))
# {who} is a free-form phrasing ("we're retired", "with our toddler", "a solo trip"), so it
# always stands as its own fragment: after a comma, a dash or in parentheses.
PLAN_REQUESTS = [
    "Plan a {days}-day trip to {dest} with a budget of {budget}, {who}.",
    "Can you make me a {days}-day itinerary for {dest}? {Who}, and we have {budget} in total.",
    "I have {budget} for {days} days in {dest}, {who}. What should the plan look like?",
    "{dest} for {days} days, {who}, total budget {budget}. Help me plan it.",
    "Suggest a {days} day {dest} itinerary ({who}), spending at most {budget}.",
    "We're thinking about {dest}: {days} days, {budget}, {who}. Can you put together a plan?",
    "What can I do in {dest} in {days} days on {budget}? Context: {who}.",
    "Budget {budget}, {days} days, destination {dest}, {who}. Give me a day-by-day plan with costs.",
    "Help me plan {dest}! {days} days, {who}, and I don't want to spend more than {budget}.",
    "Is {budget} enough for {days} days in {dest} ({who})? If so, how would you plan it?",
    "I'd love a {days}-day plan for {dest} ({who}). The budget is {budget}.",
    "Could you draft an itinerary: {dest}, {days} nights, {who}, budget around {budget}?",
    "Planning {dest} for {days} days with {budget} to spend ({who}). Where should we go each day?",
    "{Who} - {days} days in {dest}, budget {budget}: what do you recommend?",
]
VAGUE_REQUESTS = [
    "I want to go to {dest}. Can you help me plan?",
    "Thinking about a trip to {dest}, any ideas?",
    "Help me plan {dest} ({who}).",
    "Can you plan a {days}-day trip to {dest} for me?",
    "We'd like to visit {dest}. Where do we start?",
    "Plan a trip to {dest}, {who}.",
    "What would a trip to {dest} look like? {Who}.",
    "I'm dreaming of {dest} for {days} days. Can you plan it?",
    "{dest} trip please!",
    "Could you put together an itinerary for {dest}?",
]
CLARIFY_LEADS = [
    "Happy to help with {dest}!",
    "{dest} is a great choice.",
    "Sure, let's plan {dest}.",
    "Great idea, {dest} has a lot to offer.",
    "I'd love to help you plan {dest}.",
    "Good pick!",
]
CLARIFY_ASKS = [
    "To make the plan and budget fit, could you tell me {missing}?",
    "Before I plan it: {missing}?",
    "So I can size the plan properly, {missing}?",
    "A few details first: {missing}?",
]
MISSING = {"days": "how many days you have", "who": "who is travelling",
           "budget": "your total budget, and in which currency"}
CLARIFY_REPLIES = [
    "{parts}.",
    "Sure: {parts}.",
    "{parts}, thanks!",
    "Okay, {parts}.",
    "It would be {parts}.",
]
COMPARE_REQUESTS = [
    "{a} or {b}? {Who}.",
    "{a} vs {b} ({who}): which would you pick?",
    "Should we go to {a} or {b}? {Who}.",
    "I can't decide between {a} and {b}, {who}. Help?",
    "Compare {a} and {b} for me, please ({who}).",
    "Which is better, {a} or {b}? {Who}.",
    "{Who} - is {a} or {b} the better trip?",
    "Torn between {a} and {b} for our next holiday ({who}). Thoughts?",
    "Help me choose: {a} or {b}, {who}.",
    "What are the pros and cons of {a} versus {b}? {Who}.",
]
FOLLOWUPS = [
    "Would you like me to suggest specific hotels in {area}?",
    "Should I add a day trip or adjust the pace of any day?",
    "Do you want me to rebalance the budget towards food or activities?",
    "Would you like tips on getting from the airport to {area}?",
    "Shall I suggest restaurants near each day's sights?",
    "Want me to check which of these places need advance booking?",
]
FREE_DAY = ["markets and local food", "a slow morning and a neighbourhood walk", "a cooking class or food tour",
            "a spa, a park or the beach, at your own pace", "shopping and a sunset viewpoint"]
PER_DAY_SIGHTS = {"relaxed": (1, 1), "moderate": (1, 2), "packed": (2, 2)}


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
    return f"{currency} {int(round(amount)):,}"


def months(ms: list[int]) -> str:
    names = [MONTHS[m - 1] for m in ms]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def fill(template: str, who: str = "", **slots: object) -> str:
    return template.format(who=who, Who=who[:1].upper() + who[1:], **slots)


def join_and(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


class TravelWriter:
    """Writes one conversation at a time from the catalog; all randomness comes from ``r``."""

    def __init__(self, cfg: TravelData, r: random.Random):
        self.cfg, self.r = cfg, r

    def per_day(self, dest: Destination, who: TravelerType, tier: str, currency: str) -> float:
        return getattr(dest.daily_cost_usd, tier) * who.party_size * self.cfg.currencies[currency]

    def draw_trip(self, dest: Destination, who: TravelerType) -> dict:
        r = self.r
        days = r.randint(3, 8)
        currency = r.choice(sorted(self.cfg.currencies))
        step = 5000 if currency == "INR" else 100
        if days >= 4 and r.random() < self.cfg.tight_budget_share:
            cost = self.per_day(dest, who, "budget", currency) * days * r.uniform(0.6, 0.85)
            budget = math.floor(cost / step) * step or step
        else:
            tier = who.default_tier if r.random() < 0.6 else r.choice(TIERS)
            budget = math.ceil(self.per_day(dest, who, tier, currency) * days * r.uniform(1.02, 1.3) / step) * step
        return {"days": days, "currency": currency, "budget": budget}

    def plan(self, dest: Destination, who: TravelerType, days: int, currency: str, budget: float,
             followup: bool) -> tuple[str, dict]:
        r = self.r
        fits = [t for t in TIERS if self.per_day(dest, who, t, currency) * days <= budget]
        lines = []
        if fits:
            tier, plan_days = fits[-1], days
            lines.append(f"Here is a {days}-day {dest.name} plan for a {who.label} on {money(budget, currency)}: "
                         f"that fits a {tier}-level trip.")
        else:
            tier = "budget"
            plan_days = max(1, int(budget // self.per_day(dest, who, tier, currency)))
            need = self.per_day(dest, who, tier, currency) * days
            lines.append(f"Honest answer: {money(budget, currency)} is below what {days} days in {dest.name} "
                         f"usually cost a {who.label}, even on a budget (about {money(need, currency)}). "
                         f"Here is a {plan_days}-day plan that fits, or raise the budget to about "
                         f"{money(need, currency)} for all {days} days.")
        per_day = self.per_day(dest, who, tier, currency)
        spend = per_day * plan_days
        party = who.party_size
        lines += ["", f"Budget breakdown for {party} {'person' if party == 1 else 'people'}, "
                      f"excluding international flights (about {money(per_day, currency)} a day):"]
        total = 0
        for label, share in SHARES:
            amount = math.floor(spend * share / 100) * 100 if currency == "INR" else math.floor(spend * share)
            total += amount
            lines.append(f"- {label}: {money(amount, currency)}")
        lines.append(f"Total: {money(total, currency)}, leaving {money(budget - total, currency)} as a buffer.")

        lines += ["", "Day by day:"]
        area = r.choice(dest.stay_areas)
        sights = r.sample(dest.attractions, k=len(dest.attractions))
        lo, hi = PER_DAY_SIGHTS[who.pace]
        places = [area.name]
        for day in range(1, plan_days + 1):
            today = [sights.pop(0) for _ in range(min(r.randint(lo, hi), len(sights)))]
            if not today:
                lines.append(f"Day {day}: free day around {area.city}: {r.choice(FREE_DAY)}.")
                continue
            places += [s.name for s in today]
            text = " Then ".join(f"{s.name} in {s.city}: {s.note}." for s in today)
            lines.append(f"Day {day}: {'check in at ' + area.name + ', then ' if day == 1 else ''}{text}")

        lines += ["", f"Where to stay: {area.name} in {area.city}, good for {area.good_for}.",
                  f"Getting around: {dest.local_transport}.", f"Getting there: {dest.getting_there}.",
                  "", f"Tips for a {who.label}:"]
        lines += [f"- {t}" for t in r.sample(who.tips, k=2)]
        lines += [f"- {r.choice(dest.customs)}", f"- {r.choice(dest.safety)}"]
        lines += ["", f"Best time to go: {months(dest.best_months)} ({dest.best_reason})."]
        if dest.worst_months:
            lines.append(f"Avoid {months(dest.worst_months)} if you can: {dest.worst_reason}.")
        lines.append(f"Local currency: {dest.currency}.")
        if followup:
            lines += ["", r.choice(FOLLOWUPS).format(area=area.name)]
        meta = {"destination": dest.name, "traveler": who.id, "days": days, "plan_days": plan_days,
                "currency": currency, "budget": budget, "total": total, "tier": tier if fits else None,
                "places": places, "followup": followup}
        return "\n".join(lines), meta

    def compare(self, a: Destination, b: Destination, who: TravelerType, currency: str) -> tuple[str, dict]:
        r = self.r
        tier = who.default_tier
        lines = [f"{a.name} vs {b.name} for a {who.label}:", ""]
        scored = []
        for d in (a, b):
            match = [t for t in who.preferred_tags if t in d.tags]
            cost = self.per_day(d, who, tier, currency)
            scored.append((-len(match), cost, d.name, match))
            highlights = join_and([s.name for s in r.sample(d.attractions, k=2)])
            lines += [f"{d.name} ({d.region}):",
                      f"- Cost: about {money(cost, currency)} a day for {who.party_size} at a {tier} level",
                      f"- Best months: {months(d.best_months)} ({d.best_reason})",
                      f"- Highlights: {highlights}",
                      f"- Good for: {', '.join(d.tags[:4])}", ""]
        scored.sort()
        (ms_w, cost_w, winner, match_w), (ms_l, cost_l, loser, _) = scored
        if ms_w < ms_l:
            why = f"it matches more of what a {who.label} usually wants ({', '.join(match_w)})"
        else:
            why = (f"both suit a {who.label} about equally, and {winner} is cheaper "
                   f"({money(cost_w, currency)} vs {money(cost_l, currency)} a day)")
        lines.append(f"My pick: {winner}, because {why}. If your dates are fixed, check the seasons above first.")
        meta = {"destinations": [a.name, b.name], "traveler": who.id, "currency": currency, "winner": winner}
        return "\n".join(lines), meta


def build_travel(cfg: TravelData, seed: int) -> tuple[list[dict], dict]:
    dests, types = load_catalog(cfg.catalog, cfg.travelers)
    # Held out by country: Barcelona and Spain share sights, so they must land on the same side.
    test_countries = heldout(sorted({d.country for d in dests}), cfg.test_fraction, minimum=2)
    test_dests = {d.name for d in dests if d.country in test_countries}
    r = rng(seed, "travel")
    w = TravelWriter(cfg, r)
    records = []
    n_test = max(1, round(cfg.examples * cfg.test_fraction))
    for i in range(cfg.examples):
        split = "test" if i < n_test else "train"
        pool = [d for d in dests if (d.name in test_dests) == (split == "test")]
        dest, who = r.choice(pool), r.choice(types)
        kind = r.choices(["plan", "clarify", "compare"],
                         weights=[1 - cfg.clarify_share - cfg.compare_share, cfg.clarify_share, cfg.compare_share])[0]
        followup = r.random() < cfg.followup_share
        if kind == "compare":
            near = [d for d in pool if d.region == dest.region and d.name != dest.name]
            other = r.choice(near if near and r.random() < 0.7 else [d for d in pool if d.name != dest.name])
            request = fill(r.choice(COMPARE_REQUESTS), a=dest.name, b=other.name, who=r.choice(who.phrasings))
            content, meta = w.compare(dest, other, who, r.choice(sorted(cfg.currencies)))
            turns = [request, content]
        else:
            trip = w.draw_trip(dest, who)
            budget = money(trip["budget"], trip["currency"])
            content, meta = w.plan(dest, who, **trip, followup=followup)
            who_text = r.choice(who.phrasings)
            if kind == "plan":
                turns = [fill(r.choice(PLAN_REQUESTS), days=trip["days"], dest=dest.name, who=who_text,
                                                        budget=budget), content]
            else:
                opener = r.choice(VAGUE_REQUESTS)
                missing = [k for k in ("days", "who", "budget") if "{" + k + "}" not in opener]
                given = {"days": f"{trip['days']} days", "who": who_text, "budget": f"around {budget}"}
                question = (r.choice(CLARIFY_LEADS).format(dest=dest.name) + " "
                            + r.choice(CLARIFY_ASKS).format(missing=join_and([MISSING[k] for k in missing])))
                reply = r.choice(CLARIFY_REPLIES).format(parts=", ".join(given[k] for k in missing))
                turns = [fill(opener, dest=dest.name, who=who_text, days=trip["days"]), question,
                         reply[0].upper() + reply[1:], content]
        roles = ["user", "assistant"] * (len(turns) // 2)
        records.append({
            "id": f"travel-{i:05d}", "task": "travel", "lang": "en", "split": split,
            "messages": [{"role": "system", "content": SYSTEM}]
            + [{"role": role, "content": text} for role, text in zip(roles, turns, strict=True)],
            "meta": {"kind": kind, **meta},
        })
    kinds = {k: sum(x["meta"]["kind"] == k for x in records) for k in ("plan", "clarify", "compare")}
    stats = {"destinations": len(dests), "heldout_destinations": len(test_dests), "traveler_types": len(types),
             "by_kind": kinds, "heldout": {"countries": sorted(test_countries), "destinations": sorted(test_dests)}}
    return records, stats
