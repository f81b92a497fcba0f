"""Evaluate one model on the held-out test set, the same way for every model."""

from __future__ import annotations

import time
from pathlib import Path

from domaintune.data.common import rng
from domaintune.evaluation.calibration import expected_calibration_error, reliability
from domaintune.evaluation.generate import generate, load_model, prompts_for
from domaintune.evaluation.intent import parse_intent, score_intents
from domaintune.evaluation.label_scoring import LabelScorer
from domaintune.evaluation.latency import measure_latency, percentile
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


def _calibration(outputs: list[str], records: list[dict], labels: list[str]) -> tuple[float, list[dict]]:
    """ECE and reliability bins of the confidence each answer states (an invalid answer: 0, wrong)."""
    conf, correct = [], []
    for out, r in zip(outputs, records, strict=True):
        parsed = parse_intent(out, labels)
        conf.append(float(parsed["confidence"]) if parsed else 0.0)
        correct.append(bool(parsed) and parsed["primary_intent"] == r["meta"]["intent"])
    return expected_calibration_error(conf, correct), reliability(conf, correct)


def _system_prompt(records: list[dict]) -> str | None:
    prompts = {r["messages"][0]["content"] for r in records if r["messages"][0]["role"] == "system"}
    if len(prompts) > 1:
        raise ValueError("intent test rows carry different system prompts; label scoring needs one")
    return prompts.pop() if prompts else None


def classify_by_scoring(model, tok, records: list[dict], labels: list[str]) -> tuple[list[str], list[float]]:
    """The fast path's JSON answers and each query's latency in ms."""
    scorer = LabelScorer(model, tok, labels, _system_prompt(records))
    scorer.classify(records[0]["messages"][-2]["content"])  # warm-up
    outs, times = [], []
    for r in records:
        t = time.perf_counter()
        outs.append(scorer.classify_json(r["messages"][-2]["content"]))
        times.append((time.perf_counter() - t) * 1000)
    return outs, times


def evaluate_model(model_dir: str | Path, test_path: str | Path, p: Params) -> dict:
    test = read_jsonl(test_path)
    t = time.perf_counter()
    model, tok = load_model(model_dir)
    load_s = time.perf_counter() - t
    e = p.eval
    labels = list(INTENTS)

    intents = _sample([r for r in test if r["task"] == "intent"], e.intent_examples, p.seed, "eval-intent")
    intent_prompts = prompts_for(tok, intents)
    intent_out = generate(model, tok, intent_prompts, e.max_new_tokens, e.batch_size)
    scored_out, scored_ms = classify_by_scoring(model, tok, intents, labels)

    probes = _sample([r for r in test if r["task"] == "probe"], e.probe_examples, p.seed, "eval-probe")
    probe_out = generate(model, tok, prompts_for(tok, probes), e.max_new_tokens, e.batch_size)

    latency = measure_latency(model, tok, intent_prompts[: e.latency_queries], e.max_new_tokens)
    latency.update({
        "load_s": load_s,
        "classify_mode": "label_scoring",
        "classify_p50_ms": percentile(scored_ms, 50),
        "classify_p95_ms": percentile(scored_ms, 95),
        "classify_p99_ms": percentile(scored_ms, 99),
        "classify_per_s": 1000 * len(scored_ms) / sum(scored_ms),
    })
    results = {}
    for name, outs in (("generate", intent_out), ("scored", scored_out)):
        ece, bins = _calibration(outs, intents, labels)
        results[name] = {**score_intents(outs, intents, labels), "ece": ece, "reliability": bins}
    return {
        "intent": results["generate"],
        "intent_scored": results["scored"],
        "predictions": [{"actual": r["meta"]["intent"], "generate": (parse_intent(g, labels) or {}).get(
            "primary_intent", "<invalid>"), "scored": (parse_intent(s, labels) or {})["primary_intent"],
            "lang": r["lang"]} for r, g, s in zip(intents, intent_out, scored_out, strict=True)],
        "probes": score_probes(probe_out, probes),
        "latency": latency,
        "samples": {"intent": _samples(intents, intent_out), "intent_scored": _samples(intents, scored_out),
                    "probes": _samples(probes, probe_out)},
    }
