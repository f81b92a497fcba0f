"""Data builders on the real raw data: determinism, held-out splits, checkable answers."""

import datetime as dt
import hashlib
import json
import random
import re
from collections import Counter

import pytest

from domaintune.cli import InputError
from domaintune.data.catalog import load_catalog
from domaintune.data.common import heldout
from domaintune.data.dedup import near_duplicates
from domaintune.data.general import build_probes, read_alpaca
from domaintune.data.intents import SLOT, Templates, build_intents
from domaintune.data.mix import content_key, data_metrics, mix
from domaintune.data.tools import build_tools, resolve, resolve_day
from domaintune.data.travel import build_travel, money
from domaintune.params import load_params
from domaintune.records import INTENTS, RecordError, validate_record


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


def test_calibration_split_has_templates_of_its_own_and_test_rows_ignore_training_knobs(params):
    cfg = params.data.intents
    records, stats = build_intents(cfg, params.seed)
    templates = {s: {r["meta"]["template"] for r in records if r["split"] == s}
                 for s in ("train", "test", "calibration")}
    assert templates["calibration"] and not templates["calibration"] & (templates["train"] | templates["test"])
    assert not templates["train"] & templates["test"]
    calib = [r for r in records if r["split"] == "calibration"]
    assert len(calib) >= 15 * cfg.calibration_examples_per_intent - 3 and stats["by_split"]["calibration"] == len(calib)
    assert {r["meta"]["intent"] for r in calib} == set(INTENTS) and len({r["lang"] for r in calib}) == 6
    # the test rows come from a generator of their own, drawn first: more training rows move none of them
    more, _ = build_intents(cfg.model_copy(update={"examples_per_intent": cfg.examples_per_intent + 20}), params.seed)
    assert digest([r for r in more if r["split"] == "test"]) == digest([r for r in records if r["split"] == "test"])
    assert sum(r["split"] == "train" for r in more) > sum(r["split"] == "train" for r in records)
    # no calibration split: its templates go back to training, the test split stays
    none, _ = build_intents(cfg.model_copy(update={"calibration_template_share": 0.0}), params.seed)
    assert not any(r["split"] == "calibration" for r in none)
    assert digest([r for r in none if r["split"] == "test"]) == digest([r for r in records if r["split"] == "test"])


def test_intent_test_split_is_stratified_by_intent_and_language(params):
    cfg = params.data.intents
    records, _ = build_intents(cfg, params.seed)
    test = [r for r in records if r["split"] == "test"]
    per_intent = Counter(r["meta"]["intent"] for r in test)
    assert min(per_intent.values()) >= cfg.test_examples_per_intent - 1  # repeats are redrawn, not dropped
    single = Counter((r["meta"]["intent"], r["lang"]) for r in test if len(r["meta"]["all_intents"]) == 1)
    assert len(single) == 15 * 6  # every intent in every language
    by_lang = Counter(r["lang"] for r in test)
    assert max(by_lang.values()) <= 1.35 * min(by_lang.values()), by_lang  # was 39 en against 18 ar
    assert len({r["lang"] for r in test if len(r["meta"]["all_intents"]) > 1}) >= 4  # multi-intent too


def test_undefined_slot_is_reported_with_location(tmp_path):
    bad = tmp_path / "u.yaml"
    bad.write_text('slots: {city: ["Rome", "Oslo"]}\nintents:\n  weather:\n    en: ["Rain in {town}?"]\n')
    with pytest.raises(InputError, match=r"u.yaml:4: intents.weather.en\[0\]: slot \{town\} is not defined"):
        Templates(bad)
    assert SLOT.findall("{a} and {b}") == ["a", "b"]


def plan_items(text):
    return re.findall(r"^- (?:Stay|Food|Local transport|Activities and entry fees): (.+)$", text, re.M)


