"""Tool-use, travel-answer, perplexity and report scoring, checked against the data builders' own
reference answers (which must score perfectly) and against broken answers (which must not)."""

import datetime as dt
import json
import math

import pytest

from domaintune.data.catalog import DestinationFile
from domaintune.data.common import load_checked
from domaintune.data.tools import build_tools
from domaintune.data.travel import build_travel
from domaintune.evaluation.questions import load_questions
from domaintune.evaluation.tools import (
    answer_turn,
    call_turn,
    grounded,
    parse_tool_calls,
    score_grounding,
    score_tool_calls,
)
from domaintune.evaluation.travel import amounts, budget_check, plan_request, score_answer, score_travel
from domaintune.modeling.chat_format import assistant_spans, prompt_text, tokenize_with_mask
from domaintune.params import load_params


@pytest.fixture(scope="module")
def params(root):
    return load_params(root / "params.yaml")


@pytest.fixture(scope="module")
def catalog(root, params):
    return {d.name: d for d in load_checked(root / params.eval.catalog, DestinationFile).destinations}


@pytest.fixture(scope="module")
def tool_rows(root, params, monkeypatch_module):
    monkeypatch_module.chdir(root)
    rows, _ = build_tools(params.data.tools, params.seed)
    return [r for r in rows if r["split"] == "test"]


@pytest.fixture(scope="module")
def travel_rows(root, params, monkeypatch_module):
    monkeypatch_module.chdir(root)
    rows, _ = build_travel(params.data.travel, params.seed)
    return [r for r in rows if r["split"] == "test" and r["meta"]["kind"] in ("plan", "clarify")]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def rendered_answer(tok, messages, tools):
    """The assistant turn as the chat template renders it: what a perfectly trained model prints."""
    text, spans = assistant_spans(tok, messages, tools)
    start, end = spans[-1]
    return text[start:end].replace("<|im_end|>", "").strip()


def test_reference_tool_calls_score_perfectly(tokenizer, tool_rows):
    outs = [rendered_answer(tokenizer, call_turn(r), r["tools"]) for r in tool_rows]
    m = score_tool_calls(outs, tool_rows)
    assert m["needs_call"] > 0 and m["needs_call"] < m["examples"]  # both kinds are held out
    assert (m["call_valid_rate"], m["name_accuracy"], m["args_accuracy"], m["no_call_accuracy"]) == (1, 1, 1, 1)
    with_result = [r for r in tool_rows if answer_turn(r)]
    assert score_grounding([r["messages"][answer_turn(r).__len__() - 1]["content"] for r in with_result],
                           with_result) == 1.0


def test_tool_call_errors_are_told_apart(tool_rows):
    need = next(r for r in tool_rows if r["meta"]["call"])
    args = need["meta"]["call"]["arguments"]
    wrong_date = {**args, "date": "1999-01-01"}
    def call(name, arguments):
        return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"

    outs = [call("get_weather", wrong_date), call("get_forecast", args),
            '<tool_call>\n{"name": "get_weather", "arguments": {"location": \n</tool_call>',
            "I cannot check the weather."]
    m = score_tool_calls(outs, [need] * 4)
    assert m["name_accuracy"] == 0.25  # only the first call both parses and names get_weather
    assert m["args_accuracy"] == 0.0
    assert m["call_valid_rate"] == 2 / 3  # three calls written, one unparseable
    assert parse_tool_calls("no call here") == []
    assert parse_tool_calls('<tool_call>{"name": "x", "arguments": {}}') == [{"name": "x", "arguments": {}}]
    assert parse_tool_calls('<tool_call>{"name": "x", "arguments": "a=1"}</tool_call>') == [None]
    no_need = next(r for r in tool_rows if not r["meta"]["call"])
    assert score_tool_calls(outs[:1], [no_need])["no_call_accuracy"] == 0.0


def test_a_call_is_right_when_its_day_means_the_expected_date(tool_rows):
    """The tool resolves relative days: the date itself, or any name for that day, is the same call;
    another day is not."""
    need = next(r for r in tool_rows if r["meta"]["call"])
    args, date = need["meta"]["call"]["arguments"], need["meta"]["date"]
    day_before = (dt.date.fromisoformat(date) - dt.timedelta(days=1)).isoformat()
    outs = [f'<tool_call>\n{json.dumps({"name": "get_weather", "arguments": {**args, "date": d}})}\n</tool_call>'
            for d in (date, args["date"].upper(), day_before, "soon")]
    oks = [score_tool_calls([o], [need])["args_accuracy"] for o in outs]
    assert oks == [1.0, 1.0, 0.0, 0.0]


def test_grounding_needs_the_condition_and_both_temperatures():
    result = json.dumps({"condition": "light rain", "temp_min_c": 7, "temp_max_c": 12})
    assert grounded("Tomorrow: light rain, 7 to 12 °C.", result)
    assert not grounded("Tomorrow: light rain, 7 to 13 °C.", result)
    assert not grounded("Tomorrow: sunny, 7 to 12 °C.", result)
    assert not grounded("Light rain, 17 to 112 °C.", result)


def test_reference_plans_score_perfectly(travel_rows, catalog):
    answers = [r["messages"][-1]["content"] for r in travel_rows]
    m = score_travel(answers, [plan_request(r) for r in travel_rows], catalog)
    assert m["budget_stated_rate"] == 1.0 and m["budget_consistent_rate"] == 1.0
    # generic names ("Old City") and notes ("a mini Eiffel Tower") match other destinations now and then
    assert m["other_places_mean"] < 0.5
    assert math.isclose(m["followup_rate"], sum(r["meta"]["followup"] for r in travel_rows) / len(travel_rows))
    for r, a in zip(travel_rows, answers, strict=True):
        s = score_answer(a, [r["meta"]["destination"]], catalog, r["meta"]["budget"], r["meta"]["currency"])
        assert s["named_places"] >= len(set(r["meta"]["places"]))  # notes may name one more (a town, a river)
        assert s["total"] == r["meta"]["total"]


