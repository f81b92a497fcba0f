"""DVC stage: train one phase's LoRA adapter (stage 1 `instruct` or stage 2 `specialist`)."""

import argparse
import shutil

from domaintune.cli import run_stage
from domaintune.io import write_json
from domaintune.params import load_params
from domaintune.training.checkpoints import fingerprint, run_dir
from domaintune.training.sft import train_adapter
from stages.phases import PHASES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=sorted(PHASES))
    phase = ap.parse_args().phase
    p = load_params()
    paths = PHASES[phase]
    train_path = f"data/processed/splits/{phase}_train.jsonl"
    val_path = f"data/processed/splits/{phase}_val.jsonl"
    settings = getattr(p.train, phase)
    lora = p.lora_for(phase)
    guard_path = "data/processed/splits/guard.jsonl"
    run = fingerprint([paths["base"], train_path, val_path, guard_path],
                      {"phase": settings.model_dump(), "lora": lora.model_dump(), "seed": p.seed})
    checkpoints = run_dir(phase, run)
    metrics = train_adapter(
        base_dir=paths["base"], train_path=train_path, val_path=val_path, out_dir=paths["adapter"],
        phase=settings, lora=lora, seed=p.seed, checkpoint_dir=checkpoints, live_dir=f"dvclive/{phase}",
        guard_path=guard_path,
    )
    write_json(f"metrics/train_{phase}.json", metrics)
    shutil.rmtree(checkpoints, ignore_errors=True)  # done: the adapter is now a cached DVC output


if __name__ == "__main__":
    run_stage(main)
