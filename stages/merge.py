"""DVC stage: merge a phase's adapter into its full-precision base."""

import argparse

from domaintune.cli import run_stage
from domaintune.modeling.merge import merge_adapter
from stages.phases import PHASES


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("phase", choices=sorted(PHASES))
    paths = PHASES[ap.parse_args().phase]
    merge_adapter(paths["base"], paths["adapter"], paths["merged"])


if __name__ == "__main__":
    run_stage(main)
