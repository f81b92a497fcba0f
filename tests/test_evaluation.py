import json
import math

import numpy as np
import pytest

from domaintune.evaluation.calibration import expected_calibration_error, fit_temperature, nll, reliability
from domaintune.evaluation.intent import parse_intent, score_intents
from domaintune.evaluation.latency import percentile
from domaintune.evaluation.report import comparison_markdown
from domaintune.evaluation.retention import probe_correct, score_probes
from domaintune.evaluation.summary import summarize
from domaintune.evaluation.temperature import calibrate, load_temperature

LABELS = ["greeting", "weather", "restaurant"]


def test_parse_intent_accepts_schema_and_rejects_the_rest():
    ok = parse_intent('{"primary_intent": "weather", "confidence": 0.9, "all_intents": ["weather"]}', LABELS)
    assert ok["primary_intent"] == "weather"
    assert parse_intent('Sure! {"primary_intent": "weather", "confidence": 1, "all_intents": []} done', LABELS)
    assert parse_intent('{"primary_intent": "flights", "confidence": 0.9, "all_intents": []}', LABELS) is None
    assert parse_intent('{"primary_intent": "weather", "confidence": 1.5, "all_intents": []}', LABELS) is None
    assert parse_intent('{"primary_intent": "weather"}', LABELS) is None
    assert parse_intent("weather", LABELS) is None


def rec(intent, lang):
    return {"meta": {"intent": intent}, "lang": lang}


def test_score_intents_counts_invalid_answers_as_wrong():
    good = '{"primary_intent": "%s", "confidence": 0.9, "all_intents": ["%s"]}'
    outs = [good % ("weather", "weather"), good % ("greeting", "greeting"), "no idea", good % ("weather", "weather")]
    recs = [rec("weather", "en"), rec("greeting", "tr"), rec("restaurant", "en"), rec("restaurant", "tr")]
    m = score_intents(outs, recs, LABELS)
    assert m["accuracy"] == 0.5
    assert m["json_valid_rate"] == 0.75
    assert m["per_language"] == {"en": 0.5, "tr": 0.5}
    assert m["per_intent"]["restaurant"] == 0.0
    # F1: weather 2/3 (1 tp, 1 fp), greeting 1, restaurant 0
    assert math.isclose(m["macro_f1"], (2 / 3 + 1 + 0) / 3)


def test_probe_answers_match_whole_words_only():
    assert probe_correct("The capital is Lima.", ["Lima"])
    assert probe_correct("6 times 2 is 12.", ["12"])
    assert not probe_correct("It is 120.", ["12"])
    assert not probe_correct("1.12", ["12"])
    assert probe_correct("Seven days", ["7", "seven"])
    recs = [{"meta": {"answers": ["Lima"], "kind": "capital"}}, {"meta": {"answers": ["4"], "kind": "arithmetic"}}]
    assert score_probes(["Lima", "5"], recs)["score"] == 0.5


def ev(acc, probes, ppl=10.0, answer="An answer."):
    intent = {"accuracy": acc, "macro_f1": acc, "json_valid_rate": 1.0, "ece": 0.1, "per_language": {},
              "per_intent": {}, "reliability": []}
    tools = {k: acc for k in ("call_valid_rate", "name_accuracy", "args_accuracy", "no_call_accuracy",
                              "grounded_answer_rate")}
    seed = {"request": "Plan Japan | cheap", "answer": answer, "plan": True, "budget_consistent": acc > 0.5,
            "followup": True, "named_places": 3, "other_places": 0, "budget_stated": True, "total": 1.0}
    travel = {"budget_stated_rate": 1.0, "budget_consistent_rate": acc, "named_places_mean": 2.0,
              "other_places_mean": 0.0, "followup_rate": 0.5, "looping_rate": 0.0, "examples": 4, "seed": [seed]}
    return {"intent": intent, "intent_scored": {**intent, "accuracy": acc + 0.05},
            "probes": {"score": probes, "per_kind": {}, "examples": 10}, "latency": {"classify_p50_ms": 1.0},
            "choices": {"score": probes, "per_kind": {}, "examples": 10,
                        "correct": [1] * round(probes * 10) + [0] * (10 - round(probes * 10))},
            "predictions": [], "perplexity": {"perplexity": ppl, "tokens": 100, "examples": 5},
            "tools": {**tools, "examples": 6}, "travel": travel,
            "general_answers": [{"question": "What is 156 x 23?", "answer": answer}]}


