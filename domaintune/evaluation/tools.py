"""Tool use on held-out conversations: does the model call ``get_weather`` when it should, with the
right arguments, stay silent when it should not, and answer from the tool's result?

Calls are read back in the format the chat template renders them (Hermes/Qwen ``<tool_call>``
tags around ``{"name": ..., "arguments": {...}}``), the format the model was trained on.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from domaintune.data.tools import resolve_day

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_CALL = re.compile(re.escape(CALL_OPEN) + r"(.*?)(?:" + re.escape(CALL_CLOSE) + r"|$)", re.S)


def parse_tool_calls(text: str) -> list[dict | None]:
    """Every call the answer attempts, in order: ``{"name", "arguments"}`` or ``None`` for one that
    does not parse (bad JSON, no name, arguments not an object). An answer with no call: ``[]``."""
    calls: list[dict | None] = []
    for body in _CALL.findall(text):
        try:
            obj = json.loads(body.strip())
        except json.JSONDecodeError:
            calls.append(None)
            continue
        ok = isinstance(obj, dict) and isinstance(obj.get("name"), str) and isinstance(obj.get("arguments"), dict)
        calls.append({"name": obj["name"], "arguments": obj["arguments"]} if ok else None)
    return calls


def call_turn(record: dict) -> list[dict]:
    """The conversation up to and including the first assistant turn: the one that calls (or not)."""
    first = next(i for i, m in enumerate(record["messages"]) if m["role"] == "assistant")
    return record["messages"][: first + 1]


def _norm(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _arguments(args: dict, today: str | None) -> dict:
    """Arguments as the tool reads them: strings case-folded, ``date`` resolved to the day it means
    ("Friday" and the Friday's YYYY-MM-DD are the same call); an unreadable date stays as written."""
    out = {k: _norm(v) for k, v in args.items()}
    if today and isinstance(out.get("date"), str):
        day = resolve_day(out["date"], dt.date.fromisoformat(today))
        out["date"] = day.isoformat() if day else out["date"]
    return out


def score_tool_calls(outputs: list[str], records: list[dict]) -> dict:
    """Outputs are answers to :func:`call_turn` prompts; ``meta.call`` is the expected call or null."""
    attempted = parsed = name_ok = args_ok = needed = 0
    silent = not_needed = 0
    for out, r in zip(outputs, records, strict=True):
        calls = parse_tool_calls(out)
        expected = r["meta"].get("call")
        attempted += len(calls)
        parsed += sum(c is not None for c in calls)
        if expected is None:
            not_needed += 1
            silent += not calls
            continue
        needed += 1
        first = calls[0] if calls else None
        if first and first["name"] == expected["name"]:
            name_ok += 1
            today = r["meta"].get("today")
            args_ok += _arguments(first["arguments"], today) == _arguments(expected["arguments"], today)
    return {
        # of the calls the model wrote, the share that parse (no call written: 0)
        "call_valid_rate": parsed / attempted if attempted else 0.0,
        "name_accuracy": name_ok / needed if needed else 0.0,
        "args_accuracy": args_ok / needed if needed else 0.0,
        "no_call_accuracy": silent / not_needed if not_needed else 0.0,
        "calls_written": attempted,
        "examples": len(records),
        "needs_call": needed,
    }


def answer_turn(record: dict) -> list[dict] | None:
    """The conversation up to the answer that follows a tool result, or ``None`` when no tool ran."""
    msgs = record["messages"]
    for i, m in enumerate(msgs):
        if m["role"] == "tool" and i + 1 < len(msgs) and msgs[i + 1]["role"] == "assistant":
            return msgs[: i + 2]
    return None


def grounded(answer: str, tool_result: str) -> bool:
    """The answer repeats the result's condition and both temperatures (it read the tool's output)."""
    try:
        res = json.loads(tool_result)
    except json.JSONDecodeError:
        return False
    text = answer.lower()
    numbers = set(re.findall(r"-?\d+", text))
    return (str(res.get("condition", "")).lower() in text
            and str(res.get("temp_min_c")) in numbers and str(res.get("temp_max_c")) in numbers)


def score_grounding(outputs: list[str], records: list[dict]) -> float:
    """Share of answers (to :func:`answer_turn` prompts) that report what the tool returned."""
    hits = [grounded(out, next(m["content"] for m in r["messages"] if m["role"] == "tool"))
            for out, r in zip(outputs, records, strict=True)]
    return sum(hits) / len(hits) if hits else 0.0
