"""Benchmark: which hidden states the intent head reads, and how hard it is regularized.

Runs a merged model once over the intent rows of ``data/processed/intents.jsonl`` (every
hidden state kept, pooled over each query's tokens both ways ``LabelScorer.features`` can: the
mean and the last token), then fits the head (``fit_head``) for each pooling, layer set and ``c``
and prints train, calibration and test accuracy, one JSON line per setting, plus the LM head's
label scoring and the TF-IDF baseline on the same calibration and test rows. With
``--tfidf-weight``, each line also scores the head's log-probabilities plus that weight times
TF-IDF's (``blend``). Choose by the **calibration** column: the test column is printed so
the choice can be audited, not to choose by.

    python benchmarks/intent_head_layers.py --model models/specialist
    python benchmarks/intent_head_layers.py --model models/instruct --c 0.03 --layers 0,3,6,9,12,15,18,21,24,27,30
    python benchmarks/intent_head_layers.py --pooling mean --pooling last --pooling mean+last --c 0.03 \
        --layers 0,3,6,9,12,15,18,21,24,27,30 --tfidf-weight 1

Features of ~1,800 rows take ~3 min on 2 CPU cores; each fit seconds to a minute.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domaintune.classifiers.tfidf import TfidfIntentClassifier  # noqa: E402
from domaintune.evaluation.generate import load_model  # noqa: E402
from domaintune.evaluation.label_scoring import LabelScorer  # noqa: E402
from domaintune.evaluation.temperature import system_prompt  # noqa: E402
from domaintune.io import read_jsonl  # noqa: E402
from domaintune.modeling.intent_head import POOLINGS, fit_head  # noqa: E402
from domaintune.records import INTENTS  # noqa: E402
from domaintune.training.intent_head import row_features  # noqa: E402

GRID = ["10", "5,15,25", "10,20,30", "0,5,15,25", "3,9,15,21,27", "2,6,10,14,18,22,26,30",
        "0,3,6,9,12,15,18,21,24,27,30", "0,2,4,6,8,10,12,14,16,18,20,22,24,26,28,30"]


def accuracy(pred: np.ndarray, targets: list[str], labels: list[str]) -> float:
    return round(float(np.mean([labels[k] == t for k, t in zip(pred, targets, strict=True)])), 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/specialist")
    ap.add_argument("--rows", default="data/processed/intents.jsonl")
    ap.add_argument("--layers", action="append", help="comma-separated hidden_states indices (repeatable); "
                    "default: a grid of eight sets")
    ap.add_argument("--c", type=float, action="append", help="inverse L2 strength (repeatable); default 0.01 0.03 0.1")
    ap.add_argument("--pooling", action="append", choices=POOLINGS, help="repeatable; default mean")
    ap.add_argument("--tfidf-weight", type=float, help="also score head + this weight x TF-IDF log-probabilities")
    ap.add_argument("--tfidf-c", type=float, default=10.0, help="the TF-IDF baseline's c (eval.baselines.tfidf_c)")
    args = ap.parse_args()
    labels = list(INTENTS)
    rows = [r for r in read_jsonl(args.rows) if r["task"] == "intent"]
    split = {s: [r for r in rows if r["split"] == s] for s in ("train", "calibration", "test")}
    model, tok = load_model(args.model)
    scorer = LabelScorer(model, tok, labels, system_prompt(rows))
    every = list(range(model.config.num_hidden_layers + 1))
    t = time.perf_counter()
    x = {s: row_features(scorer, v, every, pooling="mean+last") for s, v in split.items()}
    y = {s: [r["meta"]["intent"] for r in v] for s, v in split.items()}
    text = {s: [r["messages"][-2]["content"] for r in v] for s, v in split.items()}
    hidden, n_states = model.config.hidden_size, len(every)
    lm = {s: accuracy(np.argmax(scorer.batch_label_logits(text[s]), 1), y[s], labels) for s in ("calibration", "test")}
    tfidf = TfidfIntentClassifier(c=args.tfidf_c, seed=0).fit(text["train"], y["train"])
    order = [tfidf.labels.index(label) for label in labels]  # its columns in the head's label order
    tf_logp = {s: np.log(np.clip(tfidf.probabilities(text[s])[:, order], 1e-12, None)) for s in x}
    print(json.dumps({"model": args.model, "rows": {s: len(v) for s, v in split.items()},
                      "features_s": round(time.perf_counter() - t, 1), "lm_head": lm,
                      "tfidf": {s: accuracy(tf_logp[s].argmax(1), y[s], labels) for s in ("calibration", "test")}}),
          flush=True)
    for pooling in args.pooling or ["mean"]:
        for spec in args.layers or GRID:
            layers = [int(i) for i in spec.split(",")]
            # features columns: every state's mean, then every state's last token (row_features' mean+last)
            blocks = ([i for i in layers] if "mean" in pooling else []) + \
                     ([n_states + i for i in layers] if "last" in pooling else [])
            cols = np.concatenate([np.arange(b * hidden, (b + 1) * hidden) for b in blocks])
            for c in args.c or (0.01, 0.03, 0.1):
                t = time.perf_counter()
                head = fit_head(x["train"][:, cols], y["train"], labels, layers, c, seed=0, pooling=pooling)
                logp = {s: head.log_proba(x[s][:, cols]) for s in x}
                line = {"pooling": pooling, "layers": layers, "c": c,
                        **{s: accuracy(v.argmax(1), y[s], labels) for s, v in logp.items()},
                        "fit_s": round(time.perf_counter() - t, 1)}
                if args.tfidf_weight is not None:
                    line["blend"] = {s: accuracy((logp[s] + args.tfidf_weight * tf_logp[s]).argmax(1), y[s], labels)
                                     for s in ("calibration", "test")}
                print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
