"""The keyword tier of the fallback chain: a multilingual rule classifier, no model.

It answers in the model's JSON shape, with a confidence that is the top intent's share of the
matched keyword words, so the router treats it like any other tier.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from domaintune.records import INTENTS

LANGS = ("en", "tr", "ar", "fr", "de", "ru")
_ARABIC = re.compile(r"[\u0600-\u06FF]")


class KeywordFileError(ValueError):
    """The keyword file is missing or malformed: the message names the file and the key."""


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    intents: dict[str, dict[str, list[str]]]
    weights: dict[str, float] = {}


def _pattern(keyword: str) -> re.Pattern:
    kw = keyword.casefold().strip()
    if _ARABIC.search(kw):  # attached articles and prepositions: match inside words
        return re.compile(re.escape(kw))
    if kw.endswith("*"):
        return re.compile(r"(?<!\w)" + re.escape(kw[:-1]))
    return re.compile(r"(?<!\w)" + re.escape(kw) + r"(?!\w)")


class KeywordClassifier:
    def __init__(self, rules: dict[str, list[tuple[re.Pattern, int]]], weights: dict[str, float] | None = None):
        self.rules, self.weights = rules, weights or {}

    @classmethod
    def from_file(cls, path: str | Path) -> KeywordClassifier:
        path = Path(path)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            data = _File.model_validate(raw)
        except FileNotFoundError:
            raise KeywordFileError(f"{path}: file not found") from None
        except (yaml.YAMLError, ValidationError) as e:
            raise KeywordFileError(f"{path}: {e}") from None
        rules: dict[str, list[tuple[re.Pattern, int]]] = {}
        for intent, by_lang in data.intents.items():
            if intent not in INTENTS:
                raise KeywordFileError(f"{path}: intents.{intent}: not one of the intents {list(INTENTS)}")
            for lang, words in by_lang.items():
                if lang not in LANGS:
                    raise KeywordFileError(f"{path}: intents.{intent}.{lang}: unknown language, use one of {LANGS}")
                for w in words:
                    if not str(w).strip(" *"):
                        raise KeywordFileError(f"{path}: intents.{intent}.{lang}: empty keyword")
                    rules.setdefault(intent, []).append((_pattern(str(w)), len(str(w).split())))
        for intent, weight in data.weights.items():
            if intent not in INTENTS or weight <= 0:
                raise KeywordFileError(f"{path}: weights.{intent}: an intent with a positive weight, got {weight}")
        return cls(rules, data.weights)

    def scores(self, text: str) -> dict[str, float]:
        """Matched keyword words per intent, times the intent's weight (intents with no match left out)."""
        folded = text.casefold()
        out = {}
        for intent, pats in self.rules.items():
            s = sum(n for pat, n in pats if pat.search(folded))
            if s:
                out[intent] = s * self.weights.get(intent, 1.0)
        return out

    def classify(self, text: str) -> dict | None:
        """The intent JSON, or ``None`` when no keyword matches."""
        scores = self.scores(text)
        if not scores:
            return None
        ranked = sorted(scores, key=lambda k: (-scores[k], INTENTS.index(k)))
        best = ranked[0]
        return {"primary_intent": best, "confidence": round(scores[best] / sum(scores.values()), 4),
                "all_intents": [k for k in ranked if scores[k] * 2 >= scores[best]]}
