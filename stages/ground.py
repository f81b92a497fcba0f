"""DVC stage: the specialist's travel answers grounded on the grounding agent's top passages
(serve.grounding), beside its answers without (metrics/travel.json): evals/grounding.json and
metrics/grounding.json."""

import json

from domaintune.cli import run_stage
from domaintune.evaluation.grounding import grounded_travel
from domaintune.io import write_json
from domaintune.params import load_params


def main() -> None:
    p = load_params()
    if not p.agents[p.grounding.agent].enabled:  # nothing to ground on: a stub, like a disabled agent's
        for path in ("evals/grounding.json", "metrics/grounding.json"):
            write_json(path, {"enabled": False, "agent": p.grounding.agent})
        return
    without = json.loads(open("metrics/travel.json", encoding="utf-8").read())
    details, metrics = grounded_travel("models/specialist", "data/processed/splits/test.jsonl", p, without)
    write_json("evals/grounding.json", details)
    write_json("metrics/grounding.json", {"enabled": True, **metrics})


if __name__ == "__main__":
    run_stage(main)
