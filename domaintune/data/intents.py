"""Intent-classification records with JSON answers, from hand-written multilingual templates.

Generalization is measured, not memorization: a share of the templates and of the slot values
(cities, museums, ...) is held out, and test utterances use only held-out ones.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from domaintune.data.common import heldout, load_checked, raw_error, rng, stable_hash
from domaintune.params import IntentData
from domaintune.records import INTENTS

SLOT = re.compile(r"{(\w+)}")
SINGLE_CONFIDENCE = 0.95
MULTI_CONFIDENCE = 0.85
MAX_DRAWS = 8  # tries per row to find an utterance not drawn before


# Short on purpose: the fine-tuned model learns the label set and the JSON keys from data, and
# every prompt token costs classification latency in serving and compute in training (on the
# CPU training runs at ~120 tokens/s). Listing the 15 labels made each example 1.8x longer and
# the base model scored 0% with and without it; spelling out the JSON keys cost 18 tokens a row.
SYSTEM_PROMPT = "Classify the travel message as intent JSON."


def answer(intents: list[str]) -> str:
    conf = SINGLE_CONFIDENCE if len(intents) == 1 else MULTI_CONFIDENCE
    return json.dumps({"primary_intent": intents[0], "confidence": conf, "all_intents": intents})


Text = Annotated[str, Field(min_length=1)]
Lang = Annotated[str, Field(pattern=r"^[a-z]{2}$")]
# at least two values, so a share can be held out for the test split and the rest still trains
SlotValues = Annotated[list[Text], Field(min_length=2)]


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MultiIntent(_Schema):
    intents: Annotated[list[str], Field(min_length=2)]
    text: Text


class UtterancesFile(_Schema):
    """The shape of data/raw/intents/utterances.yaml; a wrong shape stops the stage with file:line."""
    slots: dict[str, SlotValues] = Field(default_factory=dict)
    localized_slots: dict[str, dict[Lang, SlotValues]] = Field(default_factory=dict)
    intents: Annotated[dict[str, dict[Lang, Annotated[list[Text], Field(min_length=1)]]], Field(min_length=1)]
    multi_intent: dict[Lang, list[MultiIntent]] = Field(default_factory=dict)


class LanguageTemplatesFile(_Schema):
    """The shape of ``<templates_dir>/<lang>.yaml``: more templates for one language, same slots."""
    intents: dict[str, list[Text]]
    multi_intent: list[MultiIntent] = Field(default_factory=list)


def _norm(text: str) -> str:
    return " ".join(text.casefold().strip(string.punctuation + " ").split())


class Templates:
    """The parsed utterances file (and per-language template files), checked: every slot used is
    defined, every label known. A template repeating an earlier one of its language is skipped and
    counted, so a file added later can never put a copy of a held-out template into training."""

    def __init__(self, path: str | Path, templates_dir: str | Path | None = None):
        raw = load_checked(path, UtterancesFile)
        self.path = str(path)
        self.slots: dict[str, list[str]] = raw.slots
        self.localized: dict[str, dict[str, list[str]]] = raw.localized_slots
        self.labels = list(raw.intents)
        for label in self.labels:
            if label not in INTENTS:
                raise raw_error(path, ("intents", label), f"unknown intent {label!r}; the labels are {list(INTENTS)}")
        # (intents, lang, template) triples
        self.items: list[tuple[tuple[str, ...], str, str]] = []
        for intent, by_lang in raw.intents.items():
            for lang, texts in by_lang.items():
                for j, t in enumerate(texts):
                    self.items.append(((intent,), lang, self._check(t, lang, ("intents", intent, lang, j))))
        for lang, entries in raw.multi_intent.items():
            for i, e in enumerate(entries):
                where = ("multi_intent", lang, i)
                unknown = [x for x in e.intents if x not in self.labels]
                if unknown:
                    raise raw_error(path, (*where, "intents"), f"unknown intents {unknown}; known: {self.labels}")
                self.items.append((tuple(e.intents), lang, self._check(e.text, lang, (*where, "text"))))
        self.repeats_skipped = 0
        for extra in sorted(Path(templates_dir).glob("*.yaml")) if templates_dir else []:
            self._add_file(extra)

    def _add_file(self, path: Path) -> None:
        lang = path.stem
        if not re.fullmatch(r"[a-z]{2}", lang):
            raise raw_error(path, (), f"name the file after its language code (e.g. de.yaml), not {path.name!r}")
        data = load_checked(path, LanguageTemplatesFile)
        self.path = str(path)
        seen = {_norm(t) for _, lg, t in self.items if lg == lang}
        entries = [((intent,), texts) for intent, texts in data.intents.items()]
        entries += [(tuple(e.intents), [e.text]) for e in data.multi_intent]
        for i, (intents, texts) in enumerate(entries):
            unknown = [x for x in intents if x not in self.labels]
            if unknown:
                where = ("intents", intents[0]) if len(intents) == 1 else ("multi_intent", i - len(data.intents))
                raise raw_error(path, where, f"unknown intents {unknown}; known: {self.labels}")
            for j, t in enumerate(texts):
                where = ("intents", intents[0], j) if len(intents) == 1 else ("multi_intent", i - len(data.intents))
                text = self._check(t, lang, where)
                if _norm(text) in seen:
                    self.repeats_skipped += 1
                    continue
                seen.add(_norm(text))
                self.items.append((intents, lang, text))

    def _check(self, text: str, lang: str, where: tuple) -> str:
        if not isinstance(text, str) or not text.strip():
            raise raw_error(self.path, where, "empty template")
        for name in SLOT.findall(text):
            if name not in self.slots and lang not in self.localized.get(name, {}):
                raise raw_error(self.path, where, f"slot {{{name}}} is not defined for language {lang!r}")
        return text

    def values(self, name: str, lang: str) -> list[str]:
        return self.slots[name] if name in self.slots else self.localized[name][lang]


def build_intents(cfg: IntentData, seed: int) -> tuple[list[dict], dict]:
    """Return intent records (train, test and calibration) and counts for metrics/data.json.

    Templates are held out by content hash (stable as templates are added): the first
    ``heldout_template_share`` of each (intent, language) group for test, the next
    ``calibration_template_share`` for calibration, the rest for training. Each split draws from
    its own generator, test first: the test rows do not move when the training knobs
    (``examples_per_intent``) or templates only training uses change.
    """
    tpl = Templates(cfg.utterances, cfg.templates_dir)
    # Held-out templates per (intents, lang) group; held-out values per slot list.
    groups: dict[tuple, list[str]] = {}
    for intents, lang, text in tpl.items:
        groups.setdefault((intents[0] if len(intents) == 1 else "multi", lang), []).append(text)
    test_templates, calib_templates = set(), set()
    for texts in groups.values():
        test = heldout(texts, cfg.heldout_template_share)
        test_templates |= test
        if cfg.calibration_template_share > 0:
            calib_templates |= heldout(texts, cfg.heldout_template_share + cfg.calibration_template_share) - test
    test_values = {}
    for name, vals in tpl.slots.items():
        test_values[(name, None)] = heldout(vals, cfg.heldout_slot_share)
    for name, by_lang in tpl.localized.items():
        for lang, vals in by_lang.items():
            test_values[(name, lang)] = heldout(vals, cfg.heldout_slot_share)

    def split_of(text: str) -> str:
        return "test" if text in test_templates else "calibration" if text in calib_templates else "train"

    def fill(text: str, lang: str, split: str, r) -> str:
        # held-out slot values never reach training; calibration fills with them too, so that its
        # rows are as new to the model as the test rows (unseen templates and unseen values)
        def sub(m: re.Match) -> str:
            name = m.group(1)
            vals = tpl.values(name, lang)
            held = test_values[(name, None if name in tpl.slots else lang)]
            pool = [v for v in vals if (v in held) == (split != "train")] or vals
            return r.choice(sorted(pool))
        return SLOT.sub(sub, text)

    records, seen, duplicates, short = [], set(), Counter(), Counter()
    by_split = {"test": cfg.test_examples_per_intent, "calibration": cfg.calibration_examples_per_intent,
                "train": cfg.examples_per_intent}
    for split, per_intent in by_split.items():
        r = rng(seed, f"intents-{split}")
        n_split = 0
        # Stratified by intent (per_intent rows each) and by language: languages take turns across
        # the whole split, not restarting per intent, so no language is always last in line.
        turn = {"single": 0, "multi": 0}
        pool = [x for x in tpl.items if split_of(x[2]) == split]
        for label in tpl.labels:
            single = [x for x in pool if x[0] == (label,)]
            multi = [x for x in pool if len(x[0]) > 1 and x[0][0] == label]
            if not single:  # every group holds some templates out only when it has several
                short[split] += per_intent
                continue
            n_multi = round(per_intent * cfg.multi_intent_share) if multi else 0
            for k in range(per_intent):
                kind, group = ("multi", multi) if k < n_multi else ("single", single)
                langs = sorted({lang for _, lang, _ in group})
                lang = langs[turn[kind] % len(langs)]
                turn[kind] += 1
                cell = [x for x in group if x[1] == lang]
                # A repeat of an earlier utterance is redrawn from the same cell (a few tries), so the
                # strata keep their size; one that stays a repeat is dropped and counted.
                for _ in range(MAX_DRAWS):
                    intents, _, text = r.choice(cell)
                    utterance = fill(text, lang, split, r)
                    key = utterance.strip().lower().strip(string.punctuation + " ")
                    if key not in seen:
                        break
                else:
                    duplicates[split] += 1
                    continue
                seen.add(key)
                records.append({
                    "id": f"intent-{split}-{n_split:05d}",
                    "task": "intent", "lang": lang, "split": split,
                    "messages": [
                        {"role": "system", "content": SYSTEM_PROMPT},
                        {"role": "user", "content": utterance},
                        {"role": "assistant", "content": answer(list(intents))},
                    ],
                    "meta": {"intent": intents[0], "all_intents": list(intents), "template": stable_hash(text)[:10]},
                })
                n_split += 1
    stats = {
        "labels": len(tpl.labels),
        "templates": len(tpl.items),
        "template_repeats_skipped": tpl.repeats_skipped,
        "heldout_templates": len(test_templates),
        "calibration_templates": len(calib_templates),
        "duplicates_removed": sum(duplicates.values()),
        "duplicates_removed_by_split": dict(sorted(duplicates.items())),
        "rows_without_templates": dict(sorted(short.items())),  # an intent with no template in that split
        "by_split": dict(sorted(Counter(x["split"] for x in records).items())),
        "by_lang": dict(sorted(Counter(x["lang"] for x in records).items())),
        # What the test split alone uses, so anyone can check that no training example saw it.
        "heldout": {
            "templates": sorted(f"{stable_hash(t)[:10]} {t}" for t in test_templates),
            "calibration_templates": sorted(f"{stable_hash(t)[:10]} {t}" for t in calib_templates),
            "slot_values": {f"{name}.{lang}" if lang else name: sorted(vals)
                            for (name, lang), vals in sorted(test_values.items(), key=str) if vals},
        },
    }
    return records, stats
