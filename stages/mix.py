"""DVC stage: per-phase train/val splits and the held-out test set; writes metrics/data.json."""

import json

from domaintune.cli import run_stage
from domaintune.data.build import PROCESSED
from domaintune.data.mix import data_metrics, mix
from domaintune.io import read_jsonl, write_json, write_jsonl
from domaintune.params import load_params

SOURCES = ("general", "travel", "intents", "tools")


def main() -> None:
    p = load_params()
    records, build_stats = [], {}
    for name in SOURCES:
        records += read_jsonl(PROCESSED / f"{name}.jsonl")
        build_stats[name] = json.loads((PROCESSED / f"{name}.stats.json").read_text())
    splits, mix_stats = mix(records, p.mix, p.seed)
    for name, rows in splits.items():
        write_jsonl(PROCESSED / "splits" / f"{name}.jsonl", rows)
    write_json("metrics/data.json", data_metrics(splits, build_stats, mix_stats))


if __name__ == "__main__":
    run_stage(main)
