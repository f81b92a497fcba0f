"""Fit one model's label-scoring temperature on the calibration split (intents on templates that
neither training nor the test set uses), and read it back where label scoring runs."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from domaintune.evaluation.calibration import expected_calibration_error, fit_temperature, nll
from domaintune.evaluation.label_scoring import LabelScorer, softmax
from domaintune.modeling.intent_head import IntentHead
from domaintune.records import INTENTS

log = logging.getLogger(__name__)


def system_prompt(records: list[dict]) -> str | None:
    """The one system prompt intent rows carry (label scoring caches it)."""
    prompts = {r["messages"][0]["content"] for r in records if r["messages"][0]["role"] == "system"}
    if len(prompts) > 1:
        raise ValueError("intent rows carry different system prompts; label scoring needs one")
    return prompts.pop() if prompts else None


def _confidence_and_correct(logits: np.ndarray, targets: np.ndarray, t: float) -> tuple[list[float], list[bool]]:
    probs = [softmax(list(row), t) for row in logits]
    return [max(p) for p in probs], [int(np.argmax(p)) == y for p, y in zip(probs, targets, strict=True)]


def calibrate(model, tok, rows: list[dict], enabled: bool = True, head: IntentHead | None = None) -> dict:
    """The temperature and what it changed on ``rows`` (NLL and ECE before and after).

    With no rows, or ``enabled`` false, the temperature is 1 (label scoring unchanged) and the
    result says why."""
    labels = list(INTENTS)
    rows = [r for r in rows if r["task"] == "intent"]
    out: dict = {"temperature": 1.0, "rows": len(rows), "per_language": dict(sorted(Counter(r["lang"] for r in rows)
                                                                                    .items()))}
    if not enabled:
        return {**out, "fitted": False, "why": "eval.calibrate is false"}
    if not rows:
        log.warning("no calibration rows (data.intents.calibration_examples_per_intent is 0): temperature 1")
        return {**out, "fitted": False, "why": "no calibration rows"}
    scorer = LabelScorer(model, tok, labels, system_prompt(rows), head=head)
    logits = np.asarray([scorer.label_logits(r["messages"][-2]["content"])
                         for r in tqdm(rows, desc="calibration rows", mininterval=10)])
    targets = np.asarray([labels.index(r["meta"]["intent"]) for r in rows])
    t = fit_temperature(logits.tolist(), targets.tolist())
    before, after = _confidence_and_correct(logits, targets, 1.0), _confidence_and_correct(logits, targets, t)
    # the calibrated answers, laid out as evaluate's predictions: the serving chain replays them
    predictions = [{"id": r["id"], "actual": r["meta"]["intent"], "lang": r["lang"],
                    "scored": labels[int(np.argmax(row))], "scored_confidence": round(conf, 4)}
                   for r, row, conf in zip(rows, logits, after[0], strict=True)]
    return {**out, "temperature": t, "fitted": True, "head": head is not None, "accuracy": float(np.mean(before[1])),
            "nll": {"before": nll(logits, targets, 1.0), "after": nll(logits, targets, t)},
            "ece": {"before": expected_calibration_error(*before), "after": expected_calibration_error(*after)},
            "mean_confidence": {"before": float(np.mean(before[0])), "after": float(np.mean(after[0]))},
            "predictions": predictions}


def load_temperature(path: str | Path | None) -> float:
    """The temperature a ``calibrate`` stage wrote; 1 (uncalibrated) when ``path`` is None or missing."""
    if path is None:
        return 1.0
    path = Path(path)
    if not path.is_file():
        log.warning("%s: no calibration file; label probabilities are uncalibrated (run `dvc repro calibrate`)", path)
        return 1.0
    try:
        t = float(json.loads(path.read_text())["temperature"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a calibration file (needs a numeric 'temperature'): {e}") from e
    if not t > 0:
        raise ValueError(f"{path}: temperature must be positive, got {t}")
    return t
