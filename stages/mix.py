"""DVC stage: clean and mix the built datasets into per-phase splits; writes metrics/data.json."""

import json

from transformers import AutoTokenizer

from domaintune.cli import run_stage
from domaintune.data.build import PROCESSED
from domaintune.data.lengths import token_lengths
from domaintune.data.mix import data_metrics, mix
from domaintune.io import read_jsonl, write_json, write_jsonl
from domaintune.params import load_params
from domaintune.training.auto_size import auto_max_length
from stages.phases import PHASES

SOURCES = ("general", "travel", "intents", "tools")


def main() -> None:
    p = load_params()
    records, build_stats = [], {}
    for name in SOURCES:
        records += read_jsonl(PROCESSED / f"{name}.jsonl")
        build_stats[name] = json.loads((PROCESSED / f"{name}.stats.json").read_text())
    # Lengths in the tokenizer training will use: the one of the base model.
    tok = AutoTokenizer.from_pretrained(PHASES["instruct"]["base"])
    lengths = dict(zip((r["id"] for r in records), token_lengths(tok, records), strict=True))
    max_length = {phase: getattr(p.train, phase).max_length for phase in PHASES}
    pools = {"instruct": [r for r in records if r["split"] == "train" and r["task"] == "general"],
             "specialist": [r for r in records if r["split"] == "train"]}
    for phase, value in max_length.items():
        if value == "auto":
            max_length[phase] = auto_max_length([lengths[r["id"]] for r in pools[phase]])
    splits, mix_stats = mix(records, lengths, max_length, p.mix, p.seed)
    for name, rows in splits.items():
        write_jsonl(PROCESSED / "splits" / f"{name}.jsonl", rows)
    write_json("metrics/data.json", {**data_metrics(splits, lengths, build_stats, mix_stats), "max_length": max_length})


if __name__ == "__main__":
    run_stage(main)
