"""The intent head: its features against a brute-force forward, its file, and label scoring through it."""

import json
import math

import numpy as np
import pytest
import torch

from domaintune.records import INTENTS

LABELS = list(INTENTS)


@pytest.fixture(scope="module")
def scorer(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from domaintune.data.intents import SYSTEM_PROMPT
    from domaintune.evaluation.label_scoring import LabelScorer

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    return LabelScorer(model, AutoTokenizer.from_pretrained(tiny_model), LABELS, SYSTEM_PROMPT)


def separable(n_per_label: int = 6, d: int = 8, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 5, (len(LABELS), d))
    x = np.concatenate([c + rng.normal(0, 0.5, (n_per_label, d)) for c in centers]).astype(np.float32)
    return x, [label for label in LABELS for _ in range(n_per_label)]


def test_features_are_the_querys_mean_hidden_states_whatever_the_padding(scorer):
    texts = ["hi", "Where can I eat good kebab near Taksim tonight with my two kids and my parents?"]
    layers = [0, 1, 2]
    batch = scorer.features(texts, layers)
    hidden = scorer.model.config.hidden_size
    assert batch.shape == (2, hidden * len(layers))
    for text, row in zip(texts, batch, strict=True):
        ids = scorer._prompt_ids(text)
        with torch.inference_mode():
            states = scorer.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        # The query's own tokens: after the shared system prefix, the answer opening included.
        ref = torch.cat([states[i][0, len(scorer.shared_ids):].mean(0) for i in layers]).numpy()
        assert row == pytest.approx(ref, abs=1e-4)
        assert scorer.features([text], layers)[0] == pytest.approx(ref, abs=1e-4)  # alone == padded
    with pytest.raises(ValueError, match=r"each must lie in 0\.\.2"):
        scorer.features(texts, [3])


def test_last_token_pooling_reads_the_position_the_label_is_scored_from(scorer):
    texts = ["hi", "Where can I eat good kebab near Taksim tonight with my two kids and my parents?"]
    layers = [0, 2]
    both = scorer.features(texts, layers, "mean+last")
    hidden = scorer.model.config.hidden_size
    assert both.shape == (2, 2 * hidden * len(layers))
    assert both[:, :hidden * len(layers)] == pytest.approx(scorer.features(texts, layers), abs=1e-5)
    last = scorer.features(texts, layers, "last")
    assert last == pytest.approx(both[:, hidden * len(layers):], abs=1e-5)
    for text, row in zip(texts, last, strict=True):
        ids = scorer._prompt_ids(text)  # ends with the answer's opening: the next token is the label
        with torch.inference_mode():
            states = scorer.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
        assert row == pytest.approx(torch.cat([states[i][0, -1] for i in layers]).numpy(), abs=1e-4)
    with pytest.raises(ValueError, match="pooling 'max'"):
        scorer.features(texts, layers, "max")


def test_a_fitted_head_separates_what_is_separable_and_survives_its_file(tmp_path):
    from domaintune.modeling.intent_head import IntentHead, fit_head

    x, y = separable()
    head = fit_head(x, y, LABELS, [1, 2], c=1.0, seed=0, pooling="last")
    assert [LABELS[k] for k in head.log_proba(x).argmax(1)] == y
    assert np.exp(head.log_proba(x)).sum(1) == pytest.approx(np.ones(len(y)), abs=1e-5)
    head.save(tmp_path / "head.safetensors")
    back = IntentHead.load(tmp_path / "head.safetensors")
    assert back.pooling == "last"
    assert back.labels == LABELS and back.layers == [1, 2]
    assert back.log_proba(x) == pytest.approx(head.log_proba(x), abs=1e-5)
    assert not list(tmp_path.glob("*.tmp"))


def test_bad_fits_and_bad_files_are_refused_by_name(tmp_path):
    from safetensors.numpy import save_file

    from domaintune.modeling.intent_head import IntentHead, fit_head

    x, y = separable()
    keep = [i for i, label in enumerate(y) if label != LABELS[0]]
    with pytest.raises(ValueError, match=f"no training rows for intents \\['{LABELS[0]}'\\]"):
        fit_head(x[keep], [y[i] for i in keep], LABELS, [1], 1.0, 0)
    with pytest.raises(ValueError, match="unknown intents \\['flights'\\]"):
        fit_head(x, y[:-1] + ["flights"], LABELS, [1], 1.0, 0)
    other = tmp_path / "other.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(ValueError, match="other.safetensors: not an intent head"):
        IntentHead.load(other)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        IntentHead.load(tmp_path / "missing.safetensors")


def test_load_intent_head_honours_a_disabled_fit(tmp_path):
    from domaintune.modeling.intent_head import load_intent_head

    assert load_intent_head(None) is None
    (tmp_path / "fit.json").write_text(json.dumps({"enabled": False}))
    assert load_intent_head(tmp_path) is None
    (tmp_path / "fit.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="fit.json: not an intent head fit record"):
        load_intent_head(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere/fit.json"):
        load_intent_head(tmp_path / "nowhere")


def test_label_scoring_reads_the_head_in_batches_and_alone(scorer):
    from domaintune.evaluation.label_scoring import LabelScorer
    from domaintune.modeling.intent_head import fit_head
    from domaintune.training.intent_head import fit_intent_head

    # Every label with its own phrasings; the tiny random model's states must still tell them apart.
    rows = [{"messages": [{"role": "user", "content": f"{label.replace('_', ' ')} please, number {i}"},
                          {"role": "assistant", "content": "{}"}], "meta": {"intent": label}}
            for label in LABELS for i in range(3)]
    head, stats = fit_intent_head(scorer.model, scorer.tok, rows, LABELS, scorer.system_prompt, [1, 2], 10.0, 0,
                                  pooling="mean+last")
    assert stats["rows"] == len(rows) and stats["features"] == 4 * scorer.model.config.hidden_size
    assert head.pooling == stats["pooling"] == "mean+last"
    assert stats["train_accuracy"] >= 0.9
    with_head = LabelScorer(scorer.model, scorer.tok, LABELS, scorer.system_prompt, temperature=2.0, head=head)
    texts = [r["messages"][0]["content"] for r in rows[::5]]
    batch = with_head.scores_batch(texts)
    for text, probs in zip(texts, batch, strict=True):
        logp = head.log_proba(scorer.features([text], [1, 2], "mean+last"))[0]
        expected = [math.exp((v - logp.max()) / 2.0) for v in logp]
        assert probs == pytest.approx([e / sum(expected) for e in expected], abs=1e-5)
        assert with_head.scores(text) == pytest.approx(probs, abs=1e-5)
    wrong = fit_head(*separable(), LABELS, [1], 1.0, 0)
    wrong.labels = list(reversed(LABELS))
    with pytest.raises(ValueError, match="fitted for labels"):
        LabelScorer(scorer.model, scorer.tok, LABELS, scorer.system_prompt, head=wrong)


def _tfidf(labels_of_texts: dict[str, str]):
    from domaintune.classifiers.tfidf import TfidfIntentClassifier

    return TfidfIntentClassifier(c=10.0, seed=0).fit(list(labels_of_texts), list(labels_of_texts.values()))


def _phrasings(n_per_label: int = 6) -> list[str]:
    return [f"{label.replace('_', ' ')} please, take {i}" for label in LABELS for i in range(n_per_label)]


def test_a_blended_head_adds_weighted_tfidf_log_probs_and_gives_the_head_back(tmp_path):
    from domaintune.modeling.intent_head import IntentHead, fit_head, log_softmax

    x, y = separable()
    texts = _phrasings()
    tfidf = _tfidf(dict(zip(texts, y, strict=True)))
    alone = fit_head(x, y, LABELS, [1, 2], c=0.05, seed=0)
    head = IntentHead(**{**vars(alone), "text_weight": 1.5, "text_model": tfidf})
    probs = tfidf.probabilities(texts)[:, [tfidf.labels.index(label) for label in LABELS]]
    expected = log_softmax(alone.log_proba(x) + 1.5 * np.log(probs))
    blended = head.log_proba(x, texts)
    assert blended == pytest.approx(expected, abs=1e-5)
    assert not np.allclose(blended, alone.log_proba(x), atol=1e-3)  # the TF-IDF part moved the scores
    assert head.alone(blended, texts) == pytest.approx(alone.log_proba(x), abs=1e-5)
    with pytest.raises(ValueError, match="pass the texts"):
        head.log_proba(x)
    head.save(tmp_path / "head.safetensors")
    back = IntentHead.load(tmp_path / "head.safetensors")
    assert back.text_weight == 1.5 and back.text_model is not None
    assert back.log_proba(x, texts) == pytest.approx(blended, abs=1e-5)
    alone.save(tmp_path / "alone" / "head.safetensors")
    assert IntentHead.load(tmp_path / "alone" / "head.safetensors").text_model is None
    with pytest.raises(ValueError, match="needs the TF-IDF classifier"):
        IntentHead(**{**vars(alone), "text_weight": 1.0})
    partial = _tfidf({t: label for t, label in zip(texts, y, strict=True) if label != LABELS[0]})
    with pytest.raises(ValueError, match="the TF-IDF classifier knows labels"):
        IntentHead(**{**vars(alone), "text_weight": 1.0, "text_model": partial})


def test_the_blend_weight_is_the_one_that_scores_best_on_the_rows_it_is_chosen_on():
    from domaintune.modeling.intent_head import fit_head
    from domaintune.training.intent_head import choose_text_weight

    x, y = separable()
    texts = _phrasings()
    tfidf = _tfidf(dict(zip(texts, y, strict=True)))  # right on these texts
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, x.shape).astype(np.float32)
    # A head that reads noise: the TF-IDF part must carry the answer, so a weight above 0 wins.
    blind = fit_head(noise, y, LABELS, [1], c=0.05, seed=0)
    w, tried = choose_text_weight(blind, rng.normal(0, 1, x.shape).astype(np.float32), texts, y, tfidf,
                                  [0.0, 1.0, 4.0])
    assert w > 0 and [t["weight"] for t in tried] == [0.0, 1.0, 4.0]
    assert max(t["accuracy"] for t in tried) == next(t["accuracy"] for t in tried if t["weight"] == w)
    # A head that is right, and a TF-IDF that learned shuffled labels: the head alone wins.
    shuffled = _tfidf(dict(zip(texts, rng.permutation(y).tolist(), strict=True)))
    sharp = fit_head(x, y, LABELS, [1], c=1.0, seed=0)
    w, tried = choose_text_weight(sharp, x, texts, y, shuffled, [0.0, 2.0, 8.0])
    assert w == 0.0 and tried[0]["accuracy"] == 1.0
    with pytest.raises(ValueError, match="no calibration rows"):
        choose_text_weight(sharp, x[:0], [], [], tfidf, [0.0, 1.0])


def test_the_stage_fit_chooses_its_blend_on_calibration_rows_and_label_scoring_serves_it(scorer):
    from domaintune.evaluation.label_scoring import LabelScorer
    from domaintune.training.intent_head import fit_intent_head

    def rows(template: str, n: int) -> list[dict]:
        return [{"messages": [{"role": "user", "content": template.format(label=label.replace('_', ' '), i=i)},
                              {"role": "assistant", "content": "{}"}], "meta": {"intent": label}}
                for label in LABELS for i in range(n)]

    train, calibration = rows("{label} please, number {i}", 2), rows("could you do {label}? ({i})", 1)
    tfidf = _tfidf({r["messages"][0]["content"]: r["meta"]["intent"] for r in train})
    head, stats = fit_intent_head(scorer.model, scorer.tok, train, LABELS, scorer.system_prompt, [1, 2], 10.0, 0,
                                  tfidf=tfidf, calibration_rows=calibration, text_weights=[0.0, 1.0])
    assert stats["calibration_rows"] == len(calibration) and [t["weight"] for t in stats["text_weights"]] == [0, 1]
    assert head.text_weight == stats["text_weight"] == min(
        stats["text_weights"], key=lambda t: (-t["accuracy"], t["nll"], t["weight"]))["weight"]
    blended = head if head.blended else type(head)(**{**vars(head), "text_weight": 1.0, "text_model": tfidf})
    texts = [r["messages"][0]["content"] for r in calibration[::4]]
    served = LabelScorer(scorer.model, scorer.tok, LABELS, scorer.system_prompt, head=blended).scores_batch(texts)
    expected = np.exp(blended.log_proba(scorer.features(texts, [1, 2]), texts))
    assert np.array(served) == pytest.approx(expected, abs=1e-5)
    with pytest.raises(ValueError, match="needs calibration rows"):
        fit_intent_head(scorer.model, scorer.tok, train, LABELS, scorer.system_prompt, [1], 10.0, 0, tfidf=tfidf,
                        text_weights=[1.0])