def test_summary_retention_is_final_over_base_and_gated():
    s = summarize({"base": ev(0.1, 0.5), "instruct": ev(0.05, 0.5), "specialist": ev(0.9, 0.45)}, 0.95)
    assert math.isclose(s["retention"]["retention"], 0.9)
    assert s["retention"]["gate"] == {"min": 0.95, "passed": False}
    assert math.isclose(s["intent"]["accuracy_gain"], 0.8)
    assert s["intent"]["base"]["accuracy"] == 0.1 and s["intent"]["instruct"]["accuracy"] == 0.05
    assert math.isclose(s["intent"]["base"]["scored"]["accuracy"], 0.15)
    assert math.isclose(s["intent"]["scored_gain"], 0.8)
    assert math.isclose(s["intent"]["scored"]["accuracy"], 0.95) and "reliability" not in s["intent"]
    assert summarize({"base": ev(0.1, 0.5), "specialist": ev(0.9, 0.5)}, 0.95)["retention"]["gate"]["passed"]


def test_summary_writes_tools_travel_and_perplexity_per_model():
    s = summarize({"base": ev(0.1, 0.5, ppl=8.0), "instruct": ev(0.2, 0.5, ppl=8.5),
                   "specialist": ev(0.9, 0.5, ppl=10.0)}, 0.95)
    assert s["tools"]["name_accuracy"] == 0.9 and s["tools"]["base"]["name_accuracy"] == 0.1
    assert s["tools"]["instruct"]["args_accuracy"] == 0.2
    assert s["travel"]["budget_consistent_rate"] == 0.9 and s["travel"]["base"]["budget_consistent_rate"] == 0.1
    assert s["travel"]["seed"] == {"budget_consistent_rate": 1.0, "followup_rate": 1.0, "named_places_mean": 3.0,
                                   "looping_rate": 0.0, "requests": 1}
    ppl = s["retention"]["perplexity"]
    assert (ppl["base"], ppl["instruct"], ppl["final"]) == (8.0, 8.5, 10.0) and math.isclose(ppl["ratio"], 1.25)


def reference_only(e: dict) -> dict:
    """What base and stage 1 carry with the default eval.reference_tasks."""
    return {k: v for k, v in e.items() if k in ("intent_scored", "choices", "probes", "perplexity", "general_answers")}


def test_references_scored_on_fewer_tasks_are_left_out_where_they_did_not_run():
    evals = {"base": reference_only(ev(0.1, 0.5, answer="Base")), "instruct": reference_only(ev(0.2, 0.5)),
             "specialist": ev(0.9, 0.5, answer="Final")}
    s = summarize(evals, 0.95)
    assert "base" not in s["tools"] and "instruct" not in s["travel"] and s["tools"]["name_accuracy"] == 0.9
    assert "accuracy_gain" not in s["intent"] and math.isclose(s["intent"]["scored_gain"], 0.8)
    assert s["intent"]["base"].keys() == {"scored"}
    assert math.isclose(s["intent"]["instruct"]["scored"]["accuracy"], 0.25)
    md = comparison_markdown(evals, s)
    lines = md.splitlines()
    assert "| final |" in lines and "| base | stage 1 | final |" in lines  # travel: final only; general: all three
    assert "| intent accuracy (free generation) |  |  | 0.900 |" in lines
    assert "| intent accuracy (label scoring) | 0.150 | 0.250 | 0.950 |" in lines
    assert "| tool: right function |  |  | 0.900 |" in lines


