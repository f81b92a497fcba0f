"""Turn per-model evaluations into the metrics files of the contract (see README)."""

from __future__ import annotations

import numpy as np

HEADLINE = ("accuracy", "macro_f1", "json_valid_rate", "ece")
BOOTSTRAP = 2000


def ratio_interval(base: list[int], final: list[int], seed: int = 0) -> list[float]:
    """95% paired-bootstrap interval of sum(final) / sum(base) over the same items."""
    b, f = np.asarray(base, dtype=float), np.asarray(final, dtype=float)
    if len(b) != len(f) or not len(b):
        raise ValueError(f"retention needs the same items for both models, got {len(b)} and {len(f)}")
    idx = np.random.default_rng(seed).integers(0, len(b), size=(BOOTSTRAP, len(b)))
    ratios = f[idx].sum(1) / np.maximum(b[idx].sum(1), 1)
    return [float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))]


def _headline(intent: dict) -> dict:
    return {k: intent[k] for k in HEADLINE + ("per_language",)}


def summarize(evals: dict[str, dict], retention_min: float, baselines: dict | None = None,
              chain: dict | None = None, served: dict | None = None) -> dict[str, dict]:
    """``evals`` maps model name (base, instruct, specialist) to its evaluation; the specialist is final.
    ``baselines`` (TF-IDF, keywords) and ``chain`` (the serving fallback chain) were scored on the
    same intent rows; they sit beside the model so every `dvc metrics diff` shows the gap.
    ``served`` (the serving_latency stage) replaces the evaluation's classification timings, taken
    in fp32, eager, one at a time, with those of the configuration ``serve.*`` serves."""
    base, final = evals["base"], evals["specialist"]
    scored = final["intent_scored"]
    intent = {k: v for k, v in final["intent"].items() if k != "reliability"}
    # the fast path (label likelihoods): what serving uses, and what every model is scored on
    intent["scored"] = {k: scored[k] for k in HEADLINE + ("per_intent", "per_language")}
    # the temperature the calibrate stage fitted, and the ECE the raw probabilities had on the same rows
    intent["scored"].update({k: scored[k] for k in ("temperature", "ece_uncalibrated", "head", "text_weight")
                             if k in scored})
    if "intent_scored_head" in final:  # the intent head alone, where the served one is blended with TF-IDF
        intent["scored_head"] = {k: final["intent_scored_head"][k] for k in ("accuracy", "macro_f1", "per_language")}
    if "intent_scored_lm" in final:  # the same model's LM head alone, where an intent head is served
        intent["scored_lm"] = {k: final["intent_scored_lm"][k] for k in ("accuracy", "macro_f1", "per_language")}
    intent["scored_gain"] = scored["accuracy"] - base["intent_scored"]["accuracy"]
    for name in ("base", "instruct"):
        if name in evals:  # laid out like the final model's: free generation (if it ran) with `scored` inside
            e = evals[name]
            intent[name] = {**(_headline(e["intent"]) if "intent" in e else {}),
                            "scored": _headline(e["intent_scored"]),
                            **({"scored_lm": {k: e["intent_scored_lm"][k] for k in ("accuracy", "per_language")}}
                               if "intent_scored_lm" in e else {})}
    if "intent" in base:
        intent["accuracy_gain"] = final["intent"]["accuracy"] - base["intent"]["accuracy"]
    if baselines is not None:
        intent["baselines"] = {name: {k: baselines[name][k] for k in ("accuracy", "macro_f1", "per_language")}
                               for name in ("tfidf", "keywords")}
        intent["scored_minus_tfidf"] = scored["accuracy"] - baselines["tfidf"]["accuracy"]
        intent["scored_minus_keywords"] = scored["accuracy"] - baselines["keywords"]["accuracy"]
        if "scored_head" in intent:  # the model's own reading, without the TF-IDF it is blended with
            intent["scored_head_minus_tfidf"] = intent["scored_head"]["accuracy"] - baselines["tfidf"]["accuracy"]
    if chain is not None:
        intent["chain"] = chain
    # Retention: the final model's multiple-choice score over the base model's on the same
    # 1,000+ general items, with a paired bootstrap 95% interval; the greedy probes stay beside it.
    b, f = base["choices"]["score"], final["choices"]["score"]
    retention = {
        "base": b,
        "final": f,
        "retention": f / b if b > 0 else 0.0,
        "ci95": ratio_interval(base["choices"]["correct"], final["choices"]["correct"]),
        "per_kind": {name: e["choices"]["per_kind"] for name, e in evals.items() if "choices" in e},
        "examples": final["choices"]["examples"],
        "probes": {"base": base["probes"]["score"], "final": final["probes"]["score"],
                   "examples": final["probes"]["examples"],
                   "per_kind": {name: e["probes"]["per_kind"] for name, e in evals.items() if "probes" in e}},
        "gate": {"min": retention_min},
    }
    stage1 = evals.get("instruct", {})  # scored on eval.instruct_tasks: what it ran is shown
    if "choices" in stage1:
        retention["instruct"] = stage1["choices"]["score"]
    if "probes" in stage1:
        retention["probes"]["instruct"] = stage1["probes"]["score"]
    retention["gate"]["passed"] = retention["retention"] >= retention_min
    ppl = {("final" if name == "specialist" else name): e["perplexity"]["perplexity"] for name, e in evals.items()
           if "perplexity" in e}
    # held-out general answers; lower is better, so a ratio above 1 is forgetting
    retention["perplexity"] = {**ppl, "ratio": ppl["final"] / ppl["base"], "tokens": final["perplexity"]["tokens"]}
    latency = {**final["latency"], **(served or {}),
               "evaluation_s": {name: e["seconds"]["total"] for name, e in evals.items() if "seconds" in e}}
    return {"intent": intent, "retention": retention, "latency": latency,
            "tools": _per_model(evals, "tools", TOOL_KEYS), "travel": {**_per_model(evals, "travel", TRAVEL_KEYS),
                                                                      "seed": _seed_summary(final["travel"]["seed"])}}


