"""Benchmark: stage-2 training with TRL's LM head projecting every position vs only the labelled
ones (``domaintune.training.lm_head``), same rows, same process, one after the other.

Trains the stage-2 settings (``train.specialist``) over ``models/instruct`` on the first N rows of
``data/processed/splits/specialist_train.jsonl`` (the real mix of intents, tool calls, travel plans
and general rows) and prints one JSON line per arm with its time, tokens/s and loss, then the
speed-up. The losses must be equal: only the work on positions without a label is skipped.

    python benchmarks/lm_head_speed.py --rows 160 --precision fp32
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import tempfile
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domaintune.io import read_jsonl, write_jsonl  # noqa: E402
from domaintune.params import load_params  # noqa: E402
from domaintune.training import sft  # noqa: E402


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=160)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"])
    ap.add_argument("--base", default=str(ROOT / "models/instruct"))
    args = ap.parse_args()

    p = load_params(ROOT / "params.yaml")
    phase = p.train.specialist.model_copy(update={
        "eval_steps": 0, "save_steps": 0, "precision": args.precision,
        "guard": p.train.specialist.guard.model_copy(update={"every_steps": 0})})
    rows = read_jsonl(ROOT / "data/processed/splits/specialist_train.jsonl")[: args.rows]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_jsonl(d / "train.jsonl", rows)
        write_jsonl(d / "val.jsonl", rows[:4])
        # untimed warm-up: the first training in a process pays for imports, allocator and thread pools
        sft.train_adapter(args.base, d / "train.jsonl", d / "val.jsonl", d / "warm", phase.model_copy(
            update={"max_steps": 4}), p.lora_for("specialist"), p.seed, d / "ckpt_warm")
        for arm in ("every position", "labelled only"):
            # "every position": what TRL does off Triton devices, the switch left as shipped
            ctx = (mock.patch.object(sft, "compact_lm_head", lambda device: contextlib.nullcontext(False))
                   if arm == "every position" else contextlib.nullcontext())
            with ctx:
                m = sft.train_adapter(args.base, d / "train.jsonl", d / "val.jsonl", d / arm.replace(" ", "_"),
                                      phase, p.lora_for("specialist"), p.seed, d / f"ckpt_{arm[0]}")
            results[arm] = m
            print(json.dumps({"arm": arm, "rows": len(rows), "precision": m["precision"],
                              "train_s": round(m["runtime_s"], 1), "tokens_per_s": round(m["tokens_per_s"]),
                              "train_loss": m["train_loss"], "cpu": cpu_name()}))
    every, compact = results["every position"], results["labelled only"]
    print(json.dumps({"speedup": round(every["runtime_s"] / compact["runtime_s"], 3),
                      "time_saved": round(1 - compact["runtime_s"] / every["runtime_s"], 3),
                      "same_loss": abs(every["train_loss"] - compact["train_loss"]) < 1e-4}))


if __name__ == "__main__":
    main()
