"""An intent head on the specialist's hidden states: multinomial logistic regression (scikit-learn)
over the query's pooled hidden states at several layers (``eval.intent_head.layers`` and ``pooling``).

Why: label scoring reads the intent off the LM head, which one pass of SGD over the intent rows
fits only loosely. The same forward pass also holds hidden states that separate the intents
better; a linear head fitted to convergence on them (seconds, no backward pass) is the
classifier layer practice puts on a causal LM
(``AutoModelForSequenceClassification`` is one linear layer too). It replaces the label
log-likelihoods where ``LabelScorer`` has one, so the temperature, the JSON answer, batching and
the serving chain are the same code.

With a ``text_weight`` above 0 the head also carries the TF-IDF classifier of stage ``baselines``
and adds its log-probabilities, times that weight, to its own before normalizing: a product of
experts. The two read different things (hidden states of the model, character n-grams of the
text) and err on different rows, so the blend beats both on held-out phrasings (the weight is
chosen on the calibration split by stage ``intent_head``; ``eval.intent_head.tfidf_weights``).

Stored as safetensors (weights) with its layers and labels in the metadata, the TF-IDF classifier
in ``tfidf/`` beside it (JSON + safetensors): no pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from domaintune.classifiers.tfidf import TfidfIntentClassifier

FORMAT = "domaintune-intent-head-1"
HEAD_FILE = "head.safetensors"
POOLINGS = ("mean", "last", "mean+last")  # how LabelScorer.features pools the query's tokens
TEXT_DIR = "tfidf"  # the blended TF-IDF classifier, beside the head's file


@dataclass
class IntentHead:
    labels: list[str]
    layers: list[int]        # hidden_states indices (0: embeddings), pooled over the query's tokens
    mean: np.ndarray         # standardization of the features (d,)
    scale: np.ndarray
    coef: np.ndarray         # (labels, d)
    intercept: np.ndarray    # (labels,)
    pooling: str = "mean"    # one of POOLINGS
    text_weight: float = 0.0  # weight of the blended TF-IDF classifier's log-probabilities (0: the head alone)
    text_model: TfidfIntentClassifier | None = None

    def __post_init__(self) -> None:
        if self.text_weight < 0:
            raise ValueError(f"text_weight must be >= 0, got {self.text_weight}")
        if self.text_weight > 0:
            if self.text_model is None:
                raise ValueError(f"text_weight {self.text_weight} needs the TF-IDF classifier it weighs")
            if sorted(self.text_model.labels) != sorted(self.labels):
                raise ValueError(f"the TF-IDF classifier knows labels {self.text_model.labels}, the head {self.labels}")

    @property
    def blended(self) -> bool:
        return self.text_weight > 0

    def text_log_proba(self, texts: list[str]) -> np.ndarray:
        """The TF-IDF part of the blend, ``text_weight`` x its log-probabilities, in ``labels`` order."""
        if not self.blended:
            return np.zeros((len(texts), len(self.labels)))
        probs = self.text_model.probabilities(texts)
        order = [self.text_model.labels.index(label) for label in self.labels]
        return self.text_weight * np.log(np.clip(probs[:, order], 1e-12, None))

    def log_proba(self, features: np.ndarray, texts: list[str] | None = None) -> np.ndarray:
        """Log-probability of each label, rows of ``features`` (n, d) -> (n, labels); a blended head
        also needs the ``texts`` the features were read from."""
        z = ((features - self.mean) / self.scale) @ self.coef.T + self.intercept
        if self.blended:
            if texts is None or len(texts) != len(z):
                raise ValueError("a head blended with TF-IDF scores texts: pass the texts the features came from")
            z = z + self.text_log_proba(texts)
        return log_softmax(z)

    def alone(self, log_probs: np.ndarray, texts: list[str]) -> np.ndarray:
        """What the head alone gives, recovered from the blend's ``log_probs`` of ``texts`` (exact:
        the blend is a sum before one normalization), so one pass reports both."""
        return log_softmax(np.asarray(log_probs, dtype=np.float64) - self.text_log_proba(texts))

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {k: np.ascontiguousarray(getattr(self, k), dtype=np.float32)
                   for k in ("mean", "scale", "coef", "intercept")}
        tmp = path.with_suffix(path.suffix + ".tmp")
        if self.blended:  # first, so a head file never names a classifier that is not there
            self.text_model.save(path.parent / TEXT_DIR)
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "labels": json.dumps(self.labels),
                                               "layers": json.dumps(self.layers),
                                               "pooling": self.pooling, "text_weight": repr(self.text_weight)})
        tmp.replace(path)  # never a half-written head where serving looks

    @classmethod
    def load(cls, path: str | Path) -> IntentHead:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no intent head here (run `dvc repro intent_head`)")
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not an intent head (format {meta.get('format')!r}, expected {FORMAT!r})")
        t = load_file(str(path))
        try:
            weight = float(meta.get("text_weight", 0.0))  # heads saved before the blend: the head alone
        except ValueError:
            raise ValueError(f"{path}: text_weight {meta['text_weight']!r} is not a number") from None
        head = cls(labels=json.loads(meta["labels"]), layers=[int(x) for x in json.loads(meta["layers"])],
                   mean=t["mean"], scale=t["scale"], coef=t["coef"], intercept=t["intercept"],
                   pooling=meta.get("pooling", "mean"),  # heads saved before pooling was a choice: mean
                   text_weight=weight,
                   text_model=TfidfIntentClassifier.load(path.parent / TEXT_DIR) if weight > 0 else None)
        if head.pooling not in POOLINGS:
            raise ValueError(f"{path}: pooling {head.pooling!r} is not one of {list(POOLINGS)}")
        d = head.mean.shape[0]
        if head.coef.shape != (len(head.labels), d) or head.intercept.shape != (len(head.labels),):
            raise ValueError(f"{path}: weights of shape {head.coef.shape} do not match {len(head.labels)} labels "
                             f"and {d} features")
        return head


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def fit_head(features: np.ndarray, targets: list[str], labels: list[str], layers: list[int], c: float,
             seed: int, pooling: str = "mean") -> IntentHead:
    """Fit the head on training rows' features; every label must occur (its row order is ``labels``)."""
    missing = sorted(set(labels) - set(targets))
    if missing:
        raise ValueError(f"no training rows for intents {missing}: the head cannot learn them")
    unknown = sorted(set(targets) - set(labels))
    if unknown:
        raise ValueError(f"training rows carry unknown intents {unknown}")
    scaler = StandardScaler().fit(features)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    clf = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    clf.fit((features - scaler.mean_) / scale, np.array([labels.index(t) for t in targets]))
    order = [list(clf.classes_).index(i) for i in range(len(labels))]
    return IntentHead(labels=list(labels), layers=list(layers), mean=scaler.mean_.astype(np.float32),
                      scale=scale.astype(np.float32), coef=clf.coef_[order].astype(np.float32),
                      intercept=clf.intercept_[order].astype(np.float32), pooling=pooling)


def load_intent_head(directory: str | Path | None) -> IntentHead | None:
    """The head stage ``intent_head`` wrote to ``directory``; None for no directory, or where the
    stage ran with ``eval.intent_head.enabled: false`` (its ``fit.json`` says so)."""
    if directory is None:
        return None
    directory = Path(directory)
    fit = directory / "fit.json"
    if not fit.is_file():
        raise FileNotFoundError(f"{fit}: no intent head fit here (run `dvc repro intent_head`, or pass "
                                "intent_head: null to go without)")
    try:
        enabled = json.loads(fit.read_text())["enabled"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ValueError(f"{fit}: not an intent head fit record ({e})") from e
    return IntentHead.load(directory / HEAD_FILE) if enabled else None
