"""Calibration of a classifier's confidence: expected calibration error and reliability bins."""

from __future__ import annotations


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
