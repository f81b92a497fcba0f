"""DVC stage: general instructions (Alpaca format) and held-out verifiable probes."""

from domaintune.cli import run_stage
from domaintune.data.build import write_built
from domaintune.data.general import build_alpaca, build_probes
from domaintune.params import load_params


def main() -> None:
    p = load_params()
    records, stats = build_alpaca(p.data.general, p.seed)
    g = p.data.general
    probes = build_probes(g.probes_file, g.probes, p.seed, guard=g.guard_probes)
    write_built("general", records + probes,
                {**stats, "probes": g.probes, "guard_probes": len(probes) - g.probes})


if __name__ == "__main__":
    run_stage(main)
