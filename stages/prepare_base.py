"""DVC stage: materialize the base model under models/base."""

from domaintune.cli import run_stage
from domaintune.modeling.base import prepare_base
from domaintune.params import load_params


def main() -> None:
    params = load_params()
    prepare_base(params.model, "models/base")


if __name__ == "__main__":
    run_stage(main)