def test_travel_budgets_add_up_and_places_exist(params, root):
    cfg = params.data.travel
    records, stats = build_travel(cfg, params.seed)
    dests, _ = load_catalog(cfg.catalog, cfg.travelers)
    catalog_places = {p.name for d in dests for p in d.attractions} | {a.name for d in dests for a in d.stay_areas}
    plans = [r for r in records if r["meta"]["kind"] != "compare"]
    for r in plans:
        m, text = r["meta"], r["messages"][-1]["content"]
        assert m["total"] <= m["budget"]
        items = plan_items(text)
        assert len(items) == 4
        assert sum(int(re.sub(r"\D", "", x)) for x in items) == m["total"]
        assert all(p in text and p in catalog_places for p in m["places"])
        assert len(re.findall(r"^Day \d+:", text, re.M)) == m["plan_days"]
        if m["tier"] is None:  # budget too small: said so, and a shorter plan that fits
            assert m["plan_days"] < m["days"] and text.startswith("Honest answer")
    assert {r["meta"]["tier"] is None for r in plans} == {True, False}
    followups = sum(r["meta"]["followup"] for r in plans) / len(plans)
    assert abs(followups - cfg.followup_share) < 0.1
    visited = {split: {p for r in plans if r["split"] == split for p in r["meta"]["places"]}
               for split in ("train", "test")}
    assert visited["test"] and not visited["train"] & visited["test"]
    country = {d.name: d.country for d in dests}
    train_countries = {country[n] for r in records if r["split"] == "train"
                       for n in r["meta"].get("destinations", [r["meta"].get("destination")])}
    assert set(stats["heldout"]["countries"]) and not train_countries & set(stats["heldout"]["countries"])
    assert set(stats["by_kind"]) == {"plan", "clarify", "compare"} and min(stats["by_kind"].values()) > 0


def test_clarifying_dialogues_ask_only_for_what_is_missing(params):
    records, _ = build_travel(params.data.travel, params.seed)
    dialogues = [r for r in records if r["meta"]["kind"] == "clarify"]
    assert dialogues
    for r in dialogues:
        roles = [m["role"] for m in r["messages"]]
        assert roles == ["system", "user", "assistant", "user", "assistant"]
        opener, question, reply = (r["messages"][i]["content"] for i in (1, 2, 3))
        assert question.endswith("?") and "budget" in question and "Day 1" not in question
        assert ("how many days" in question) == (str(r["meta"]["days"]) + "-day" not in opener
                                                  and f"for {r['meta']['days']} days" not in opener)
        assert str(r["meta"]["budget"])[:1] in reply and r["meta"]["currency"] in reply


def test_comparisons_pick_the_better_match(params):
    cfg = params.data.travel
    records, _ = build_travel(cfg, params.seed)
    dests, types = load_catalog(cfg.catalog, cfg.travelers)
    by_name, by_id = {d.name: d for d in dests}, {t.id: t for t in types}
    compares = [r for r in records if r["meta"]["kind"] == "compare"]
    assert compares
    for r in compares:
        m = r["meta"]
        who = by_id[m["traveler"]]
        score = {n: len(set(who.preferred_tags) & set(by_name[n].tags)) for n in m["destinations"]}
        a, b = m["destinations"]
        assert a != b and f"My pick: {m['winner']}" in r["messages"][-1]["content"]
        assert score[m["winner"]] == max(score.values())


def test_travel_catalog_errors_name_file_and_line(tmp_path, root):
    text = (root / "data/raw/travel/destinations.yaml").read_text()
    bad = tmp_path / "d.yaml"
    bad.write_text(text.replace("best_months: [3, 4, 10, 11]", "best_months: [3, 4, 13, 11]", 1))
    line = next(i for i, x in enumerate(bad.read_text().splitlines(), 1) if "[3, 4, 13, 11]" in x)
    where = rf"d.yaml:{line}: destinations\[0\].best_months\[2\]"
    with pytest.raises(InputError, match=where + ": .*less than or equal to 12"):
        load_catalog(bad, root / "data/raw/travel/travelers.yaml")


