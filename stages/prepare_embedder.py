"""DVC stage: materialize the base sentence embedder of embedding agents under models/embedder."""

from domaintune.cli import run_stage
from domaintune.modeling.embedder import prepare_embedder
from domaintune.params import load_params


def main() -> None:
    prepare_embedder(load_params().embedder, "models/embedder")


if __name__ == "__main__":
    run_stage(main)
