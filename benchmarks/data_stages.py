"""Benchmark: wall time of all data stages (4 builders + mix) on one CPU core.

Target (issue 3): under 60 s for 12,000 stage-2 examples. Each stage runs as DVC would run it
(`python -m stages.<name>` in a scratch copy), pinned to one core with single-threaded
tokenizers and BLAS. The same run first times the repository's default sizes as a baseline.

    dvc repro prepare_base            # the mix stage measures lengths with the base tokenizer
    python benchmarks/data_stages.py  # [--examples 12000] [--core 0]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["build_general", "build_travel", "build_intents", "build_tools", "mix"]
TARGET_S = 60.0


def scaled(params: dict, examples: int) -> dict:
    """Params whose stage-2 split has ``examples`` rows, with enough of each source to fill it."""
    p = json.loads(json.dumps(params))
    mix = p["mix"]
    mix["specialist_examples"] = examples
    # The hand-written templates yield ~5,400 distinct training utterances, so at this size the
    # domain part leans more on travel and tool conversations than the CPU default does.
    mix["domain_shares"] = {"intent": 0.5, "travel": 0.25, "tool": 0.25}
    domain = examples * (1 - mix["general_share"])
    p["data"]["intents"]["examples_per_intent"] = 800
    p["data"]["travel"]["examples"] = int(domain * 0.25 * 1.3)
    p["data"]["tools"]["examples"] = int(domain * 0.25 * 1.3)
    return p


def run_all(params: dict, core: int) -> tuple[dict[str, float], dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory(prefix="bench-data-") as tmp:
        work = Path(tmp)
        (work / "data").mkdir()
        (work / "models").mkdir()
        (work / "data" / "raw").symlink_to(ROOT / "data" / "raw")
        (work / "models" / "base").symlink_to(ROOT / "models" / "base")
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        times = {}
        for stage in STAGES:
            start = time.perf_counter()
            proc = subprocess.run(["taskset", "-c", str(core), sys.executable, "-m", f"stages.{stage}"],
                                  cwd=work, env=env, capture_output=True, text=True)
            times[stage] = time.perf_counter() - start
            if proc.returncode:
                sys.exit(f"{stage} failed:\n{proc.stderr[-2000:]}")
        return times, json.loads((work / "metrics" / "data.json").read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=12000, help="stage-2 training examples to build")
    ap.add_argument("--core", type=int, default=0, help="the one CPU core to run on")
    args = ap.parse_args()
    if not (ROOT / "models" / "base" / "tokenizer.json").exists():
        sys.exit("models/base is missing: run `dvc repro prepare_base` first (the mix stage needs its tokenizer)")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    rows = []
    runs = (("baseline (params.yaml)", params), (f"{args.examples} stage-2 examples", scaled(params, args.examples)))
    for name, p in runs:
        times, metrics = run_all(p, args.core)
        total = sum(times.values())
        ex = metrics["examples"]
        rows.append((name, times, total, ex["specialist_train"]["total"], metrics))
        print(f"\n{name}: {total:.1f} s on core {args.core}")
        for stage, t in times.items():
            print(f"  {stage:<14} {t:6.1f} s")
        print(f"  stage-2 rows {ex['specialist_train']['total']}, stage-1 rows {ex['instruct_train']['total']}, "
              f"test rows {ex['test']['total']}, domain shortfall {metrics['domain_shortfall']}")
        print(f"  removed: {metrics['removed']}")
    (_, _, base_total, base_rows, _), (_, _, total, n_rows, _) = rows
    print(f"\nbaseline {base_total:.1f} s for {base_rows} stage-2 rows; scaled {total:.1f} s for {n_rows} "
          f"({total / base_total:.1f}x the time for {n_rows / base_rows:.1f}x the rows)")
    verdict = "PASS" if total < TARGET_S and n_rows >= args.examples else "FAIL"
    print(f"target: all data stages < {TARGET_S:.0f} s for {args.examples} stage-2 examples on one core: {verdict}")


if __name__ == "__main__":
    main()
