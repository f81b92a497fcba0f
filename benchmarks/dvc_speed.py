"""Benchmark: what DVC costs when nothing (or almost nothing) changed, on the real pipeline.

Target (issue 7): a no-op `dvc repro` on the default pipeline takes at most a few seconds, and
changing only an evaluation param re-runs only evaluation. Run it in a workspace where `dvc repro`
has completed (outputs present). It prints:

1. `dvc status` and no-op `dvc repro` wall times (median of 3), against `python -c pass` and
   `dvc --version` as the interpreter / DVC start-up baseline in the same run;
2. for one param of each kind, the stages DVC would re-run (`dvc repro --dry`, nothing executed);
3. the wall time of actually re-running after a summarize-only change (the retention gate), which
   must touch `summarize` and `report` and nothing else. params.yaml is restored afterwards.

    python benchmarks/dvc_speed.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domaintune.pr_metrics import apply_overrides  # noqa: E402

DVC = [sys.executable, "-m", "dvc"]
# one knob per kind: what a teammate would change
CHANGES = {
    "eval.retention_min": 0.9,            # the gate: summarize only
    "eval.intent_examples": 140,          # an evaluation size: evaluate@*, summarize, report
    "train.specialist.learning_rate": 4e-4,   # stage 2: train, merge, evaluate the specialist
    "mix.general_share": 0.3,             # the data mix: everything from mix on
}


def timed(cmd: list[str]) -> tuple[float, str]:
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    return time.perf_counter() - t, proc.stdout + proc.stderr


def median_s(cmd: list[str], n: int = 3) -> float:
    return statistics.median(timed(cmd)[0] for _ in range(n))


def stages_run(output: str) -> list[str]:
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def main() -> None:
    _, status = timed([*DVC, "status"])
    if "changed" in status or "modified" in status or "deleted" in status:
        raise SystemExit(f"run `dvc repro` first: the pipeline is not up to date\n{status[:2000]}")
    print("no-op costs (median of 3):")
    for name, cmd in (("python -c pass", [sys.executable, "-c", "pass"]), ("dvc --version", [*DVC, "--version"]),
                      ("dvc status", [*DVC, "status"]), ("dvc repro (nothing changed)", [*DVC, "repro"])):
        print(f"  {name:30} {median_s(cmd):6.2f} s")

    params = ROOT / "params.yaml"
    original = params.read_text()
    try:
        print("\nwhat one changed param re-runs (dvc repro --dry):")
        for key, value in CHANGES.items():
            apply_overrides(params, {key: value})
            _, out = timed([*DVC, "repro", "--dry"])
            print(f"  {key}={value}: {', '.join(stages_run(out)) or 'nothing'}")
            params.write_text(original)
        apply_overrides(params, {"eval.retention_min": 0.9})
        seconds, out = timed([*DVC, "repro"])
        print(f"\neval.retention_min=0.9, real run: {seconds:.2f} s, ran {', '.join(stages_run(out))}")
    finally:
        params.write_text(original)
        timed([*DVC, "repro"])  # back to the committed state (restored from the run cache)


if __name__ == "__main__":
    main()
