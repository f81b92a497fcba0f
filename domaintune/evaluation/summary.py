"""Turn per-model evaluations into the metrics files of the contract (see README)."""

from __future__ import annotations

HEADLINE = ("accuracy", "macro_f1", "json_valid_rate")


def summarize(base: dict, final: dict) -> dict[str, dict]:
    intent = {**final["intent"], "base": {k: base["intent"][k] for k in HEADLINE + ("per_language",)}}
    intent["accuracy_gain"] = final["intent"]["accuracy"] - base["intent"]["accuracy"]
    b, f = base["probes"]["score"], final["probes"]["score"]
    retention = {
        "base": b,
        "final": f,
        "retention": f / b if b > 0 else 0.0,
        "per_kind": {"base": base["probes"]["per_kind"], "final": final["probes"]["per_kind"]},
        "examples": final["probes"]["examples"],
    }
    return {"intent": intent, "retention": retention, "latency": final["latency"]}
