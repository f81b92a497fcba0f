"""DVC stage: reports/comparison.md, base vs stage 1 vs final on fixed questions, metrics on top."""

import json
from pathlib import Path

from domaintune.cli import run_stage
from domaintune.evaluation.report import comparison_markdown
from domaintune.io import atomic_path

MODELS = ("base", "instruct", "specialist")
METRICS = ("intent", "retention", "tools", "travel")


def main() -> None:
    evals = {name: json.loads(Path(f"evals/{name}.json").read_text()) for name in MODELS}
    metrics = {name: json.loads(Path(f"metrics/{name}.json").read_text()) for name in METRICS}
    with atomic_path("reports/comparison.md") as tmp:
        tmp.write_text(comparison_markdown(evals, metrics) + "\n", encoding="utf-8")


if __name__ == "__main__":
    run_stage(main)
