"""Fit the intent head (``domaintune/modeling/intent_head.py``) on a model's hidden states.

Forward passes only: the model stays as trained, the head is a logistic regression fitted to
convergence on the intent training rows' features (1,491 rows: ~2.5 min on 2 CPU cores). With
the TF-IDF classifier and candidate weights, the weight of its blend with the head is then chosen
on the calibration split (rows neither training nor test uses), never on the test rows.
"""

from __future__ import annotations

import logging
import time

import numpy as np
from tqdm import tqdm

from domaintune.classifiers.tfidf import TfidfIntentClassifier
from domaintune.evaluation.label_scoring import LabelScorer
from domaintune.modeling.intent_head import IntentHead, fit_head

log = logging.getLogger(__name__)


def request(row: dict) -> str:
    return row["messages"][-2]["content"]


def row_features(scorer: LabelScorer, rows: list[dict], layers: list[int], batch_size: int = 16,
                 pooling: str = "mean") -> np.ndarray:
    """Features of ``rows`` in their order; batched by length, so padding stays short."""
    texts = [request(r) for r in rows]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: np.ndarray | None = None
    for i in tqdm(range(0, len(order), batch_size), desc="intent head features", leave=False):
        idx = order[i:i + batch_size]
        f = scorer.features([texts[j] for j in idx], layers, pooling)
        if out is None:
            out = np.zeros((len(texts), f.shape[1]), dtype=np.float32)
        out[idx] = f
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


def choose_text_weight(head: IntentHead, features: np.ndarray, texts: list[str], targets: list[str],
                       tfidf: TfidfIntentClassifier, weights: list[float]) -> tuple[float, list[dict]]:
    """The blend weight with the best accuracy on these (calibration) rows, ties to the lower
    negative log-likelihood, then to the smaller weight; and every weight's figures."""
    if not texts:
        raise ValueError("no calibration rows to choose the TF-IDF blend weight on")
    y = np.array([head.labels.index(t) for t in targets])
    tried = []
    for w in sorted(set(weights)):
        trial = IntentHead(**{**vars(head), "text_weight": w, "text_model": tfidf if w > 0 else None})
        logp = trial.log_proba(features, texts)
        tried.append({"weight": w, "accuracy": round(float(np.mean(logp.argmax(1) == y)), 4),
                      "nll": round(float(-logp[np.arange(len(y)), y].mean()), 4)})
    best = min(tried, key=lambda t: (-t["accuracy"], t["nll"], t["weight"]))
    return best["weight"], tried


def fit_intent_head(model, tok, rows: list[dict], labels: list[str], system_prompt: str | None,
                    layers: list[int], c: float, seed: int, pooling: str = "mean",
                    tfidf: TfidfIntentClassifier | None = None, calibration_rows: list[dict] | None = None,
                    text_weights: list[float] = (0.0,)) -> tuple[IntentHead, dict]:
    """The head and what the fit saw: rows, features, accuracy on its own training rows, seconds.
    With ``tfidf`` and ``calibration_rows``, the head is blended with the classifier at the one of
    ``text_weights`` that scores best there (0: the head alone)."""
    if not rows:
        raise ValueError("no intent training rows to fit the intent head on")
    t = time.perf_counter()
    scorer = LabelScorer(model, tok, labels, system_prompt)
    x = row_features(scorer, rows, layers, pooling=pooling)
    features_s = time.perf_counter() - t
    targets = [r["meta"]["intent"] for r in rows]
    head = fit_head(x, targets, labels, layers, c, seed, pooling)
    train_acc = float(np.mean([labels[k] == y for k, y in zip(head.log_proba(x).argmax(1), targets, strict=True)]))
    stats = {"rows": len(rows), "features": int(x.shape[1]), "layers": list(layers), "pooling": pooling, "c": c,
             "train_accuracy": round(train_acc, 4), "features_s": round(features_s, 1),
             "fit_s": round(time.perf_counter() - t - features_s, 1), "text_weight": 0.0}
    if tfidf is not None and any(w > 0 for w in text_weights):
        if not calibration_rows:
            raise ValueError("choosing the TF-IDF blend weight needs calibration rows")
        cal_x = row_features(scorer, calibration_rows, layers, pooling=pooling)
        weight, tried = choose_text_weight(head, cal_x, [request(r) for r in calibration_rows],
                                           [r["meta"]["intent"] for r in calibration_rows], tfidf, list(text_weights))
        head = IntentHead(**{**vars(head), "text_weight": weight, "text_model": tfidf if weight > 0 else None})
        stats.update({"text_weight": weight, "text_weights": tried, "calibration_rows": len(calibration_rows)})
    log.info("intent head: %s", stats)
    return head, stats
