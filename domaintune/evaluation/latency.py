"""Serving-side numbers for one model: classification latency, generation speed, memory."""

from __future__ import annotations

import statistics
import time

import torch

from domaintune.evaluation.generate import generate
from domaintune.memory import peak_mem_mb


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]


def measure_latency(model, tok, prompts: list[str], max_new_tokens: int) -> dict:
    generate(model, tok, prompts[:1], max_new_tokens, 1)  # warm-up
    times = []
    for p in prompts:
        t = time.perf_counter()
        generate(model, tok, [p], max_new_tokens, 1)
        times.append((time.perf_counter() - t) * 1000)
    enc = tok(prompts[0], return_tensors="pt", add_special_tokens=False)
    n_new = 64
    t = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False,
                             pad_token_id=tok.pad_token_id)
    gen_s = time.perf_counter() - t
    return {
        # classification by free generation of the JSON, for comparison with the label-scoring path
        "generate_classify_p50_ms": percentile(times, 50),
        "generate_classify_p95_ms": percentile(times, 95),
        "generate_tokens_per_s": (out.shape[1] - enc["input_ids"].shape[1]) / gen_s,
        "peak_mem_mb": peak_mem_mb(),
        "generate_queries": len(times),
    }


def measure_served(engine, queries: list[str], rounds: int = 2) -> dict:
    """Classification latency of the engine as ``serve.*`` configures it (precision, compile,
    micro-batch size): each query alone (what one user waits), then the same queries in batches
    of ``batch_max`` (what the micro-batcher runs under load). The answer says which configuration."""
    scorer = engine.scorer
    scorer.classify(queries[0])  # warm-up
    single = []
    for _ in range(rounds):
        for q in queries:
            t = time.perf_counter()
            scorer.classify(q)
            single.append((time.perf_counter() - t) * 1000)
    out = {"served": engine.describe(), "classify_mode": "label_scoring",
           "classify_p50_ms": percentile(single, 50), "classify_p95_ms": percentile(single, 95),
           "classify_p99_ms": percentile(single, 99), "classify_per_s": 1000 * len(single) / sum(single),
           "classify_queries": len(single)}
    b = engine.batch_max
    if b > 1:
        scorer.classify_batch(queries[:b])  # warm-up of the batched shapes
        t = time.perf_counter()
        n = 0
        for _ in range(rounds):
            for i in range(0, len(queries) - b + 1, b):
                scorer.classify_batch(queries[i:i + b])
                n += b
        took = time.perf_counter() - t
        out.update({"classify_batch_ms": 1000 * took / (n / b), "classify_batched_per_s": n / took})
    return out
