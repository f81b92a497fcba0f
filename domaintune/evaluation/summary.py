"""Turn per-model evaluations into the metrics files of the contract (see README)."""

from __future__ import annotations

HEADLINE = ("accuracy", "macro_f1", "json_valid_rate", "ece")


def _headline(intent: dict) -> dict:
    return {k: intent[k] for k in HEADLINE + ("per_language",)}


def summarize(evals: dict[str, dict], retention_min: float) -> dict[str, dict]:
    """``evals`` maps model name (base, instruct, specialist) to its evaluation; the specialist is final."""
    base, final = evals["base"], evals["specialist"]
    scored = final["intent_scored"]
    intent = {k: v for k, v in final["intent"].items() if k != "reliability"}
    intent.update({
        "base": _headline(base["intent"]),
        "accuracy_gain": final["intent"]["accuracy"] - base["intent"]["accuracy"],
        # the fast path (label likelihoods): what serving uses
        "scored": {k: scored[k] for k in HEADLINE + ("per_intent", "per_language")},
    })
    if "instruct" in evals:
        intent["instruct"] = _headline(evals["instruct"]["intent"])
    b, f = base["probes"]["score"], final["probes"]["score"]
    retention = {
        "base": b,
        "final": f,
        "retention": f / b if b > 0 else 0.0,
        "per_kind": {name: e["probes"]["per_kind"] for name, e in evals.items()},
        "examples": final["probes"]["examples"],
        "gate": {"min": retention_min},
    }
    if "instruct" in evals:
        retention["instruct"] = evals["instruct"]["probes"]["score"]
    retention["gate"]["passed"] = retention["retention"] >= retention_min
    return {"intent": intent, "retention": retention, "latency": final["latency"]}


def plot_rows(final: dict) -> dict[str, list[dict]]:
    """Rows of the DVC plots: the final model's confusion matrix and reliability curves."""
    return {
        "confusion": [{"actual": p["actual"], "predicted": p["generate"]} for p in final["predictions"]],
        "confusion_scored": [{"actual": p["actual"], "predicted": p["scored"]} for p in final["predictions"]],
        "reliability_generate": final["intent"]["reliability"],
        "reliability_scored": final["intent_scored"]["reliability"],
    }