def test_stage1_scored_on_intents_and_probes_only_leaves_its_retention_cells_empty():
    keep = ("intent_scored", "probes", "general_answers")
    evals = {"base": reference_only(ev(0.1, 0.5, ppl=8.0)),
             "instruct": {k: v for k, v in ev(0.2, 0.5).items() if k in keep},
             "specialist": ev(0.9, 0.55, ppl=7.0)}
    s = summarize(evals, 0.95)
    r = s["retention"]
    assert "instruct" not in r and "instruct" in r["probes"] and "instruct" not in r["perplexity"]
    assert r["per_kind"].keys() == {"base", "specialist"} and math.isclose(r["retention"], 1.1)
    assert math.isclose(s["intent"]["instruct"]["scored"]["accuracy"], 0.25)
    lines = comparison_markdown(evals, s).splitlines()
    assert "| general perplexity (lower is better) | 8.000 |  | 7.000 |" in lines


def test_reference_tasks_must_keep_what_the_summary_compares():
    from pydantic import ValidationError

    from domaintune.params import EvalParams

    base = {"intent_examples": 1, "probe_examples": 1, "batch_size": 1, "max_new_tokens": 1, "latency_queries": 1}
    assert EvalParams(**base).reference_tasks[0] == "intent_generate"  # default: everything
    with pytest.raises(ValidationError, match="must include choices"):
        EvalParams(**base, reference_tasks=["intent_scoring", "probes", "perplexity"])
    with pytest.raises(ValidationError):
        EvalParams(**base, reference_tasks=["intent_scoring", "choices", "probes", "perplexity", "vibes"])
    assert EvalParams(**base, instruct_tasks=["intent_scoring"]).instruct_tasks == ["intent_scoring"]
    with pytest.raises(ValidationError, match="must include intent_scoring"):
        EvalParams(**base, instruct_tasks=["probes"])


def test_report_puts_three_models_side_by_side():
    evals = {"base": ev(0.1, 0.5, answer="Base says\nhi"), "instruct": ev(0.2, 0.5, answer="Stage one"),
             "specialist": ev(0.9, 0.45, answer="Final | answer")}
    md = comparison_markdown(evals, summarize(evals, 0.95))
    lines = md.splitlines()
    assert lines.count("| base | stage 1 | final |") == 2  # one travel request, one general question
    assert "| Base says<br>hi | Stage one | Final \\| answer |" in lines  # one row, pipes escaped
    assert "| intent accuracy (free generation) | 0.100 | 0.200 | 0.900 |" in lines
    assert "| general perplexity (lower is better) | 10.000 | 10.000 | 10.000 |" in lines
    assert "*3 catalog places, budget does not add up, follow-up question*" in md  # base: acc 0.1
    assert "gate 0.95: FAILED" in md  # 0.45 / 0.5


def test_calibration_error_is_the_weighted_gap_per_bin():
    # bin 0.9: 4 answers at 0.95 confidence, 2 right -> gap 0.45; bin 0.5: 2 at 0.55, both right -> gap 0.45
    conf, correct = [0.95] * 4 + [0.55] * 2, [True, True, False, False, True, True]
    bins = reliability(conf, correct)
    assert [(b["bin"], b["count"]) for b in bins] == [(5, 2), (9, 4)]
    assert math.isclose(expected_calibration_error(conf, correct), 4 / 6 * 0.45 + 2 / 6 * 0.45)
    assert expected_calibration_error([0.8] * 5, [True] * 4 + [False]) < 1e-9  # 80% sure, 80% right
    assert expected_calibration_error([1.0], [True]) == 0.0  # confidence 1.0 falls in the top bin


def test_percentile():
    assert percentile([10.0, 20.0, 30.0, 40.0, 50.0], 50) == 30.0
    assert percentile([7.0], 95) == 7.0


def test_temperature_scaling_recovers_the_temperature_that_made_the_labels():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, size=(4000, 15))
    for true_t in (0.5, 2.5):  # labels drawn from softmax(logits / T): the fit finds T
        p = np.exp(logits / true_t - (logits / true_t).max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        targets = [int(rng.choice(15, p=row)) for row in p]
        t = fit_temperature(logits.tolist(), targets)
        assert t == pytest.approx(true_t, rel=0.1)
        assert nll(logits, np.asarray(targets), t) <= nll(logits, np.asarray(targets), 1.0)
    with pytest.raises(ValueError, match="at least one"):
        fit_temperature([], [])


def test_calibration_file_is_read_back_or_refused_by_name(tmp_path):
    assert load_temperature(None) == 1.0 and load_temperature(tmp_path / "missing.json") == 1.0
    good = tmp_path / "t.json"
    good.write_text(json.dumps({"temperature": 2.5, "rows": 120}))
    assert load_temperature(good) == 2.5
    for bad in ({"rows": 3}, {"temperature": "warm"}, {"temperature": -1}):
        good.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=str(good)):
            load_temperature(good)