def test_indian_digit_grouping():
    assert money(200000, "INR") == "INR 2,00,000"
    assert money(12345678, "INR") == "INR 1,23,45,678"
    assert money(950, "INR") == "INR 950"
    assert money(2500, "USD") == "USD 2,500"
    assert money(1234.4, "EUR") == "EUR 1,234"


def test_tool_calls_resolve_relative_dates(params):
    records, stats = build_tools(params.data.tools, params.seed)
    calls = [r for r in records if r["meta"]["call"]]
    assert calls and len(calls) < len(records)
    for r in calls:
        system = r["messages"][0]["content"]
        today = dt.date.fromisoformat(re.search(r"Today is \w+, (\d{4}-\d\d-\d\d)", system).group(1))
        assert r["meta"]["today"] == today.isoformat()
        asked = r["messages"][1]["content"]
        day = r["meta"]["call"]["arguments"]["date"]
        # The call names the day as the user did; the tool's result and the answer carry its date.
        assert day.lower() in asked.lower().replace("tonight", "today")
        date = resolve_day(day, today)
        assert date.isoformat() == r["meta"]["date"] == json.loads(r["messages"][3]["content"])["date"]
        assert r["messages"][2]["tool_calls"][0]["function"]["arguments"] == r["meta"]["call"]["arguments"]
        assert r["messages"][3]["role"] == "tool" and str(date) in r["messages"][-1]["content"]
        if "tomorrow" in asked and "after" not in asked:
            assert date == today + dt.timedelta(days=1)
        assert 0 <= (date - today).days <= 7
    for r in records:
        if not r["meta"]["call"]:  # no tool needed, none called
            assert [m["role"] for m in r["messages"]] == ["system", "user", "assistant"]
    assert stats["by_kind"]["climate"] > 0 and stats["by_kind"]["convert"] > 0


@pytest.mark.parametrize("today,when,expected", [
    ("2026-11-20", "this weekend", "2026-11-21"),  # Friday -> Saturday
    ("2026-11-22", "this weekend", "2026-11-22"),  # Sunday -> today
    ("2026-11-22", "on Sunday", "2026-11-29"),     # a weekday named on that day means next week
    ("2026-11-22", "tonight", "2026-11-22"),
    ("2026-12-31", "the day after tomorrow", "2027-01-02"),
])
def test_relative_dates(today, when, expected):
    assert resolve(when, dt.date.fromisoformat(today)).isoformat() == expected


@pytest.mark.parametrize("value,expected", [
    ("Saturday", "2026-11-21"), ("on saturday", "2026-11-21"), ("Friday", "2026-11-27"),  # today is a Friday
    ("TOMORROW", "2026-11-21"), ("the day after tomorrow", "2026-11-22"), ("weekend", "2026-11-21"),
    ("2026-12-01", "2026-12-01"), ("next month", None), ("2026-13-01", None),
])
def test_the_tool_resolves_the_day_the_user_said(value, expected):
    day = resolve_day(value, dt.date(2026, 11, 20))
    assert (day.isoformat() if day else None) == expected


def test_probes_have_exact_answers_and_are_all_test(params):
    probes = build_probes(params.data.general.probes_file, 80, params.seed)
    assert len(probes) == 80 and all(p["split"] == "test" for p in probes)
    arith = [p for p in probes if p["meta"]["kind"] == "arithmetic"]
    for p in arith:
        q = p["messages"][0]["content"]
        a, op, b = re.match(r"What is (\d+) (\+|-|times) (\d+)\?", q).groups()
        expect = {"+": int(a) + int(b), "-": int(a) - int(b), "times": int(a) * int(b)}[op]
        assert p["meta"]["answers"] == [str(expect)]


def test_malformed_alpaca_row_names_file_line_and_row(tmp_path):
    f = tmp_path / "a.json"
    f.write_text('[\n  {"instruction": "x", "output": "y"},\n  {"instruction": "x",\n   "input": ""}\n]')
    with pytest.raises(InputError, match=r"a.json:3: row 1: 'output' missing"):
        read_alpaca(f)


