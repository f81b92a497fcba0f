"""DVC stage: general instructions (Alpaca format) and held-out verifiable probes."""

from domaintune.cli import run_stage
from domaintune.data.build import write_built
from domaintune.data.general import build_alpaca, build_probes
from domaintune.params import load_params


def main() -> None:
    p = load_params()
    records, stats = build_alpaca(p.data.general, p.seed)
    probes = build_probes(p.data.general.probes_file, p.data.general.probes, p.seed)
    write_built("general", records + probes, {**stats, "probes": len(probes)})


if __name__ == "__main__":
    run_stage(main)
