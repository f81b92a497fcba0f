"""DVC stage: weather tool-use conversations."""

from domaintune.cli import run_stage
from domaintune.data.build import write_built
from domaintune.data.tools import build_tools
from domaintune.params import load_params


def main() -> None:
    p = load_params()
    write_built("tools", *build_tools(p.data.tools, p.seed))


if __name__ == "__main__":
    run_stage(main)
