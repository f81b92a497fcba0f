"""DVC stage: metrics/intent.json, retention.json, latency.json, tools.json, travel.json and the
evaluation plots, from the per-model evaluations; then the retention gate (eval.retention_min,
eval.retention_action)."""

import csv
import json
import logging

from domaintune.cli import GateError, run_stage
from domaintune.evaluation.chain import chain_report
from domaintune.evaluation.summary import plot_rows, summarize
from domaintune.io import atomic_path, write_json
from domaintune.params import load_params

MODELS = ("base", "instruct", "specialist")


def write_csv(path: str, rows: list[dict]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    p = load_params()
    evals = {name: json.load(open(f"evals/{name}.json")) for name in MODELS}
    baselines = json.load(open("evals/baselines.json"))
    calibration = json.load(open("models/calibration/specialist.json"))  # stage calibrate
    chain = chain_report(evals["specialist"]["predictions"], baselines, p.serve.tiers, p.serve.default_intent,
                         p.serve.unsure, calibration.get("predictions"))
    metrics = summarize(evals, p.eval.retention_min, baselines, chain, json.load(open("evals/serving_latency.json")))
    # the final model's temperature fit on the calibration split, beside its test ECE
    metrics["intent"]["calibration"] = {k: v for k, v in calibration.items() if k != "predictions"}
    for name, values in metrics.items():
        write_json(f"metrics/{name}.json", values)
    for name, rows in plot_rows(evals["specialist"]).items():
        write_csv(f"plots/{name}.csv", rows)
    gate = metrics["retention"]
    if not gate["gate"]["passed"]:
        msg = (f"retention {gate['retention']:.3f} is below eval.retention_min {p.eval.retention_min}: the final "
               f"model answers {gate['final']:.2f} of the general probes, the base {gate['base']:.2f}")
        if p.eval.retention_action == "fail":
            raise GateError(msg)
        logging.getLogger("summarize").warning("%s (eval.retention_action: warn)", msg)


if __name__ == "__main__":
    run_stage(main)
