"""Weather tool-use conversations.

The assistant calls ``get_weather`` when it needs a forecast, then answers from the tool's
result; it answers directly, with no call, when no live data is needed (unit conversions,
or a destination's typical climate, answered from the catalog).

The call's ``date`` is the day as the user said it ("tomorrow", "this weekend", "Friday"), or
YYYY-MM-DD: the tool resolves it (:func:`resolve_day`), as tools that take natural dates do.
Calendar arithmetic is the tool's job because a 135M model does not learn it: trained to
write YYYY-MM-DD from a list of the week's dates in the system prompt, it got the right date
in 0 of 13 held-out calls, while it named the right tool in all 13.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domaintune.data.catalog import DestinationFile
from domaintune.data.common import heldout, load_checked, rng
from domaintune.data.travel import MONTHS, months
from domaintune.params import ToolData

CITIES = ["Paris", "Tokyo", "Istanbul", "Rome", "London", "Bangkok", "Dubai", "Lisbon", "Kyoto", "Bali",
          "Singapore", "Cairo", "Sydney", "Mumbai", "Goa", "Prague", "Vienna", "Reykjavik", "Cusco", "Nairobi",
          "Hanoi", "Seoul", "Athens", "Marrakech", "Barcelona", "New York", "Cape Town", "Zurich", "Oslo", "Lima"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WHENS = ["today", "tonight", "tomorrow", "the day after tomorrow", "this weekend"] + [f"on {d}" for d in WEEKDAYS]
ASKS = [
    "What's the weather going to be like in {city} {when}?",
    "Will it rain in {city} {when}?",
    "Do I need a jacket in {city} {when}?",
    "Check the forecast for {city} {when}, please.",
    "How hot will it be in {city} {when}?",
    "I'm heading to {city} {when}. What weather should I expect?",
    "Is {when} a good day for a walking tour in {city}, weather-wise?",
    "Should I pack an umbrella for {city} {when}?",
    "Forecast for {city} {when}?",
    "We land in {city} {when}. Will it be cold?",
    "Any chance of rain in {city} {when}? We planned a picnic.",
    "What temperatures should I expect in {city} {when}?",
]
CONVERSIONS = [
    "Convert {c} degrees Celsius to Fahrenheit.",
    "What is {c}°C in Fahrenheit?",
    "My app says {c} °C. How much is that in °F?",
]
CLIMATE = [
    "When is the best time to visit {dest}?",
    "What's the weather usually like in {dest} in {month}?",
    "Is {month} a good month to go to {dest}?",
    "Which months should I avoid for {dest}?",
]


class FunctionSchema(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: Literal["get_weather"]
    description: str = Field(min_length=1)
    parameters: dict[str, Any]

    @model_validator(mode="after")
    def _arguments(self) -> FunctionSchema:
        missing = {"location", "date"} - set(self.parameters.get("properties", {}))
        if missing:
            raise ValueError(f"parameters.properties lacks {sorted(missing)}")
        return self


class ToolSchema(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    function: FunctionSchema


def resolve(when: str, today: dt.date) -> dt.date:
    """The date a relative phrase of :data:`WHENS` means, asked on ``today``."""
    if when in ("today", "tonight"):
        return today
    if when == "tomorrow":
        return today + dt.timedelta(days=1)
    if when == "the day after tomorrow":
        return today + dt.timedelta(days=2)
    if when == "this weekend":  # Saturday, or today when today is already Saturday or Sunday
        return today if today.weekday() >= 5 else today + dt.timedelta(days=5 - today.weekday())
    day = WEEKDAYS.index(when.removeprefix("on "))
    return today + dt.timedelta(days=(day - today.weekday()) % 7 or 7)


def day_argument(when: str) -> str:
    """What the call writes for a phrase of :data:`WHENS`: the user's day, without "on"/"tonight"."""
    return {"tonight": "today", "the day after tomorrow": "day after tomorrow"}.get(when, when.removeprefix("on "))


def resolve_day(value: str, today: dt.date) -> dt.date | None:
    """The date a ``get_weather`` ``date`` argument means on ``today``: YYYY-MM-DD, today, tomorrow,
    day after tomorrow, this weekend or a weekday name (the next one), in any case; else ``None``."""
    text = value.strip().lower()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    text = text.removeprefix("on ").removeprefix("the ")
    if text in ("today", "tonight", "tomorrow", "this weekend", "weekend"):
        return resolve({"weekend": "this weekend"}.get(text, text), today)
    if text == "day after tomorrow":
        return resolve("the day after tomorrow", today)
    names = [d.lower() for d in WEEKDAYS]
    return resolve(f"on {WEEKDAYS[names.index(text)]}", today) if text in names else None


def system_prompt(today: dt.date) -> str:
    """Today's date, which the tool's relative days and the answer's dates are counted from."""
    return (f"You are a travel assistant with access to tools. Today is {WEEKDAYS[today.weekday()]}, "
            f"{today.isoformat()}. Call a tool only when you need live data.")


