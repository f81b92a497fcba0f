"""TF-IDF (character n-grams) + logistic regression: the two-second intent baseline, and the
"neural classifier" tier of the serving fallback chain.

Saved without pickle (pickles run code when loaded): the vocabulary and classes as JSON, the
idf, coefficients and intercepts as safetensors. Loading rebuilds the scikit-learn objects from
those arrays, so what serving loads is what the pipeline measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from domaintune.io import atomic_path

CONFIG = "tfidf_config.json"
WEIGHTS = "tfidf_weights.safetensors"


class TfidfIntentClassifier:
    def __init__(self, ngram_min: int = 2, ngram_max: int = 5, c: float = 10.0, seed: int = 0):
        self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(ngram_min, ngram_max), sublinear_tf=True,
                                          lowercase=True)
        self.clf = LogisticRegression(C=c, max_iter=2000, random_state=seed)

    def fit(self, texts: list[str], labels: list[str]) -> TfidfIntentClassifier:
        if len(set(labels)) < 2:
            raise ValueError(f"the TF-IDF baseline needs at least two intents to learn, got {sorted(set(labels))}")
        self.clf.fit(self.vectorizer.fit_transform(texts), labels)
        return self

    @property
    def labels(self) -> list[str]:
        return [str(c) for c in self.clf.classes_]

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return self.clf.predict_proba(self.vectorizer.transform(texts))

    def classify_many(self, texts: list[str]) -> list[dict]:
        """The model's JSON answer shape, the label's probability as confidence."""
        out = []
        for probs in self.probabilities(texts):
            best = int(np.argmax(probs))
            out.append({"primary_intent": self.labels[best], "confidence": round(float(probs[best]), 4),
                        "all_intents": [self.labels[best]]})
        return out

    def classify(self, text: str) -> dict:
        return self.classify_many([text])[0]

    def save(self, out_dir: str | Path) -> None:
        v = self.vectorizer
        config = {"labels": self.labels, "ngram_range": list(v.ngram_range), "analyzer": v.analyzer,
                  "sublinear_tf": v.sublinear_tf,
                  "vocabulary": {k: int(i) for k, i in sorted(v.vocabulary_.items(), key=lambda x: x[1])}}
        with atomic_path(out_dir, is_dir=True) as tmp:
            (tmp / CONFIG).write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
            # C order: scikit-learn keeps coef_ in Fortran order, and safetensors writes the raw buffer
            arrays = {"idf": v.idf_, "coef": self.clf.coef_, "intercept": self.clf.intercept_}
            save_file({k: np.ascontiguousarray(a, dtype=np.float64) for k, a in arrays.items()}, str(tmp / WEIGHTS))

    @classmethod
    def load(cls, model_dir: str | Path) -> TfidfIntentClassifier:
        model_dir = Path(model_dir)
        try:
            config = json.loads((model_dir / CONFIG).read_text(encoding="utf-8"))
            arrays = load_file(str(model_dir / WEIGHTS))
        except FileNotFoundError as e:
            raise FileNotFoundError(f"{model_dir}: not a TF-IDF classifier directory ({e.filename} missing); "
                                    "`dvc repro baselines` writes one") from None
        self = cls(*config["ngram_range"])
        v = self.vectorizer
        v.analyzer, v.sublinear_tf = config["analyzer"], config["sublinear_tf"]
        v.vocabulary_ = config["vocabulary"]
        v.idf_ = arrays["idf"]
        self.clf.classes_ = np.array(config["labels"])
        self.clf.coef_, self.clf.intercept_ = arrays["coef"], arrays["intercept"]
        return self
