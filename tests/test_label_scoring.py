"""The fast label-scoring classifier against a brute-force reference on the same model."""

import math

import pytest
import torch

from domaintune.records import INTENTS


@pytest.fixture(scope="module")
def scorer(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from domaintune.data.intents import SYSTEM_PROMPT
    from domaintune.evaluation.label_scoring import LabelScorer

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    return LabelScorer(model, AutoTokenizer.from_pretrained(tiny_model), list(INTENTS), SYSTEM_PROMPT)


def brute_force(scorer, text):
    """Each label's sequence run whole, without cache or custom mask; the same tokens summed."""
    totals = []
    for ids in scorer.label_ids:
        prompt = scorer._prompt_ids(text)
        with torch.inference_mode():
            logp = torch.log_softmax(scorer.model(input_ids=torch.tensor([prompt + ids])).logits[0].float(), -1)
        total = 0.0
        for i in range(len(ids)):
            if i == 0 or tuple(ids[:i]) in scorer.branches:
                total += float(logp[len(prompt) + i - 1, ids[i]])
        totals.append(total)
    m = max(totals)
    z = sum(math.exp(t - m) for t in totals)
    return [math.exp(t - m) / z for t in totals]


@pytest.mark.parametrize("text", ["hey there, good morning!", "Where can I eat good kebab near Taksim tonight?",
                                  "Quel temps fera-t-il à Paris demain ?"])
def test_scores_match_a_brute_force_forward_per_label(scorer, text):
    fast = scorer.scores(text)
    assert sum(fast) == pytest.approx(1.0, abs=1e-6)
    assert fast == pytest.approx(brute_force(scorer, text), abs=1e-4)
    assert scorer.scores(text) == pytest.approx(fast, abs=1e-6)  # the shared cache was restored


def test_labels_with_shared_first_tokens_are_told_apart(scorer):
    firsts = [ids[0] for ids in scorer.label_ids]
    shared = len(firsts) - len(set(firsts))
    # SmolLM2's tokenizer splits route_planning-like labels on common pieces: branch points exist
    # exactly when some labels share a first token.
    assert bool(scorer.branches) == (shared > 0)
    assert len({tuple(ids) for ids in scorer.label_ids}) == len(INTENTS)


def test_classify_returns_the_trained_json_schema(scorer):
    from domaintune.evaluation.intent import parse_intent

    out = scorer.classify_json("Any museums open on Monday in Rome?")
    parsed = parse_intent(out, list(INTENTS))
    assert parsed is not None and parsed["all_intents"][0] == parsed["primary_intent"]
    assert 1 / len(INTENTS) <= parsed["confidence"] <= 1


def test_a_batch_scores_each_text_as_if_alone(scorer):
    texts = ["hi", "Where can I eat good kebab near Taksim tonight with my two kids and my parents?",
             "Quel temps fera-t-il à Paris demain ?", "أين أفضل مكان للتسوق في دبي؟"]
    batch = scorer.scores_batch(texts)
    assert len(batch) == len(texts)
    for text, probs in zip(texts, batch, strict=True):
        assert probs == pytest.approx(scorer.scores(text), abs=1e-4)  # left padding changes nothing
    assert [a["primary_intent"] for a in scorer.classify_batch(texts)] == \
        [scorer.classify(t)["primary_intent"] for t in texts]
    assert scorer.scores_batch([]) == []


def test_a_temperature_changes_confidences_never_the_ranking(scorer):
    from domaintune.evaluation.label_scoring import LabelScorer

    text = "Where can I eat good kebab near Taksim tonight?"
    raw = scorer.scores(text)
    soft = LabelScorer(scorer.model, scorer.tok, scorer.labels, scorer.system_prompt, temperature=3.0)
    probs = soft.scores(text)
    assert sorted(range(len(raw)), key=raw.__getitem__) == sorted(range(len(probs)), key=probs.__getitem__)
    assert max(probs) < max(raw) and sum(probs) == pytest.approx(1.0, abs=1e-6)
    logits = scorer.label_logits(text)  # p_i ∝ exp(logit_i / T), whatever T was
    expected = [math.exp((x - max(logits)) / 3.0) for x in logits]
    assert probs == pytest.approx([e / sum(expected) for e in expected], abs=1e-6)
    assert soft.scores_batch([text])[0] == pytest.approx(probs, abs=1e-4)
    with pytest.raises(ValueError, match="temperature must be positive"):
        LabelScorer(scorer.model, scorer.tok, scorer.labels, scorer.system_prompt, temperature=0)