def climate_answer(ask: str, dest, month: int) -> str:
    best = f"The best months for {dest.name} are {months(dest.best_months)}: {dest.best_reason}."
    worst = (f"Avoid {months(dest.worst_months)} if you can: {dest.worst_reason}."
             if dest.worst_months else "No month is really bad to visit.")
    if "{month}" not in ask:
        return f"{best} {worst}"
    name = MONTHS[month - 1]
    if month in dest.best_months:
        return f"Yes, {name} is one of the best months for {dest.name}: {dest.best_reason}."
    if month in dest.worst_months:
        return f"{name} is one of the months to avoid for {dest.name}: {dest.worst_reason}. {best}"
    return f"{name} is shoulder season in {dest.name}, usually fine. {best}"


def build_tools(cfg: ToolData, seed: int) -> tuple[list[dict], dict]:
    tool = load_checked(cfg.schema_file, ToolSchema).model_dump()
    dests = load_checked(cfg.catalog, DestinationFile).destinations
    r = rng(seed, "tools")
    # The test split asks about cities, destinations and temperatures no training row uses.
    test_cities = heldout(CITIES, cfg.test_fraction)
    test_dests = heldout([d.name for d in dests], cfg.test_fraction)
    test_temps = heldout([str(c) for c in range(-5, 39)], cfg.test_fraction)
    records = []
    n_test = max(1, round(cfg.examples * cfg.test_fraction))
    for i in range(cfg.examples):
        split = "test" if i < n_test else "train"
        today = dt.date(2026, 1, 1) + dt.timedelta(days=r.randint(0, 364))
        system = system_prompt(today)
        is_test = split == "test"
        if r.random() < cfg.no_tool_share:
            if r.random() < 0.4:
                c = r.choice([t for t in range(-5, 39) if (str(t) in test_temps) == is_test])
                ask, reply, kind = r.choice(CONVERSIONS).format(c=c), f"{c} °C is {c * 9 / 5 + 32:g} °F.", "convert"
            else:
                pool = [d for d in dests if (d.name in test_dests) == is_test]
                dest, month, template = r.choice(pool), r.randint(1, 12), r.choice(CLIMATE)
                ask = template.format(dest=dest.name, month=MONTHS[month - 1])
                reply, kind = climate_answer(template, dest, month), "climate"
            messages = [{"role": "system", "content": system}, {"role": "user", "content": ask},
                        {"role": "assistant", "content": reply}]
            meta = {"call": None, "kind": kind}
        else:
            city = r.choice(sorted(c for c in CITIES if (c in test_cities) == is_test))
            when = r.choice(WHENS)
            date = resolve(when, today).isoformat()
            lo = r.randint(-5, 25)
            hi = lo + r.randint(3, 12)
            rain = r.randint(0, 100)
            # Coherent forecasts: the model should not learn snow at 14 °C or sun at 90% rain.
            if rain < 20:
                condition = r.choice(["sunny", "partly cloudy", "windy"])
            elif rain < 50:
                condition = r.choice(["partly cloudy", "cloudy", "windy"])
            else:
                condition = "snow showers" if hi <= 2 else r.choice(["light rain", "heavy rain", "thunderstorms"])
            result = {"location": city, "date": date, "condition": condition,
                      "temp_min_c": lo, "temp_max_c": hi, "precipitation_chance": rain}
            args = {"location": city, "date": day_argument(when)}
            reply = (f"{when[0].upper() + when[1:]} ({date}) in {city}: {result['condition']}, "
                     f"{result['temp_min_c']} to {result['temp_max_c']} °C, "
                     f"{result['precipitation_chance']}% chance of precipitation.")
            if result["precipitation_chance"] >= 50:
                reply += " Take an umbrella."
            elif result["temp_max_c"] <= 10:
                reply += " Pack a warm jacket."
            messages = [
                {"role": "system", "content": system},
                {"role": "user", "content": r.choice(ASKS).format(city=city, when=when)},
                {"role": "assistant", "content": "",
                 "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": args}}]},
                {"role": "tool", "content": json.dumps(result)},
                {"role": "assistant", "content": reply},
            ]
            meta = {"call": {"name": "get_weather", "arguments": args}, "kind": "forecast", "date": date}
        records.append({"id": f"tool-{i:05d}", "task": "tool", "lang": "en", "split": split,
                        "messages": messages, "tools": [tool], "meta": {**meta, "today": today.isoformat()}})
    stats = {"heldout_cities": len(test_cities), "with_call": sum(1 for x in records if x["meta"]["call"]),
             "by_kind": {k: sum(x["meta"]["kind"] == k for x in records) for k in ("forecast", "convert", "climate")},
             "heldout": {"cities": sorted(test_cities), "destinations": sorted(test_dests),
                         "temperatures_c": sorted(test_temps, key=int)}}
    return records, stats

