"""DVC stage (one per agent): train the agent into models/agents/<name>."""

from domaintune.agents import model_dir
from domaintune.cli import run_stage
from domaintune.io import write_json
from stages.agent_steps import agent_step


def main() -> None:
    out = agent_step("train", lambda name: write_json(model_dir(name) / "disabled.json", {"enabled": False}))
    if out is not None:
        name, metrics = out
        write_json(model_dir(name) / "training.json", metrics)  # agent_evaluate reports it


if __name__ == "__main__":
    run_stage(main)
