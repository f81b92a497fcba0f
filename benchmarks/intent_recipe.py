"""Benchmark: a stage-2 recipe on intents alone, in minutes instead of a whole `dvc exp run`.

Trains the stage-2 settings (``train.specialist``, with ``--set`` overrides) on the first N
intent training rows (seeded shuffle) over ``models/instruct``, merges, and label-scores the
held-out intent rows of the test split, the serving path. One variable at a time, then the
winner goes through `dvc exp run` to be measured with everything else. Prints one JSON line
per run (and appends it to ``--log`` if given).

    python benchmarks/intent_recipe.py --name b2 --rows 480 --set batch_size=2
    python benchmarks/intent_recipe.py --name top6 --rows 480 --top-layers 6
    python benchmarks/intent_recipe.py --name weak3 --rows 1242 --passes '*=2' --passes ar=3 --passes en=1

The guard, periodic evaluation and checkpoints are off: they cost time and change nothing here.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domaintune.data.intents import build_intents  # noqa: E402
from domaintune.evaluation.generate import load_model  # noqa: E402
from domaintune.evaluation.intent import score_intents  # noqa: E402
from domaintune.evaluation.run import classify_by_scoring  # noqa: E402
from domaintune.io import read_jsonl, write_jsonl  # noqa: E402
from domaintune.modeling.merge import merge_adapter  # noqa: E402
from domaintune.params import load_params  # noqa: E402
from domaintune.records import INTENTS  # noqa: E402
from domaintune.training.sft import train_adapter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--rows", type=int, default=480, help="intent training rows")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override of train.specialist, e.g. batch_size=2 or learning_rate=4e-4")
    ap.add_argument("--top-layers", type=int, help="override of the specialist's lora.top_layers")
    ap.add_argument("--passes", action="append", default=[], metavar="LANG=N",
                    help="repeat that language's rows N times in the one training set (mix.task_passes, per "
                         "language), e.g. --passes ar=3 --passes en=1; '*=N' sets the rest")
    ap.add_argument("--examples-per-intent", type=int,
                    help="build the intent rows again with this data.intents.examples_per_intent (train rows only; "
                         "the test rows stay those of data/processed/splits/test.jsonl)")
    ap.add_argument("--base", default=str(ROOT / "models/instruct"))
    ap.add_argument("--log", help="also append the result line to this file")
    args = ap.parse_args()

    p = load_params(ROOT / "params.yaml")
    overrides = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    phase = p.train.specialist.model_copy(update={
        **overrides, "eval_steps": 0, "save_steps": 0,
        "guard": p.train.specialist.guard.model_copy(update={"every_steps": 0})})
    lora = p.lora_for("specialist")
    if args.top_layers is not None:
        lora = lora.model_copy(update={"top_layers": args.top_layers})
    test = [r for r in read_jsonl(ROOT / "data/processed/splits/test.jsonl") if r["task"] == "intent"]
    if args.examples_per_intent:
        cfg = p.data.intents.model_copy(update={"examples_per_intent": args.examples_per_intent})
        built, _ = build_intents(cfg, p.seed)
        asked = {r["messages"][1]["content"] for r in test}
        rows = [r for r in built if r["split"] == "train" and r["messages"][1]["content"] not in asked]
    else:
        rows = [r for r in read_jsonl(ROOT / "data/processed/intents.jsonl") if r["split"] == "train"]
    random.Random(p.seed).shuffle(rows)

    passes = {k: int(v) for k, v in (s.split("=", 1) for s in args.passes)}
    train = [r for r in rows[: args.rows] for _ in range(passes.get(r["lang"], passes.get("*", 1)))]
    random.Random(p.seed).shuffle(train)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        write_jsonl(d / "train.jsonl", train)
        write_jsonl(d / "val.jsonl", rows[args.rows : args.rows + 16])
        m = train_adapter(args.base, d / "train.jsonl", d / "val.jsonl", d / "adapter", phase, lora, p.seed,
                          d / "checkpoints")
        merge_adapter(args.base, d / "adapter", d / "merged")
        model, tok = load_model(d / "merged")
        outs, _, _ = classify_by_scoring(model, tok, test, list(INTENTS), batch_size=16)
        del model
        shutil.rmtree(d / "merged")
    s = score_intents(outs, test, list(INTENTS))
    result = {"name": args.name, "rows": len(train), "examples_per_intent": args.examples_per_intent or
              p.data.intents.examples_per_intent, **overrides, **({"passes": passes} if passes else {}),
              "top_layers": lora.top_layers,
              "method": phase.method, "accuracy": round(s["accuracy"], 3),
              "per_language": {k: round(v, 2) for k, v in s["per_language"].items()}, "test_rows": len(test),
              "train_s": round(m["runtime_s"]), "train_loss": round(m["train_loss"], 3), "steps": m["steps"],
              "tokens_per_s": round(m["tokens_per_s"])}
    print(json.dumps(result))
    if args.log:
        with open(args.log, "a") as f:
            f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
