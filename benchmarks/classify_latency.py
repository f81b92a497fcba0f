"""Benchmark: single-query intent classification latency of a trained model on this machine.

Target (issue 5, the default model on a 2-core CPU): p50 <= 40 ms, p95 <= 80 ms. Every held-out
intent query is timed one at a time (batch 1, after a warm-up) through the label-scoring path in
fp32, bf16 and int8 (dynamic quantization of the linear layers), next to the baseline in the same
run: the same model writing the JSON by free generation. Accuracy and agreement with fp32 show
what a faster variant costs.

    dvc repro merge@specialist                 # or any merged model directory
    python benchmarks/classify_latency.py      # [--model models/specialist] [--queries 150]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domaintune.evaluation.generate import generate, load_model, prompts_for  # noqa: E402
from domaintune.evaluation.intent import parse_intent  # noqa: E402
from domaintune.evaluation.latency import percentile  # noqa: E402
from domaintune.evaluation.run import classify_by_scoring  # noqa: E402
from domaintune.io import read_jsonl  # noqa: E402
from domaintune.memory import peak_mem_mb  # noqa: E402
from domaintune.modeling.cpu_inference import compiled, for_inference  # noqa: E402
from domaintune.records import INTENTS  # noqa: E402

TARGET_P50_MS, TARGET_P95_MS = 40.0, 80.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/specialist")
    ap.add_argument("--test", default="data/processed/splits/test.jsonl")
    ap.add_argument("--queries", type=int, default=150, help="held-out intent queries timed per variant")
    ap.add_argument("--generate-queries", type=int, default=10, help="queries timed by free generation")
    ap.add_argument("--variants", default="fp32,bf16,int8,bf16+compile",
                    help="fp32, bf16, int8, each optionally +compile (torch.compile; minutes to compile)")
    args = ap.parse_args()

    labels = list(INTENTS)
    rows = [r for r in read_jsonl(args.test) if r["task"] == "intent"][: args.queries]
    gold = [r["meta"]["intent"] for r in rows]
    t = time.perf_counter()
    model, tok = load_model(args.model)
    load_s = time.perf_counter() - t
    print(f"model {args.model}: loaded in {load_s:.2f} s; {len(rows)} queries; torch threads "
          f"{torch.get_num_threads()}")

    prompts = prompts_for(tok, rows[: args.generate_queries])
    generate(model, tok, prompts[:1], 56, 1)  # warm-up
    gen_ms = []
    for p in prompts:
        t = time.perf_counter()
        generate(model, tok, [p], 56, 1)
        gen_ms.append((time.perf_counter() - t) * 1000)
    results = {"generate (baseline)": {"p50_ms": percentile(gen_ms, 50), "p95_ms": percentile(gen_ms, 95),
                                       "queries": len(gen_ms)}}

    reference = None
    for variant in args.variants.split(","):
        precision, _, how = variant.partition("+")
        m = for_inference(model, precision)  # type: ignore[arg-type]
        if how == "compile":
            t = time.perf_counter()
            m = compiled(m)
            classify_by_scoring(m, tok, rows[:8], labels)  # compile for a spread of query lengths, untimed
            print(f"{variant}: compiled and warmed up in {time.perf_counter() - t:.0f} s")
        outs, ms = classify_by_scoring(m, tok, rows, labels)
        pred = [(parse_intent(o, labels) or {}).get("primary_intent") for o in outs]
        reference = reference or pred
        results[f"label scoring, {variant}"] = {
            "p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95), "p99_ms": percentile(ms, 99),
            "per_s": 1000 * len(ms) / sum(ms),
            "accuracy": sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold),
            "agrees_with_first": sum(p == q for p, q in zip(pred, reference, strict=True)) / len(pred),
            "queries": len(ms)}
        if m is not model:
            del m

    print(f"\n{'path':28} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'q/s':>6} {'acc':>6} {'agree':>6}")
    for name, r in results.items():
        print(f"{name:28} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r.get('p99_ms', float('nan')):8.1f} "
              f"{r.get('per_s', 1000 / r['p50_ms']):6.1f} {r.get('accuracy', float('nan')):6.3f} "
              f"{r.get('agrees_with_first', float('nan')):6.3f}")
    base = results["generate (baseline)"]["p50_ms"]
    for name, r in results.items():
        if name.startswith("label"):
            ok = r["p50_ms"] <= TARGET_P50_MS and r["p95_ms"] <= TARGET_P95_MS
            print(f"{name}: {base / r['p50_ms']:.1f}x faster than generation at p50; target p50 <= "
                  f"{TARGET_P50_MS:.0f} ms, p95 <= {TARGET_P95_MS:.0f} ms: {'met' if ok else 'NOT met'}")
    print(f"peak RSS {peak_mem_mb():.0f} MB")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
