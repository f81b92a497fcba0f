"""DVC stage: travel-planning conversations from the destination catalog."""

from domaintune.cli import run_stage
from domaintune.data.build import write_built
from domaintune.data.travel import build_travel
from domaintune.params import load_params


def main() -> None:
    p = load_params()
    write_built("travel", *build_travel(p.data.travel, p.seed))


if __name__ == "__main__":
    run_stage(main)
