"""DVC stage: evaluate one model (base, stage 1 or the final specialist) on the held-out test set."""

import argparse

from domaintune.cli import run_stage
from domaintune.evaluation.run import evaluate_model
from domaintune.evaluation.temperature import load_temperature
from domaintune.io import write_json
from domaintune.modeling.intent_head import load_intent_head
from domaintune.params import EVAL_TASKS, load_params
from stages.phases import MODELS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(MODELS))
    name = ap.parse_args().model
    p = load_params()
    # the final model is scored on everything; base and stage 1 are references
    tasks = {"specialist": EVAL_TASKS, "base": p.eval.reference_tasks, "instruct": p.eval.instruct_tasks}[name]
    temperature = load_temperature(f"models/calibration/{name}.json")  # stage calibrate
    head = load_intent_head(f"models/intent_head/{name}")  # stage intent_head; None when it is off
    write_json(f"evals/{name}.json", evaluate_model(MODELS[name], "data/processed/splits/test.jsonl", p, tasks,
                                                    temperature, head))


if __name__ == "__main__":
    run_stage(main)
