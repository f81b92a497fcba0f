"""Style score: a TF-IDF + logistic regression classifier of the persona's corpus against plain
assistant answers, fitted in the DAG, then asked of each model answer: does this read like the
corpus? The share of answers at or above the threshold is the style score.

Corpus passages (200-500 words) are cut into pieces of about an answer's length first, so the
classifier does not learn "long means persona". Character 2-5 grams within words: voice lives in
spellings, contractions and turns of phrase ("warn't", "a-going", "reckon"), and character grams
generalize across the topics of a novel and of an assistant's answers better than whole words.
"""

from __future__ import annotations

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

PIECE_WORDS = 80


def pieces(text: str, words: int = PIECE_WORDS) -> list[str]:
    """``text`` in consecutive pieces of ``words`` words (a short tail joins the last piece)."""
    w = text.split()
    cuts = list(range(0, max(1, len(w) - words // 2), words))
    return [" ".join(w[a: b]) for a, b in zip(cuts, [*cuts[1:], len(w)], strict=True)]


def fit_style(rows: list[dict], c: float, seed: int) -> Pipeline:
    """``rows``: ``{"text", "label"}`` with label 1 for the persona's corpus, 0 for plain answers."""
    labels = {r["label"] for r in rows}
    if labels != {0, 1}:
        raise ValueError(f"the style classifier needs both classes, got labels {sorted(labels)}")
    texts, ys = [], []
    for r in rows:
        parts = pieces(r["text"]) if r["label"] == 1 else [r["text"]]
        texts += parts
        ys += [r["label"]] * len(parts)
    clf = make_pipeline(
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2),
        LogisticRegression(C=c, class_weight="balanced", max_iter=3000, random_state=seed),
    )
    return clf.fit(texts, ys)


def style_scores(clf: Pipeline, answers: list[str]) -> list[float]:
    """P(persona) per answer."""
    return [float(p) for p in clf.predict_proba(answers)[:, 1]] if answers else []
