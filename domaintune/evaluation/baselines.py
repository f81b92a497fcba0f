"""The cheap intent classifiers the specialist must beat, scored on the model's own test rows.

TF-IDF + logistic regression learns from the same intent training rows the pipeline built; the
keyword rules are hand-written (``data/raw/serving/intent_keywords.yaml``) and answer
``general`` when nothing matches, as the keywords tier alone would.
"""

from __future__ import annotations

import json

from domaintune.classifiers.keywords import KeywordClassifier
from domaintune.classifiers.tfidf import TfidfIntentClassifier
from domaintune.evaluation.intent import score_intents

NO_MATCH = {"primary_intent": "general", "confidence": 0.0, "all_intents": ["general"]}


def request(row: dict) -> str:
    """The user message an intent row classifies."""
    return row["messages"][-2]["content"]


def train_tfidf(rows: list[dict], c: float, seed: int) -> TfidfIntentClassifier:
    rows = [r for r in rows if r["task"] == "intent" and r["split"] == "train"]
    if not rows:
        raise ValueError("no intent training rows to fit the TF-IDF baseline on")
    return TfidfIntentClassifier(c=c, seed=seed).fit([request(r) for r in rows], [r["meta"]["intent"] for r in rows])


def score_baselines(test_rows: list[dict], tfidf: TfidfIntentClassifier, keywords: KeywordClassifier,
                    labels: list[str], train_rows: int) -> dict:
    """Accuracy, macro-F1 and per-language accuracy of each baseline, and its answer per test row
    (the fallback-chain metric replays these answers)."""
    texts = [request(r) for r in test_rows]
    answers = {"tfidf": tfidf.classify_many(texts),
               "keywords": [keywords.classify(t) for t in texts]}
    out: dict = {"examples": len(test_rows), "tfidf_train_rows": train_rows}
    for name, outs in answers.items():
        as_json = [json.dumps(o or NO_MATCH) for o in outs]
        out[name] = {k: v for k, v in score_intents(as_json, test_rows, labels).items() if k != "json_valid_rate"}
    out["predictions"] = [{"id": r["id"], "tfidf": t, "keywords": k}
                          for r, t, k in zip(test_rows, answers["tfidf"], answers["keywords"], strict=True)]
    return out
