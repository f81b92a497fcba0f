"""DVC stage: metrics/intent.json, retention.json and latency.json from the per-model evaluations."""

import json

from domaintune.cli import run_stage
from domaintune.evaluation.summary import summarize
from domaintune.io import write_json


def main() -> None:
    base = json.load(open("evals/base.json"))
    final = json.load(open("evals/specialist.json"))
    for name, metrics in summarize(base, final).items():
        write_json(f"metrics/{name}.json", metrics)


if __name__ == "__main__":
    run_stage(main)
