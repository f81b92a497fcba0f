"""Travel answers, measured by properties a reader checks by hand, not by overlap with a reference:

- the budget is stated, broken down, and the line items add up to the total, which is no more than
  the budget the user gave (a plan that quietly overspends is wrong however fluent it reads);
- the places it names exist in the catalog, for the destination asked about (and how many belong
  to some other destination: a sign of made-up or confused plans);
- it closes with a follow-up question.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from domaintune.data.catalog import Destination

_SYMBOLS = {"₹": "INR", "rs": "INR", "rs.": "INR", "$": "USD", "€": "EUR"}
_MONEY = re.compile(r"(?P<cur>INR|USD|EUR|Rs\.?|₹|\$|€)\s?(?P<num>\d[\d,]*(?:\.\d+)?)", re.I)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")


def amounts(line: str) -> list[tuple[str, float]]:
    """``(currency, value)`` for every money amount in ``line`` (INR, USD, EUR, or their symbols)."""
    out = []
    for m in _MONEY.finditer(line):
        cur = m["cur"]
        cur = _SYMBOLS.get(cur.lower(), cur.upper())
        out.append((cur, float(m["num"].replace(",", ""))))
    return out


def budget_check(answer: str, budget: float | None, currency: str | None) -> dict:
    """``stated``: an amount in the asked currency appears. ``consistent``: at least two itemized
    amounts before a ``Total`` line add up to that total (within 1%), in the asked currency, and the
    total is within the user's budget."""
    lines = answer.splitlines()
    stated = any(currency is None or cur == currency for line in lines for cur, _ in amounts(line))
    items: list[tuple[str, float]] = []
    total = None
    for line in lines:
        found = amounts(line)
        if not found:
            continue
        if line.strip().lower().startswith(("total", "**total")):
            total = found[0]
            break
        if _BULLET.match(line):
            items.append(found[0])
    consistent = False
    if total is not None and len(items) >= 2:
        cur, value = total
        same_cur = all(c == cur for c, _ in items) and (currency is None or cur == currency)
        adds_up = abs(sum(v for _, v in items) - value) <= max(1.0, 0.01 * value)
        consistent = same_cur and adds_up and (budget is None or value <= budget)
    return {"stated": stated, "consistent": consistent, "total": total[1] if total else None}


def place_names(dest: Destination) -> list[str]:
    return [p.name for p in dest.attractions] + [a.name for a in dest.stay_areas]


def _mentions(text: str, names: Iterable[str]) -> set[str]:
    low = text.lower()
    return {n for n in names if re.search(rf"(?<!\w){re.escape(n.lower())}(?!\w)", low)}


def named_places(answer: str, asked: list[str], catalog: dict[str, Destination]) -> tuple[int, int]:
    """Distinct catalog places named for the asked destinations, and those of other destinations."""
    own = {n for d in asked for n in place_names(catalog[d])}
    other = {n for name, d in catalog.items() if name not in asked for n in place_names(d)} - own
    return len(_mentions(answer, own)), len(_mentions(answer, other))


def has_followup(answer: str) -> bool:
    lines = [line.strip() for line in answer.splitlines() if line.strip()]
    return bool(lines) and lines[-1].endswith("?")


def loops(answer: str, n: int = 6, times: int = 3) -> bool:
    """True when some run of ``n`` words comes back ``times`` times or more: the answer is looping."""
    words = answer.lower().split()
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    return bool(grams) and max(grams.values()) >= times


def score_answer(answer: str, asked: list[str], catalog: dict[str, Destination], budget: float | None,
                 currency: str | None) -> dict:
    money = budget_check(answer, budget, currency)
    own, other = named_places(answer, asked, catalog)
    return {"budget_stated": money["stated"], "budget_consistent": money["consistent"], "total": money["total"],
            "named_places": own, "other_places": other, "followup": has_followup(answer), "loops": loops(answer)}


def score_travel(outputs: list[str], requests: list[dict], catalog: dict[str, Destination]) -> dict:
    """``requests``: ``{"destinations", "budget", "currency"}`` per answer (plans only)."""
    scored = [score_answer(o, q["destinations"], catalog, q.get("budget"), q.get("currency"))
              for o, q in zip(outputs, requests, strict=True)]
    n = max(1, len(scored))
    return {
        "budget_stated_rate": sum(s["budget_stated"] for s in scored) / n,
        "budget_consistent_rate": sum(s["budget_consistent"] for s in scored) / n,
        "named_places_mean": sum(s["named_places"] for s in scored) / n,
        "other_places_mean": sum(s["other_places"] for s in scored) / n,
        "followup_rate": sum(s["followup"] for s in scored) / n,
        "looping_rate": sum(s["loops"] for s in scored) / n,
        "examples": len(scored),
    }


def plan_request(record: dict) -> dict:
    """What a held-out plan record asked for, from the meta its builder wrote."""
    m = record["meta"]
    return {"destinations": [m["destination"]], "budget": m["budget"], "currency": m["currency"]}