def test_calibrate_fits_on_held_out_phrasings_and_says_when_it_did_not(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from domaintune.data.intents import SYSTEM_PROMPT, answer

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model)
    texts = [("hello there", "greeting"), ("book me a taxi to the airport", "airport_transport"),
             ("is it gonna rain tomorrow in Rome", "weather"), ("any good museums near me", "attraction")]
    rows = [{"id": f"c{i}", "task": "intent", "lang": "en", "split": "calibration", "meta": {"intent": label},
             "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text},
                          {"role": "assistant", "content": answer([label])}]} for i, (text, label) in enumerate(texts)]
    out = calibrate(model, tok, rows)
    assert out["fitted"] and out["rows"] == 4 and out["temperature"] > 0
    assert out["nll"]["after"] <= out["nll"]["before"] + 1e-9
    assert calibrate(model, tok, rows, enabled=False) == {**{k: out[k] for k in ("rows", "per_language")},
                                                          "temperature": 1.0, "fitted": False,
                                                          "why": "eval.calibrate is false"}
    assert calibrate(model, tok, [])["why"] == "no calibration rows"


def test_scoring_in_batches_gives_the_one_at_a_time_answers_without_latencies(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from domaintune.data.intents import SYSTEM_PROMPT, answer
    from domaintune.evaluation.run import classify_by_scoring
    from domaintune.records import INTENTS

    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model)
    texts = ["hi", "book me a taxi to the airport tomorrow at 6", "is it gonna rain tmrw in Rome",
             "wo ist das nächste Museum", "any good sushi near the station", "ok"]
    rows = [{"id": f"b{i}", "task": "intent", "lang": "en", "split": "test", "meta": {"intent": "greeting"},
             "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text},
                          {"role": "assistant", "content": answer(["greeting"])}]} for i, text in enumerate(texts)]
    one, ms, one_logits = classify_by_scoring(model, tok, rows, list(INTENTS), temperature=1.3)
    many, no_ms, many_logits = classify_by_scoring(model, tok, rows, list(INTENTS), temperature=1.3, batch_size=4)
    assert len(ms) == len(rows) and all(t > 0 for t in ms) and no_ms == []
    assert np.allclose(one_logits, many_logits, atol=1e-4)  # two batches, one of them padded
    assert [json.loads(a)["primary_intent"] for a in one] == [json.loads(a)["primary_intent"] for a in many]


def test_a_blended_head_is_reported_beside_the_head_alone_and_both_against_tfidf():
    final = ev(0.9, 0.5)
    final["intent_scored"].update({"head": True, "text_weight": 1.0})
    final["intent_scored_head"] = {"accuracy": 0.7, "macro_f1": 0.68, "per_language": {"en": 0.7}, "per_intent": {}}
    baselines = {name: {"accuracy": 0.6, "macro_f1": 0.6, "per_language": {}} for name in ("tfidf", "keywords")}
    s = summarize({"base": reference_only(ev(0.1, 0.5)), "specialist": final}, 0.95, baselines)
    intent = s["intent"]
    assert intent["scored"]["text_weight"] == 1.0 and intent["scored_head"]["accuracy"] == 0.7
    assert math.isclose(intent["scored_minus_tfidf"], 0.35) and math.isclose(intent["scored_head_minus_tfidf"], 0.1)
    assert "| intent accuracy (intent head alone, no TF-IDF) |  |  | 0.700 |" in comparison_markdown(
        {"base": reference_only(ev(0.1, 0.5)), "specialist": final}, s).splitlines()
    assert "scored_head" not in summarize({"base": ev(0.1, 0.5), "specialist": ev(0.9, 0.5)}, 0.95)["intent"]