def chat(i, q, split="train", task="general"):
    return {"id": f"g{i}", "task": task, "lang": "en", "split": split,
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": f"a{i}"}]}


def test_mix_keeps_test_out_of_training_and_honours_shares(params):
    records = []
    for build, cfg in ((build_intents, params.data.intents), (build_travel, params.data.travel),
                       (build_tools, params.data.tools)):
        records += build(cfg, params.seed)[0]
    general = [chat(i, f"Write a short poem about the number {i * 7919}.", "train" if i % 10 else "test")
               for i in range(600)]
    records += general
    lengths = {x["id"]: 100 for x in records}
    max_length = {"instruct": 256, "specialist": 1024}
    splits, stats = mix(records, lengths, max_length, params.mix, params.seed)
    test_keys = {content_key(x) for x in splits["test"]}
    for name in ("instruct_train", "instruct_val", "specialist_train", "specialist_val"):
        assert not test_keys & {content_key(x) for x in splits[name]}, name
    assert not {x["id"] for x in splits["specialist_val"]} & {x["id"] for x in splits["specialist_train"]}
    spec = splits["specialist_train"]
    assert len(spec) == params.mix.specialist_examples
    share = sum(x["task"] == "general" for x in spec) / len(spec)
    assert abs(share - params.mix.general_share) < 0.01
    # mix.task_passes: each intent row twice, every other row once, the same distinct rows
    twice, _ = mix(records, lengths, max_length, params.mix.model_copy(update={"task_passes": {"intent": 2}}),
                   params.seed)
    passes = Counter(x["id"] for x in twice["specialist_train"])
    task = {x["id"]: x["task"] for x in twice["specialist_train"]}
    assert set(passes) == {x["id"] for x in spec}
    assert all(n == (2 if task[i] == "intent" else 1) for i, n in passes.items())
    assert sum(passes.values()) == len(spec) + sum(x["task"] == "intent" for x in spec)
    assert all(x["split"] == "test" for x in splits["test"])
    calib_keys = {content_key(x) for x in splits["calibration"]}
    assert splits["calibration"] and all(x["split"] == "calibration" for x in splits["calibration"])
    for name in ("instruct_train", "instruct_val", "specialist_train", "specialist_val", "test"):
        assert not calib_keys & {content_key(x) for x in splits[name]}, name
    assert stats["domain_shortfall"] == 0 and stats["too_long_removed"] == {"instruct": 0, "specialist": 0}
    again, _ = mix(records, lengths, max_length, params.mix, params.seed)
    assert digest(again) == digest(splits)


def test_mix_removes_duplicates_and_overlong_rows_and_counts_them(params):
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november".split()
    r = random.Random(0)
    rows = [chat(i, "Write a short story for children about " + " ".join(r.sample(words, 8))) for i in range(200)]
    seventh = rows[7]["messages"][0]["content"]
    sky = "Explain why the sky is blue to a ten year old, in simple words and with one everyday example."
    moon = "Explain why the moon changes its shape during the month, for a curious eight year old child."
    rows += [chat(900, sky, "test"),
             chat(904, moon, "calibration"),
             chat(905, moon + " Thanks"),                           # near copy of a calibration row
             chat(901, sky + " Thanks"),                            # near copy of a test row
             chat(902, seventh.upper() + "!"),                      # exact copy once normalized
             chat(903, seventh + " ok")]                            # near duplicate
    lengths = {x["id"]: 100 for x in rows}
    lengths["g5"] = lengths["g6"] = 300     # too long for stage 1 only
    lengths["g8"] = 5000                    # too long for both
    splits, stats = mix(rows, lengths, {"instruct": 256, "specialist": 1024}, params.mix, params.seed)
    trained = {x["id"] for name in ("instruct_train", "instruct_val", "specialist_train", "specialist_val")
               for x in splits[name]}
    assert not trained & {"g901", "g902", "g903", "g905", "g8"}
    assert stats["duplicates_removed"] == {"exact": 1, "near": 3, "train_matching_test": 1,
                                           "train_matching_calibration": 1}
    assert [x["id"] for x in splits["calibration"]] == ["g904"]
    assert stats["too_long_removed"] == {"instruct": 3, "specialist": 1}
    assert not {"g5", "g6"} & {x["id"] for x in splits["instruct_train"] + splits["instruct_val"]}
    assert [x["id"] for x in splits["test"]] == ["g900"]
    metrics = data_metrics(splits, lengths, {"general": {"duplicates_removed": 4}}, stats)
    assert metrics["duplicates_removed"] == 4 + 1 + 3
    assert metrics["removed"]["too_long_specialist"] == 1
    assert metrics["tokens"]["max"] == 300  # g5, g6 reach stage 2; g8 (5000) never reaches a split


def test_near_duplicates_keep_meaningful_differences():
    texts = ["what is 12 + 5", "what is 12 - 5", "find a restaurant in paris", "find a restaurant in rome",
             "hello there", "hello there"]
    assert near_duplicates(texts, 0.9) == [None, None, None, None, None, 4]


def test_intent_answers_must_use_known_labels():
    row = {"id": "x", "task": "intent", "lang": "en", "split": "train",
           "messages": [{"role": "user", "content": "hi"},
                        {"role": "assistant", "content": json.dumps(
                            {"primary_intent": "greetings", "confidence": 0.9, "all_intents": ["greetings"]})}]}
    with pytest.raises(RecordError, match="unknown intent labels"):
        validate_record(row, "x")
    row["messages"][1]["content"] = json.dumps({"primary_intent": "greeting", "confidence": 0.9,
                                                "all_intents": ["greeting"]})
    validate_record(row, "x")


def test_unknown_intent_in_utterances_file_is_reported(tmp_path):
    bad = tmp_path / "u.yaml"
    bad.write_text('intents:\n  greeting:\n    en: ["hi"]\n  greetingz:\n    en: ["hello"]\n')
    with pytest.raises(InputError, match=r"u.yaml:4: intents.greetingz: unknown intent 'greetingz'"):
        Templates(bad)


@pytest.mark.parametrize("text, error", [
    # a slot given as one string would fill templates with single letters
    ('slots:\n  city: Rome\nintents:\n  weather:\n    en: ["Rain in {city}?"]\n',
     r"u.yaml:2: slots.city: Input should be a valid list"),
    # one value cannot be split into training and held-out values
    ('slots:\n  city: ["Rome"]\nintents:\n  weather:\n    en: ["Rain in {city}?"]\n',
     r"u.yaml:2: slots.city: List should have at least 2"),
    ('intents:\n  weather: ["Rain?"]\n', r"u.yaml:2: intents.weather: Input should be a valid dictionary"),
    ('intents:\n  weather:\n    english: ["Rain?"]\n', r"u.yaml:3: intents.weather.english"),
    ('intents:\n  weather:\n    en: ["Rain?"]\nmulti_intent:\n  en:\n    - {intents: [weather], text: "Rain?"}\n',
     r"u.yaml:6: multi_intent.en\[0\].intents: List should have at least 2"),
    ('intents:\n  weather:\n    en: ["Rain?"]\nmulti_intent:\n  en:\n    - {intents: [weather, food], text: "x"}\n',
     r"u.yaml:6: multi_intent.en\[0\].intents: unknown intents \['food'\]"),
])
def test_malformed_utterances_file_names_file_line_and_key(tmp_path, text, error):
    bad = tmp_path / "u.yaml"
    bad.write_text(text)
    with pytest.raises(InputError, match=error):
        Templates(bad)


def test_domain_shares_split_into_counts_that_add_up():
    from domaintune.data.mix import split_by_shares

    assert split_by_shares(1310, {"intent": 0.86, "tool": 0.125, "travel": 0.015}) == {
        "intent": 1126, "tool": 164, "travel": 20}  # rounding each alone gives 1311
    assert sum(split_by_shares(7, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}).values()) == 7
