"""Intent accuracy from the model's JSON answers: overall, per intent, per language, macro-F1."""

from __future__ import annotations

import json
from collections import defaultdict

from sklearn.metrics import f1_score


def parse_intent(text: str, labels: list[str]) -> dict | None:
    """The answer as the JSON schema demands, or ``None`` when it does not parse or validate."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or obj.get("primary_intent") not in labels:
        return None
    conf = obj.get("confidence")
    if not isinstance(conf, (int, float)) or not 0 <= conf <= 1:
        return None
    if not isinstance(obj.get("all_intents"), list):
        return None
    return obj


def score_intents(outputs: list[str], records: list[dict], labels: list[str]) -> dict:
    gold = [r["meta"]["intent"] for r in records]
    parsed = [parse_intent(o, labels) for o in outputs]
    pred = [p["primary_intent"] if p else "<invalid>" for p in parsed]
    per_intent, per_lang = defaultdict(list), defaultdict(list)
    for g, p, r in zip(gold, pred, records, strict=True):
        per_intent[g].append(g == p)
        per_lang[r["lang"]].append(g == p)
    n = max(1, len(gold))
    return {
        "accuracy": sum(g == p for g, p in zip(gold, pred, strict=True)) / n,
        "macro_f1": float(f1_score(gold, pred, labels=labels, average="macro", zero_division=0)),
        "json_valid_rate": sum(p is not None for p in parsed) / n,
        "per_intent": {k: sum(v) / len(v) for k, v in sorted(per_intent.items())},
        "per_language": {k: sum(v) / len(v) for k, v in sorted(per_lang.items())},
        "examples": len(gold),
    }
