"""DVC stage (one per agent): build the agent's data under data/agents/<name>."""

from domaintune.agents import data_dir
from domaintune.cli import run_stage
from domaintune.io import write_json
from stages.agent_steps import agent_step


def main() -> None:
    agent_step("build", lambda name: write_json(data_dir(name) / "stats.json", {"enabled": False}))


if __name__ == "__main__":
    run_stage(main)
