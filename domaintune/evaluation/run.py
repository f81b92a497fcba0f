"""Evaluate one model on the held-out test set, the same way for every model."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from domaintune.data.catalog import DestinationFile
from domaintune.data.common import load_checked
from domaintune.evaluation.calibration import expected_calibration_error, reliability
from domaintune.evaluation.choices import build_items, score_choices
from domaintune.evaluation.generate import generate, load_model, prompts_for
from domaintune.evaluation.intent import parse_intent, score_intents
from domaintune.evaluation.label_scoring import LabelScorer, softmax
from domaintune.evaluation.latency import measure_latency, percentile
from domaintune.evaluation.perplexity import perplexity
from domaintune.evaluation.questions import Questions, load_questions
from domaintune.evaluation.retention import score_probes
from domaintune.evaluation.sampling import intent_rows
from domaintune.evaluation.sampling import sample as _sample
from domaintune.evaluation.temperature import system_prompt
from domaintune.evaluation.timing import StepTimer
from domaintune.evaluation.tools import answer_turn, call_turn, score_grounding, score_tool_calls
from domaintune.evaluation.travel import plan_request, score_answer, score_travel
from domaintune.io import read_jsonl
from domaintune.modeling.chat_format import prompt_text
from domaintune.modeling.intent_head import IntentHead
from domaintune.params import EVAL_TASKS, Params
from domaintune.records import INTENTS

log = logging.getLogger(__name__)


def _samples(records: list[dict], outputs: list[str], n: int = 5) -> list[dict]:
    """A few raw answers kept next to the numbers, so a reader can see what was scored."""
    return [{"input": r["messages"][-2]["content"], "output": o} for r, o in zip(records[:n], outputs[:n], strict=True)]


def _calibration(outputs: list[str], records: list[dict], labels: list[str]) -> tuple[float, list[dict]]:
    """ECE and reliability bins of the confidence each answer states (an invalid answer: 0, wrong)."""
    conf, correct = [], []
    for out, r in zip(outputs, records, strict=True):
        parsed = parse_intent(out, labels)
        conf.append(float(parsed["confidence"]) if parsed else 0.0)
        correct.append(bool(parsed) and parsed["primary_intent"] == r["meta"]["intent"])
    return expected_calibration_error(conf, correct), reliability(conf, correct)


def _untempered_answers(rows: list[list[float]], labels: list[str]) -> list[str]:
    """The JSON answer of each row of label log-likelihoods at temperature 1."""
    return [json.dumps({"primary_intent": (best := labels[max(range(len(labels)), key=row.__getitem__)]),
                        "confidence": max(softmax(row)), "all_intents": [best]}) for row in rows]


def classify_by_scoring(model, tok, records: list[dict], labels: list[str], temperature: float = 1.0,
                        head: IntentHead | None = None,
                        batch_size: int = 1) -> tuple[list[str], list[float], list[list[float]]]:
    """The fast path's JSON answers (confidences at ``temperature``), each query's latency in ms,
    and each query's label log-likelihoods (to compare with the uncalibrated confidences); with an
    intent ``head``, its log-probabilities stand in for the LM head's.

    ``batch_size`` 1 scores one query at a time, as a user's request is served, so the latencies
    mean something; above 1 the queries run in batches (the same scores to float precision, a
    test checks it) and no latency is returned: for the models whose latency nobody reads."""
    scorer = LabelScorer(model, tok, labels, system_prompt(records), temperature=temperature, head=head)
    texts = [r["messages"][-2]["content"] for r in records]
    outs, times, logits = [], [], []
    if batch_size > 1:
        for start in range(0, len(texts), batch_size):
            logits += scorer.batch_label_logits(texts[start:start + batch_size])
    else:
        scorer.classify(texts[0])  # warm-up
        for text in texts:
            t = time.perf_counter()
            logits.append(scorer.label_logits(text))
            times.append((time.perf_counter() - t) * 1000)
    outs = [json.dumps(scorer.answer(softmax(row, temperature))) for row in logits]
    return outs, times, logits


def score_tools(model, tok, test: list[dict], p: Params) -> dict:
    """Held-out tool conversations: the first assistant turn (call or not), then the answer from the result."""
    e = p.eval
    rows = _sample([r for r in test if r["task"] == "tool"], e.tool_examples, p.seed, "eval-tool")
    calls = generate(model, tok, [prompt_text(tok, call_turn(r), r.get("tools")) for r in rows],
                     e.tool_max_new_tokens, e.batch_size)
    with_result = [r for r in rows if answer_turn(r)]
    answers = generate(model, tok, [prompt_text(tok, answer_turn(r), r.get("tools")) for r in with_result],
                       e.tool_max_new_tokens, e.batch_size)
    return {**score_tool_calls(calls, rows), "grounded_answer_rate": score_grounding(answers, with_result),
            "samples": _samples([{"messages": call_turn(r)} for r in rows], calls)}


def travel_inputs(p: Params) -> tuple[dict, Questions]:
    """The catalog (which named places exist, per destination) and the fixed questions (eval.*)."""
    catalog = {d.name: d for d in load_checked(p.eval.catalog, DestinationFile).destinations}
    return catalog, load_questions(p.eval.questions, set(catalog))


def travel_conversations(test: list[dict], p: Params, questions) -> tuple[list[dict], list[list[dict]]]:
    """Held-out plan requests (destinations no training plan visits), then the fixed seed requests:
    (the plan records, every conversation to answer, plans first)."""
    plans = [r for r in test if r["task"] == "travel" and r["meta"].get("kind") in ("plan", "clarify")]
    plans = _sample(plans, p.eval.travel_examples, p.seed, "eval-travel")
    system = plans[0]["messages"][0] if plans and plans[0]["messages"][0]["role"] == "system" else None
    seed_msgs = [[*([system] if system else []), {"role": "user", "content": q.request},
                  {"role": "assistant", "content": "-"}] for q in questions.travel]
    return plans, [r["messages"] for r in plans] + seed_msgs


def score_travel_answers(model, tok, test: list[dict], p: Params, questions, catalog: dict,
                         ground: Callable[[list[list[dict]]], tuple[list[list[dict]], list]] | None = None) -> dict:
    """The travel checks on held-out plans and seed requests. ``ground`` (the ``ground`` stage) rewrites
    the conversations first and says what it added, per conversation (kept under ``grounding``)."""
    e = p.eval
    plans, conversations = travel_conversations(test, p, questions)
    added = None
    if ground is not None:
        conversations, added = ground(conversations)
    outs = generate(model, tok, [prompt_text(tok, c) for c in conversations], e.travel_max_new_tokens, e.batch_size)
    plan_out, seed_out = outs[: len(plans)], outs[len(plans):]
    seeds = [{"request": q.request, "answer": o,
              **score_answer(o, q.destinations, catalog, q.budget, q.currency), "plan": q.plan}
             for q, o in zip(questions.travel, seed_out, strict=True)]
    out = {**score_travel(plan_out, [plan_request(r) for r in plans], catalog), "seed": seeds,
           "samples": _samples(plans, plan_out, n=2)}
    if added is not None:
        out["grounding"] = added
    return out


def _general_answers(model, tok, questions, p: Params) -> list[dict]:
    """The fixed general questions, asked with no system prompt, as a user of the base model would."""
    msgs = [[{"role": "user", "content": q}, {"role": "assistant", "content": "-"}] for q in questions.general]
    outs = generate(model, tok, [prompt_text(tok, m) for m in msgs], p.eval.report_max_new_tokens, p.eval.batch_size)
    return [{"question": q, "answer": o} for q, o in zip(questions.general, outs, strict=True)]


def evaluate_model(model_dir: str | Path, test_path: str | Path, p: Params,
                   tasks: Iterable[str] = EVAL_TASKS, temperature: float = 1.0,
                   head: IntentHead | None = None) -> dict:
    """Score one model on ``tasks`` (default: all of them); the result has a key per task run.
    ``temperature`` (the ``calibrate`` stage's) scales label scoring's probabilities; with an intent
    ``head`` (stage ``intent_head``) label scoring reads it, and ``intent_scored_lm`` keeps what the
    LM head alone scores.
    Base and stage 1 run ``eval.reference_tasks`` only: their numbers change only with the base
    model, and a 135M base writes no intent JSON and calls no tool, so generating them costs
    minutes of every fresh `dvc repro` to print zeros."""
    tasks = set(tasks)
    unknown = tasks - set(EVAL_TASKS)
    if unknown:
        raise ValueError(f"unknown evaluation tasks {sorted(unknown)}; known: {', '.join(EVAL_TASKS)}")
    test = read_jsonl(test_path)
    e = p.eval
    catalog, questions = travel_inputs(p)
    timed = StepTimer(str(model_dir))  # where evaluation time goes, per task (evals/<model>.json)
    seconds = timed.seconds
    model, tok = timed("load", load_model, model_dir)
    labels = list(INTENTS)
    out: dict = {"tasks": sorted(tasks)}
    samples: dict[str, list[dict]] = {}

    intents = intent_rows(test, e.intent_examples, p.seed)
    intent_prompts = prompts_for(tok, intents)
    outputs: dict[str, list[str]] = {}
    if "intent_generate" in tasks:
        outputs["intent"] = timed("intent_generate", generate, model, tok, intent_prompts, e.max_new_tokens,
                                  e.batch_size)
    if "intent_scoring" in tasks:
        # One query at a time only where the latency task reads the per-query times.
        outputs["intent_scored"], scored_ms, scored_logits = timed(
            "intent_scoring", classify_by_scoring, model, tok, intents, labels, temperature, head,
            1 if "latency" in tasks else e.batch_size)
    for key, outs in outputs.items():
        ece, bins = _calibration(outs, intents, labels)
        out[key] = {**score_intents(outs, intents, labels), "ece": ece, "reliability": bins}
        samples[key] = _samples(intents, outs)
    if "intent_scoring" in tasks:
        raw = _untempered_answers(scored_logits, labels)
        out["intent_scored"].update({"temperature": temperature, "head": head is not None,
                                     "ece_uncalibrated": _calibration(raw, intents, labels)[0]})
        if head is not None and head.blended:  # the head alone, recovered exactly from the blend's scores
            out["intent_scored"]["text_weight"] = head.text_weight
            alone = head.alone(np.array(scored_logits), [r["messages"][-2]["content"] for r in intents])
            out["intent_scored_head"] = score_intents(_untempered_answers(alone.tolist(), labels), intents, labels)
        if head is not None:  # what the LM head alone reads off the same model (no temperature)
            lm_outs, _, _ = timed("intent_scoring_lm", classify_by_scoring, model, tok, intents, labels, 1.0, None,
                                  e.batch_size)
            out["intent_scored_lm"] = score_intents(lm_outs, intents, labels)
    if len(outputs) == 2:
        out["predictions"] = [
            {"id": r["id"], "actual": r["meta"]["intent"],
             "generate": (parse_intent(g, labels) or {}).get("primary_intent", "<invalid>"),
             "scored": json.loads(s)["primary_intent"], "scored_confidence": json.loads(s)["confidence"],
             "scored_logits": [round(x, 4) for x in row],  # label log-likelihoods, INTENTS order
             "lang": r["lang"]}
            for r, g, s, row in zip(intents, outputs["intent"], outputs["intent_scored"], scored_logits,
                                    strict=True)]
    if "choices" in tasks:
        items = _sample(build_items(e.choices, e.choices_generated, p.seed), e.choices_examples, p.seed,
                        "eval-choices")
        out["choices"] = timed("choices", score_choices, model, tok, items, e.batch_size)
    if "probes" in tasks:
        probes = _sample([r for r in test if r["task"] == "probe"], e.probe_examples, p.seed, "eval-probe")
        probe_out = timed("probes", generate, model, tok, prompts_for(tok, probes), e.max_new_tokens, e.batch_size)
        out["probes"] = score_probes(probe_out, probes)
        samples["probes"] = _samples(probes, probe_out)
    if "latency" in tasks:
        latency = timed("latency", measure_latency, model, tok, intent_prompts[: e.latency_queries], e.max_new_tokens)
        latency.update({"load_s": seconds["load"], "classify_mode": "label_scoring"})
        if "intent_scoring" in tasks:
            latency.update({
                "classify_p50_ms": percentile(scored_ms, 50),
                "classify_p95_ms": percentile(scored_ms, 95),
                "classify_p99_ms": percentile(scored_ms, 99),
                "classify_per_s": 1000 * len(scored_ms) / sum(scored_ms),
            })
        out["latency"] = latency
    if "perplexity" in tasks:
        general = _sample([r for r in test if r["task"] == "general"], e.perplexity_examples, p.seed, "eval-ppl")
        out["perplexity"] = timed("perplexity", perplexity, model, tok, general, e.batch_size)
    if "tools" in tasks:
        out["tools"] = timed("tools", score_tools, model, tok, test, p)
    if "travel" in tasks:
        out["travel"] = timed("travel", score_travel_answers, model, tok, test, p, questions, catalog)
    if "general_answers" in tasks:
        out["general_answers"] = timed("general_answers", _general_answers, model, tok, questions, p)
    return {**out, "samples": samples, "seconds": {**seconds, "total": round(sum(seconds.values()), 1)}}
