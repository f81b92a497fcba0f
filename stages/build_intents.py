"""DVC stage: multilingual intent classification with JSON answers."""

from domaintune.cli import run_stage
from domaintune.data.build import write_built
from domaintune.data.intents import build_intents
from domaintune.params import load_params


def main() -> None:
    p = load_params()
    write_built("intents", *build_intents(p.data.intents, p.seed))


if __name__ == "__main__":
    run_stage(main)
