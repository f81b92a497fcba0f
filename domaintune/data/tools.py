"""Weather tool-use conversations: call ``get_weather`` when live data is needed, answer from
its result; answer directly (no call) when it is not. Relative dates ("tomorrow", "this
weekend") are resolved against the date given in the system prompt."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from domaintune.cli import InputError
from domaintune.data.common import heldout, rng
from domaintune.params import ToolData

SCHEMA_FILE = Path("data/raw/tools/get_weather.json")
CITIES = ["Paris", "Tokyo", "Istanbul", "Rome", "London", "Bangkok", "Dubai", "Lisbon", "Kyoto", "Bali",
          "Singapore", "Cairo", "Sydney", "Mumbai", "Goa", "Prague", "Vienna", "Reykjavik", "Cusco", "Nairobi",
          "Hanoi", "Seoul", "Athens", "Marrakech", "Barcelona", "New York", "Cape Town", "Zurich", "Oslo", "Lima"]
CONDITIONS = ["sunny", "partly cloudy", "cloudy", "light rain", "heavy rain", "thunderstorms", "windy", "snow showers"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
ASKS = [
    "What's the weather going to be like in {city} {when}?",
    "Will it rain in {city} {when}?",
    "Do I need a jacket in {city} {when}?",
    "Check the forecast for {city} {when}, please.",
    "How hot will it be in {city} {when}?",
    "I'm heading to {city} {when}. What weather should I expect?",
]
NO_TOOL = [
    ("Convert {c} degrees Celsius to Fahrenheit.", lambda c: f"{c} °C is {c * 9 / 5 + 32:g} °F."),
    ("Is {c}°C warm enough for the beach?",
     lambda c: "Yes, that is comfortable beach weather." if c >= 24
     else "It is on the cool side for swimming; bring a layer."),
]


def load_tool(path: Path = SCHEMA_FILE) -> dict:
    try:
        tool = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError) as e:
        raise InputError(f"{path}: cannot read tool schema ({e})") from None
    if tool.get("function", {}).get("name") != "get_weather":
        raise InputError(f"{path}: expected the schema of function 'get_weather'")
    return tool


def resolve(when: str, today: dt.date) -> dt.date:
    if when == "today":
        return today
    if when == "tomorrow":
        return today + dt.timedelta(days=1)
    if when == "the day after tomorrow":
        return today + dt.timedelta(days=2)
    if when == "this weekend":
        return today + dt.timedelta(days=(5 - today.weekday()) % 7)
    day = WEEKDAYS.index(when.removeprefix("on "))
    return today + dt.timedelta(days=(day - today.weekday()) % 7 or 7)


def build_tools(cfg: ToolData, seed: int) -> tuple[list[dict], dict]:
    tool = load_tool()
    r = rng(seed, "tools")
    test_cities = heldout(CITIES, cfg.test_fraction)
    whens = ["today", "tomorrow", "the day after tomorrow", "this weekend"] + [f"on {d}" for d in WEEKDAYS]
    records = []
    n_test = max(1, round(cfg.examples * cfg.test_fraction))
    for i in range(cfg.examples):
        split = "test" if i < n_test else "train"
        today = dt.date(2026, 1, 1) + dt.timedelta(days=r.randint(0, 364))
        system = (f"You are a travel assistant with access to tools. Today is {WEEKDAYS[today.weekday()]}, "
                  f"{today.isoformat()}. Call a tool only when you need live data.")
        if r.random() < cfg.no_tool_share:
            ask, reply = r.choice(NO_TOOL)
            c = r.randint(-5, 38)
            messages = [{"role": "system", "content": system}, {"role": "user", "content": ask.format(c=c)},
                        {"role": "assistant", "content": reply(c)}]
            meta = {"call": None}
        else:
            city = r.choice(sorted(c for c in CITIES if (c in test_cities) == (split == "test")))
            when = r.choice(whens)
            date = resolve(when, today).isoformat()
            lo = r.randint(-5, 25)
            result = {"location": city, "date": date, "condition": r.choice(CONDITIONS),
                      "temp_min_c": lo, "temp_max_c": lo + r.randint(3, 12), "precipitation_chance": r.randint(0, 100)}
            args = {"location": city, "date": date}
            reply = (f"{when.capitalize()} ({date}) in {city}: {result['condition']}, "
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
            meta = {"call": {"name": "get_weather", "arguments": args}}
        records.append({"id": f"tool-{i:05d}", "task": "tool", "lang": "en", "split": split,
                        "messages": messages, "tools": [tool], "meta": meta})
    stats = {"heldout_cities": len(test_cities), "with_call": sum(1 for x in records if x["meta"]["call"])}
    return records, stats
