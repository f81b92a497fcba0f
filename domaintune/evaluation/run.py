"""Evaluate one model on the held-out test set, the same way for every model."""

from __future__ import annotations

import time
from pathlib import Path

from domaintune.data.common import rng
from domaintune.evaluation.generate import generate, load_model, prompts_for
from domaintune.evaluation.intent import score_intents
from domaintune.evaluation.latency import measure_latency
from domaintune.evaluation.retention import score_probes
from domaintune.io import read_jsonl
from domaintune.params import Params
from domaintune.records import INTENTS


def _sample(rows: list[dict], n: int, seed: int, name: str) -> list[dict]:
    rows = sorted(rows, key=lambda x: x["id"])
    rng(seed, name).shuffle(rows)
    return rows[:n]


def _samples(records: list[dict], outputs: list[str], n: int = 5) -> list[dict]:
    """A few raw answers kept next to the numbers, so a reader can see what was scored."""
    return [{"input": r["messages"][-2]["content"], "output": o} for r, o in zip(records[:n], outputs[:n], strict=True)]


def evaluate_model(model_dir: str | Path, test_path: str | Path, p: Params) -> dict:
    test = read_jsonl(test_path)
    t = time.perf_counter()
    model, tok = load_model(model_dir)
    load_s = time.perf_counter() - t
    e = p.eval

    intents = _sample([r for r in test if r["task"] == "intent"], e.intent_examples, p.seed, "eval-intent")
    labels = list(INTENTS)
    intent_prompts = prompts_for(tok, intents)
    intent_out = generate(model, tok, intent_prompts, e.max_new_tokens, e.batch_size)

    probes = _sample([r for r in test if r["task"] == "probe"], e.probe_examples, p.seed, "eval-probe")
    probe_out = generate(model, tok, prompts_for(tok, probes), e.max_new_tokens, e.batch_size)

    latency = measure_latency(model, tok, intent_prompts[: e.latency_queries], e.max_new_tokens)
    latency["load_s"] = load_s
    return {
        "intent": score_intents(intent_out, intents, labels),
        "probes": score_probes(probe_out, probes),
        "latency": latency,
        "samples": {"intent": _samples(intents, intent_out), "probes": _samples(probes, probe_out)},
    }
