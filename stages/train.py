"""DVC stage: train one phase's LoRA adapter (stage 1 `instruct` or stage 2 `specialist`)."""

import argparse
import tempfile

from domaintune.cli import run_stage
from domaintune.io import write_json
from domaintune.params import load_params
from domaintune.training.sft import train_adapter
from stages.phases import PHASES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=sorted(PHASES))
    phase = ap.parse_args().phase
    p = load_params()
    paths = PHASES[phase]
    with tempfile.TemporaryDirectory(prefix=f"train-{phase}-") as work:
        metrics = train_adapter(
            base_dir=paths["base"],
            train_path=f"data/processed/splits/{phase}_train.jsonl",
            val_path=f"data/processed/splits/{phase}_val.jsonl",
            out_dir=paths["adapter"],
            phase=getattr(p.train, phase),
            lora=p.lora,
            seed=p.seed,
            work_dir=work,
        )
    write_json(f"metrics/train_{phase}.json", metrics)


if __name__ == "__main__":
    run_stage(main)
