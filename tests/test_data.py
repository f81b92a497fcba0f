"""Data builders on the real raw data: determinism, held-out splits, checkable answers."""

import hashlib
import json
import re

import pytest

from domaintune.cli import InputError
from domaintune.data.common import heldout
from domaintune.data.general import build_probes, read_alpaca
from domaintune.data.intents import SLOT, Templates, build_intents
from domaintune.data.mix import content_key, mix
from domaintune.data.tools import build_tools
from domaintune.data.travel import build_travel, money
from domaintune.params import load_params
from domaintune.records import validate_record


@pytest.fixture(scope="module")
def params(root):
    return load_params(root / "params.yaml")


@pytest.fixture(autouse=True)
def _at_root(root, monkeypatch):
    monkeypatch.chdir(root)


def digest(rows):
    return hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()


def test_builders_are_deterministic(params):
    for build, cfg in ((build_intents, params.data.intents), (build_travel, params.data.travel),
                       (build_tools, params.data.tools)):
        assert digest(build(cfg, params.seed)) == digest(build(cfg, params.seed))
    assert digest(build_intents(params.data.intents, 1)) != digest(build_intents(params.data.intents, 2))


def test_every_built_record_is_valid(params):
    for build, cfg in ((build_intents, params.data.intents), (build_travel, params.data.travel),
                       (build_tools, params.data.tools)):
        for row in build(cfg, params.seed)[0]:
            validate_record(row, row["id"])


def test_intent_test_split_uses_only_heldout_templates_and_values(params):
    cfg = params.data.intents
    records, stats = build_intents(cfg, params.seed)
    tpl = Templates(cfg.utterances)
    train = {r["messages"][1]["content"] for r in records if r["split"] == "train"}
    test = [r for r in records if r["split"] == "test"]
    assert test and not train & {r["messages"][1]["content"] for r in test}
    assert {r["meta"]["intent"] for r in test} == set(tpl.labels)
    assert len({r["lang"] for r in test}) == 6
    city_test = heldout(tpl.slots["city"], cfg.heldout_slot_share)
    city_train = set(tpl.slots["city"]) - city_test
    for r in test:
        assert not any(re.search(rf"\b{re.escape(c)}\b", r["messages"][1]["content"]) for c in city_train), r
    assert all(json.loads(r["messages"][2]["content"])["primary_intent"] == r["meta"]["intent"] for r in records)
    assert stats["heldout_templates"] > 0


def test_undefined_slot_is_reported_with_location(tmp_path):
    bad = tmp_path / "u.yaml"
    bad.write_text('slots: {city: ["Rome"]}\nintents:\n  weather:\n    en: ["Rain in {town}?"]\n')
    with pytest.raises(InputError, match=r"u.yaml: intents.weather.en: slot \{town\} is not defined"):
        Templates(bad)
    assert SLOT.findall("{a} and {b}") == ["a", "b"]


def test_travel_budgets_add_up_and_places_exist(params):
    records, _ = build_travel(params.data.travel, params.seed)
    for r in records:
        m, text = r["meta"], r["messages"][-1]["content"]
        assert m["total"] <= m["budget"]
        items = re.findall(r"^- (?:Stay|Food|Local transport|Activities and entry fees): (.+)$", text, re.M)
        assert len(items) == 4
        assert sum(int(re.sub(r"\D", "", x)) for x in items) == m["total"]
        assert all(p in text for p in m["places"])
    followups = sum(r["meta"]["followup"] for r in records) / len(records)
    assert abs(followups - params.data.travel.followup_share) < 0.1
    test_dests = {r["meta"]["destination"] for r in records if r["split"] == "test"}
    train_dests = {r["meta"]["destination"] for r in records if r["split"] == "train"}
    assert test_dests and not test_dests & train_dests


def test_indian_digit_grouping():
    assert money(200000, "INR") == "INR 2,00,000"
    assert money(12345678, "INR") == "INR 1,23,45,678"
    assert money(950, "INR") == "INR 950"
    assert money(2500, "USD") == "USD 2,500"


def test_tool_calls_resolve_relative_dates(params):
    records, _ = build_tools(params.data.tools, params.seed)
    calls = [r for r in records if r["meta"]["call"]]
    assert calls and len(calls) < len(records)
    for r in calls:
        today = re.search(r"Today is \w+, (\d{4}-\d\d-\d\d)", r["messages"][0]["content"]).group(1)
        asked = r["messages"][1]["content"]
        date = r["meta"]["call"]["arguments"]["date"]
        if "tomorrow" in asked and "after" not in asked:
            from datetime import date as d
            from datetime import timedelta
            assert date == (d.fromisoformat(today) + timedelta(days=1)).isoformat()
        assert date >= today


def test_probes_have_exact_answers_and_are_all_test(params):
    probes = build_probes(params.data.general.probes_file, 80, params.seed)
    assert len(probes) == 80 and all(p["split"] == "test" for p in probes)
    arith = [p for p in probes if p["meta"]["kind"] == "arithmetic"]
    for p in arith:
        q = p["messages"][0]["content"]
        a, op, b = re.match(r"What is (\d+) (\+|-|times) (\d+)\?", q).groups()
        expect = {"+": int(a) + int(b), "-": int(a) - int(b), "times": int(a) * int(b)}[op]
        assert p["meta"]["answers"] == [str(expect)]


def test_malformed_alpaca_row_names_the_row(tmp_path):
    f = tmp_path / "a.json"
    f.write_text('[{"instruction": "x", "output": "y"}, {"instruction": "x"}]')
    with pytest.raises(InputError, match=r"a.json: row 1: 'output' missing"):
        read_alpaca(f)


def test_mix_keeps_test_out_of_training_and_honours_shares(params):
    records = []
    for build, cfg in ((build_intents, params.data.intents), (build_travel, params.data.travel),
                       (build_tools, params.data.tools)):
        records += build(cfg, params.seed)[0]
    general = [{"id": f"g{i}", "task": "general", "lang": "en", "split": "train" if i % 10 else "test",
                "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
               for i in range(600)]
    splits, stats = mix(records + general, params.mix, params.seed)
    test_keys = {content_key(x) for x in splits["test"]}
    for name in ("instruct_train", "instruct_val", "specialist_train", "specialist_val"):
        assert not test_keys & {content_key(x) for x in splits[name]}, name
    assert not {x["id"] for x in splits["specialist_val"]} & {x["id"] for x in splits["specialist_train"]}
    spec = splits["specialist_train"]
    assert len(spec) == params.mix.specialist_examples
    share = sum(x["task"] == "general" for x in spec) / len(spec)
    assert abs(share - params.mix.general_share) < 0.01
    assert all(x["split"] == "test" for x in splits["test"])
    assert stats["domain_shortfall"] == 0
