"""Which held-out rows an evaluation scores: the same seeded sample for every model and baseline."""

from __future__ import annotations

from domaintune.data.common import rng


def sample(rows: list[dict], n: int, seed: int, name: str) -> list[dict]:
    rows = sorted(rows, key=lambda x: x["id"])
    rng(seed, name).shuffle(rows)
    return rows[:n]


def intent_rows(test: list[dict], n: int, seed: int) -> list[dict]:
    """The intent test rows every model and every baseline is scored on."""
    return sample([r for r in test if r["task"] == "intent"], n, seed, "eval-intent")