def test_broken_budgets_are_caught():
    plan = "Budget breakdown:\n- Stay: INR 1,20,000\n- Food: INR 40,000\nTotal: INR 1,60,000, leaving INR 40,000."
    assert budget_check(plan, 200000, "INR") == {"stated": True, "consistent": True, "total": 160000}
    assert not budget_check(plan, 150000, "INR")["consistent"]  # total over the user's budget
    assert not budget_check(plan.replace("40,000\nTotal", "45,000\nTotal"), 200000, "INR")["consistent"]
    assert not budget_check(plan, 200000, "USD")["consistent"]  # wrong currency
    assert not budget_check("It costs about INR 1,60,000 in total.", 200000, "INR")["consistent"]  # no breakdown
    assert not budget_check("A lovely trip!", None, None)["stated"]
    assert amounts("₹50,000 or $600 or EUR 1,234.50") == [("INR", 50000.0), ("USD", 600.0), ("EUR", 1234.5)]


def test_places_of_other_destinations_are_counted_apart(catalog):
    japan, peru = catalog["Japan"], next(d for n, d in catalog.items() if n not in ("Japan",))
    text = f"Visit {japan.attractions[0].name}, then {peru.attractions[0].name}."
    s = score_answer(text, ["Japan"], catalog, None, None)
    assert s["named_places"] == 1 and s["other_places"] >= 1 and not s["followup"]


def test_questions_file_is_checked(root, params, catalog, tmp_path):
    q = load_questions(root / params.eval.questions, set(catalog))
    assert len(q.general) == 6 and any("Japan" in t.destinations for t in q.travel)
    bad = tmp_path / "q.yaml"
    bad.write_text("general: [Hi there]\ntravel:\n  - request: Plan Atlantis\n    destinations: [Atlantis]\n")
    with pytest.raises(ValueError, match=r"q.yaml:4: travel\[0\].destinations\[0\]: 'Atlantis' is not in the travel"):
        load_questions(bad, set(catalog))


def test_perplexity_counts_assistant_tokens_and_prefers_the_trained_text(tiny_model):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from domaintune.evaluation.perplexity import perplexity

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    recs = [{"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "hi " * n}]}
            for n in (3, 9)]
    m = perplexity(model, tok, recs, batch_size=2)
    masked = sum(sum(tokenize_with_mask(tok, r["messages"])["assistant_masks"]) for r in recs)
    assert m["examples"] == 2 and m["tokens"] == masked and masked >= 3 + 9 + 2  # the "hi"s, each <|im_end|>
    assert m["perplexity"] > 1
    # batching and padding do not change the number
    assert math.isclose(m["perplexity"], perplexity(model, tok, recs, batch_size=1)["perplexity"], rel_tol=1e-4)
    # a few steps on the answer lower its perplexity: the number moves with what the model knows
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = tok(prompt_text(tok, recs[1]["messages"]) + "hi " * 9, return_tensors="pt")["input_ids"]
    for _ in range(5):
        opt.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        opt.step()
    assert perplexity(model.eval(), tok, recs, batch_size=2)["perplexity"] < m["perplexity"]


def test_an_answer_that_repeats_a_six_word_run_three_times_loops():
    from domaintune.evaluation.travel import loops

    assert loops("Bali is a paradise for families. " * 3)
    assert not loops("Bali is a paradise for families. " * 2 + "Day 1: Ubud. Day 2: Uluwatu.")
    assert not loops("short answer")


def test_choice_items_are_deterministic_and_hold_the_answer_once(root):
    from domaintune.evaluation.choices import build_items

    items = build_items(root / "data/raw/general/choices.yaml", 30, seed=1)
    assert len(items) >= 1000  # the retention check's size
    assert items == build_items(root / "data/raw/general/choices.yaml", 30, seed=1)
    for it in items:
        assert len(set(it["options"])) == 4 and it["options"].count(it["answer"]) == 1


def test_choice_scoring_knows_capitals_and_ignores_the_batch_size(root, real_model):
    """The real SmolLM2: far above the 1-in-4 chance on capitals, and padding changes no pick."""
    from domaintune.evaluation.choices import build_items, choose, score_choices
    from domaintune.evaluation.generate import load_model

    model, tok = load_model(real_model)
    items = [it for it in build_items(root / "data/raw/general/choices.yaml", 0, seed=0)
             if it["kind"] == "capitals"][:24]
    assert choose(model, tok, items, 1) == choose(model, tok, items, 8)
    out = score_choices(model, tok, items, 8)
    assert out["score"] >= 0.5 and out["examples"] == 24 and len(out["correct"]) == 24
    assert out["ci95"][0] < out["score"] < out["ci95"][1]


def test_retention_interval_is_paired_and_brackets_the_ratio():
    from domaintune.evaluation.summary import ratio_interval

    base = [1, 0, 1, 1, 0, 1, 1, 1, 0, 1] * 20
    lo, hi = ratio_interval(base, base)
    assert lo == hi == 1.0  # the same answers: no uncertainty in the ratio
    worse = [b if i % 10 else 0 for i, b in enumerate(base)]
    lo, hi = ratio_interval(base, worse)
    assert lo < sum(worse) / sum(base) < hi < 1.0
