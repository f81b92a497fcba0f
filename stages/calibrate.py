"""DVC stage: fit one model's label-scoring temperature (of its intent head, when it has one) on the
calibration split (held-out templates)."""

import argparse

from domaintune.cli import run_stage
from domaintune.evaluation.generate import load_model
from domaintune.evaluation.temperature import calibrate
from domaintune.io import read_jsonl, write_json
from domaintune.modeling.intent_head import load_intent_head
from domaintune.params import load_params
from stages.phases import MODELS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(MODELS))
    name = ap.parse_args().model
    p = load_params()
    model, tok = load_model(MODELS[name])
    rows = read_jsonl("data/processed/splits/calibration.jsonl")
    head = load_intent_head(f"models/intent_head/{name}")  # stage intent_head; None when it is off
    write_json(f"models/calibration/{name}.json", calibrate(model, tok, rows, p.eval.calibrate, head))


if __name__ == "__main__":
    run_stage(main)
