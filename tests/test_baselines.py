"""The intent baselines (TF-IDF, keywords), the fallback-chain metric, and extra template files."""

import json
import math

import pytest

from domaintune.classifiers.keywords import KeywordClassifier
from domaintune.classifiers.tfidf import TfidfIntentClassifier
from domaintune.data.common import InputError
from domaintune.data.intents import Templates, build_intents
from domaintune.evaluation.baselines import score_baselines, train_tfidf
from domaintune.evaluation.chain import chain_accuracy, chain_report
from domaintune.params import ClassifierTier, KeywordTier, ModelTier, load_params
from domaintune.records import INTENTS


@pytest.fixture(scope="module")
def intent_records(root):
    p = load_params(root / "params.yaml")
    cfg = p.data.intents.model_copy(update={
        "utterances": str(root / p.data.intents.utterances),
        "templates_dir": str(root / p.data.intents.templates_dir)})
    return build_intents(cfg, p.seed)[0]


def test_tfidf_learns_held_out_phrasings_and_survives_save_and_load(intent_records, tmp_path):
    clf = train_tfidf(intent_records, c=10.0, seed=0)
    test = [r for r in intent_records if r["split"] == "test"]
    texts = [r["messages"][-2]["content"] for r in test]
    acc = sum(o["primary_intent"] == r["meta"]["intent"] for o, r in zip(clf.classify_many(texts), test,
                                                                         strict=True)) / len(test)
    assert acc > 3 / len(INTENTS)  # far above chance on templates it never saw
    clf.save(tmp_path / "tfidf")
    assert not list((tmp_path / "tfidf").glob("*.pkl")) and not list((tmp_path / "tfidf").glob("*.joblib"))
    loaded = TfidfIntentClassifier.load(tmp_path / "tfidf")
    assert loaded.classify_many(texts) == clf.classify_many(texts)
    with pytest.raises(FileNotFoundError, match="dvc repro baselines"):
        TfidfIntentClassifier.load(tmp_path / "nowhere")


def test_baselines_are_scored_per_language_with_an_answer_per_row(intent_records, root):
    test = [r for r in intent_records if r["split"] == "test"][:40]
    out = score_baselines(test, train_tfidf(intent_records, 10.0, 0),
                          KeywordClassifier.from_file(root / "data/raw/serving/intent_keywords.yaml"),
                          list(INTENTS), train_rows=123)
    assert out["examples"] == 40 and out["tfidf_train_rows"] == 123
    assert set(out["tfidf"]["per_language"]) == {r["lang"] for r in test}
    assert [p["id"] for p in out["predictions"]] == [r["id"] for r in test]
    hits = sum(p["tfidf"]["primary_intent"] == r["meta"]["intent"] for p, r in zip(out["predictions"], test,
                                                                                    strict=True))
    assert math.isclose(out["tfidf"]["accuracy"], hits / 40)


def _pred(i, actual, scored, conf, lang="en"):
    return {"id": f"r{i}", "actual": actual, "scored": scored, "scored_confidence": conf, "lang": lang}


def _ans(label, conf):
    return {"primary_intent": label, "confidence": conf, "all_intents": [label]}


def test_chain_replays_the_served_tiers_with_their_thresholds():
    model = [_pred(0, "weather", "weather", 0.9), _pred(1, "restaurant", "events", 0.3),
             _pred(2, "shopping", "events", 0.2, "de"), _pred(3, "general", "events", 0.1, "de")]
    base = [{"id": "r0", "tfidf": _ans("events", 0.9), "keywords": None},
            {"id": "r1", "tfidf": _ans("restaurant", 0.8), "keywords": None},
            {"id": "r2", "tfidf": _ans("events", 0.2), "keywords": _ans("shopping", 1.0)},
            {"id": "r3", "tfidf": _ans("events", 0.2), "keywords": None}]
    tiers = [ModelTier(kind="model", threshold=0.5), ModelTier(kind="second_model"),
             ClassifierTier(kind="classifier", threshold=0.5), KeywordTier(kind="keywords", threshold=0.5)]
    out = chain_accuracy(model, base, tiers, "general")
    assert out["accuracy"] == 1.0  # model, classifier, keywords, default: each right once
    assert out["answered_by"] == {"classifier": 0.25, "default": 0.25, "keywords": 0.25, "model": 0.25}
    assert out["per_language"] == {"de": 1.0, "en": 1.0}
    trusting = [ModelTier(kind="model", threshold=0.0), *tiers[1:]]
    assert chain_accuracy(model, base, trusting, "general")["accuracy"] == 0.25
    with pytest.raises(ValueError, match="different rows"):
        chain_accuracy(model, base[:2], tiers, "general")
    # serve.unsure: r3 (every tier below its threshold) takes the classifier's guess, not `general`
    unsure = chain_accuracy(model, base, tiers, "general", unsure="classifier")
    assert unsure["answered_by"] == {"classifier": 0.5, "keywords": 0.25, "model": 0.25}
    assert unsure["accuracy"] == 0.75  # the guess (events) is wrong for r3, whose answer was general
    report = chain_report(model, {"predictions": base, "calibration_split": {
        "predictions": base[:2], "tfidf": {"accuracy": 0.5}, "keywords": {"accuracy": 0.0}}},
        tiers, "general", "classifier", calibration_preds=model[:2])
    assert report["accuracy"] == 0.75 and report["with_default_intent"] == 1.0
    assert report["calibration_split"] == {"accuracy": 1.0, "answered_by": {"classifier": 0.5, "model": 0.5},
                                           "examples": 2, "with_default_intent": 1.0, "model": 0.5,
                                           "tfidf": 0.5, "keywords": 0.0}


def test_extra_template_files_add_phrasings_and_skip_repeats(root, tmp_path):
    utterances = root / "data/raw/intents/utterances.yaml"
    base = Templates(utterances)
    existing = next(t for (i, lang, t) in base.items if lang == "de" and i == ("weather",))
    extra = tmp_path / "templates"
    extra.mkdir()
    (extra / "de.yaml").write_text(json.dumps({
        "intents": {"weather": [existing.lower() + "!!", "regnet es morgen in {city}"]},
        "multi_intent": [{"text": "wetter und essen?", "intents": ["weather", "restaurant"]}]}), encoding="utf-8")
    more = Templates(utterances, extra)
    assert more.repeats_skipped == 1  # the same template in other case and punctuation
    added = more.items[len(base.items):]
    assert added == [(("weather",), "de", "regnet es morgen in {city}"),
                     (("weather", "restaurant"), "de", "wetter und essen?")]


@pytest.mark.parametrize("name, content, message", [
    ("german.yaml", {"intents": {"weather": ["x"]}}, "name the file after its language code"),
    ("de.yaml", {"intents": {"wether": ["regnet es?"]}}, "unknown intents"),
    ("de.yaml", {"intents": {"weather": ["in {town}"]}}, "slot {town} is not defined"),
    ("de.yaml", {"intent": {"weather": ["x"]}}, "de.yaml"),
])
def test_a_bad_template_file_is_named_in_the_error(root, tmp_path, name, content, message):
    (tmp_path / name).write_text(json.dumps(content), encoding="utf-8")
    with pytest.raises(InputError, match=message) as e:
        Templates(root / "data/raw/intents/utterances.yaml", tmp_path)
    assert name in str(e.value)