TOOL_KEYS = ("call_valid_rate", "name_accuracy", "args_accuracy", "no_call_accuracy", "grounded_answer_rate",
             "examples")
TRAVEL_KEYS = ("budget_stated_rate", "budget_consistent_rate", "named_places_mean", "other_places_mean",
               "followup_rate", "looping_rate", "examples")


def _per_model(evals: dict[str, dict], key: str, keys: tuple[str, ...]) -> dict:
    """The final model's numbers at the top (what `dvc metrics diff` compares), earlier models nested
    when they were scored on it (``eval.reference_tasks``)."""
    out = {k: evals["specialist"][key][k] for k in keys}
    for name in ("base", "instruct"):
        if key in evals.get(name, {}):
            out[name] = {k: evals[name][key][k] for k in keys}
    return out


def travel_headline(travel: dict) -> dict:
    """One model's travel figures, laid out as metrics/travel.json shows the final model's."""
    return {**{k: travel[k] for k in TRAVEL_KEYS}, "seed": _seed_summary(travel["seed"])}


def _seed_summary(seeds: list[dict]) -> dict:
    """The fixed seed requests (destinations seen in training, phrasings not): plans only for the budget
    and follow-up checks, every request for named places."""
    plans = [s for s in seeds if s["plan"]]
    n = max(1, len(plans))
    return {"budget_consistent_rate": sum(s["budget_consistent"] for s in plans) / n,
            "followup_rate": sum(s["followup"] for s in plans) / n,
            "looping_rate": sum(s.get("loops", False) for s in seeds) / max(1, len(seeds)),
            "named_places_mean": sum(s["named_places"] for s in seeds) / max(1, len(seeds)),
            "requests": len(seeds)}


def plot_rows(final: dict) -> dict[str, list[dict]]:
    """Rows of the DVC plots: the final model's confusion matrix and reliability curves."""
    return {
        "confusion": [{"actual": p["actual"], "predicted": p["generate"]} for p in final["predictions"]],
        "confusion_scored": [{"actual": p["actual"], "predicted": p["scored"]} for p in final["predictions"]],
        "reliability_generate": final["intent"]["reliability"],
        "reliability_scored": final["intent_scored"]["reliability"],
    }
