"""Calibration of a classifier's confidence: expected calibration error, reliability bins, and the
temperature that makes label probabilities mean what they say."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar


def reliability(confidences: list[float], correct: list[bool], bins: int = 10) -> list[dict]:
    """Equal-width confidence bins: mean confidence, accuracy and count of each non-empty bin."""
    grouped: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for c, ok in zip(confidences, correct, strict=True):
        grouped[min(bins - 1, int(c * bins))].append((c, ok))
    return [{"bin": i, "confidence": sum(c for c, _ in g) / len(g), "accuracy": sum(ok for _, ok in g) / len(g),
             "count": len(g)} for i, g in enumerate(grouped) if g]


def expected_calibration_error(confidences: list[float], correct: list[bool], bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between confidence and accuracy over the bins."""
    n = len(confidences)
    if not n:
        return 0.0
    return sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in reliability(confidences, correct, bins))


def nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of ``targets`` under softmax(logits / temperature)."""
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(targets)), targets].mean())


def fit_temperature(logits: list[list[float]], targets: list[int], bounds: tuple[float, float] = (0.05, 20.0)) -> float:
    """Temperature scaling (Guo et al., 2017): the one scalar T that minimizes the NLL of held-out
    answers under softmax(logits / T). It changes confidences, never the ranking, so accuracy stays."""
    if not logits:
        raise ValueError("temperature scaling needs at least one held-out row")
    x, y = np.asarray(logits, dtype=float), np.asarray(targets)
    # NLL is smooth and unimodal in log T: a bounded 1-D search is enough, no autograd needed
    res = minimize_scalar(lambda log_t: nll(x, y, math.exp(log_t)), bounds=tuple(map(math.log, bounds)),
                          method="bounded", options={"xatol": 1e-4})
    return float(math.exp(res.x))
