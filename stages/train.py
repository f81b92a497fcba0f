"""DVC stage: train one phase's LoRA adapter (stage 1 `instruct` or stage 2 `specialist`).

With `train.launch.strategy` other than `single`, this process re-runs itself under
`accelerate launch` (configs/accelerate/<strategy>.yaml) and waits for it.
"""

import argparse
import shutil
import subprocess
import sys

from domaintune.cli import run_stage
from domaintune.io import write_json
from domaintune.params import load_params
from domaintune.training.checkpoints import fingerprint, run_dir
from domaintune.training.launch import inside_launcher, launch_command
from domaintune.training.sft import is_main_rank, train_adapter
from stages.phases import PHASES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=sorted(PHASES))
    phase = ap.parse_args().phase
    p = load_params()
    if p.train.launch.strategy != "single" and not inside_launcher():
        sys.exit(subprocess.call(launch_command(p.train.launch, ["-m", "stages.train", phase])))
    paths = PHASES[phase]
    train_path = f"data/processed/splits/{phase}_train.jsonl"
    val_path = f"data/processed/splits/{phase}_val.jsonl"
    settings = getattr(p.train, phase)
    lora = p.lora_for(phase)
    guard_path = "data/processed/splits/guard.jsonl"
    run = fingerprint([paths["base"], train_path, val_path, guard_path],
                      {"phase": settings.model_dump(), "lora": lora.model_dump(), "seed": p.seed,
                       "launch": p.train.launch.model_dump()})
    checkpoints = run_dir(phase, run, clean=is_main_rank())  # one process deletes stale runs
    metrics = train_adapter(
        base_dir=paths["base"], train_path=train_path, val_path=val_path, out_dir=paths["adapter"],
        phase=settings, lora=lora, seed=p.seed, checkpoint_dir=checkpoints, live_dir=f"dvclive/{phase}",
        guard_path=guard_path,
    )
    if is_main_rank():
        write_json(f"metrics/train_{phase}.json", metrics)
        shutil.rmtree(checkpoints, ignore_errors=True)  # done: the adapter is now a cached DVC output


if __name__ == "__main__":
    run_stage(main)
