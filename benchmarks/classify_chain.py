"""Benchmark: how accurate is each classification tier, and the fallback chain, on held-out data?

On the intent rows of the test split (templates and entities no training row used), it prints
accuracy for the model alone (label scoring), the keyword rules alone (no match: ``general``),
and the chain model -> keywords -> general at several model thresholds, with the share of
answers each tier gave. The threshold that serving uses is ``serve.tiers[kind=model].threshold``.

    python benchmarks/classify_chain.py [--model models/specialist]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domaintune.classifiers.keywords import KeywordClassifier  # noqa: E402
from domaintune.io import read_jsonl  # noqa: E402
from domaintune.serving.engine import ModelEngine  # noqa: E402
from domaintune.serving.router import FallbackRouter, Tier  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/specialist")
    ap.add_argument("--test", default="data/processed/splits/test.jsonl")
    ap.add_argument("--keywords", default="data/raw/serving/intent_keywords.yaml")
    args = ap.parse_args()
    rows = [r for r in read_jsonl(ROOT / args.test) if r["task"] == "intent"]
    texts, gold = [r["messages"][-2]["content"] for r in rows], [r["meta"]["intent"] for r in rows]
    engine = ModelEngine(ROOT / args.model)
    kc = KeywordClassifier.from_file(ROOT / args.keywords)

    t = time.perf_counter()
    model_out = [engine.scorer.classify(x) for x in texts]
    model_ms = (time.perf_counter() - t) * 1000 / len(texts)
    t = time.perf_counter()
    kw_out = [kc.classify(x) for x in texts]
    kw_ms = (time.perf_counter() - t) * 1000 / len(texts)

    def acc(pred: list[str]) -> float:
        return sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)

    print(f"{len(rows)} held-out intent utterances, {len(set(r['lang'] for r in rows))} languages")
    print(f"model alone (label scoring)   accuracy {acc([o['primary_intent'] for o in model_out]):.3f}"
          f"   {model_ms:.1f} ms/query")
    print(f"keywords alone (else general) accuracy {acc([o['primary_intent'] if o else 'general' for o in kw_out]):.3f}"
          f"   {kw_ms:.2f} ms/query, {sum(o is not None for o in kw_out)} matched")
    by_text = dict(zip(texts, model_out, strict=True))
    for threshold in (0.0, 0.3, 0.5, 0.7, 0.9, 1.0):
        chain = FallbackRouter([Tier("model", lambda x, _t: by_text[x], threshold, 60.0),
                                Tier("keywords", lambda x, _t: kc.classify(x), 0.5)])
        routed = [chain.route(x) for x in texts]
        tiers = Counter(r.tier for r in routed)
        per_tier = {k: acc_k for k in tiers if (acc_k := _tier_acc(routed, gold, k)) is not None}
        overall = acc([r.result["primary_intent"] for r in routed])
        shown = ", ".join(f"{k}: {v:.2f}" for k, v in per_tier.items())
        print(f"chain, model threshold {threshold:.1f}: accuracy {overall:.3f}   answered by {dict(tiers)}"
              f"   accuracy per tier {{{shown}}}")


def _tier_acc(routed, gold, tier) -> float | None:
    hits = [r.result["primary_intent"] == g for r, g in zip(routed, gold, strict=True) if r.tier == tier]
    return sum(hits) / len(hits) if hits else None


if __name__ == "__main__":
    main()
