"""DVC stage (one per agent): score the agent; details in evals/agents/<name>.json, headline
figures in metrics/agents/<name>.json (dvc metrics diff shows them under the agent's name)."""

from domaintune.agents import eval_path, metrics_path
from domaintune.cli import run_stage
from domaintune.io import write_json
from stages.agent_steps import agent_step


def _disabled(name: str) -> None:
    write_json(eval_path(name), {"enabled": False})
    write_json(metrics_path(name), {"enabled": False})


def main() -> None:
    out = agent_step("evaluate", _disabled)
    if out is not None:
        name, (details, metrics) = out
        write_json(eval_path(name), details)
        write_json(metrics_path(name), {"enabled": True, **metrics})


if __name__ == "__main__":
    run_stage(main)
