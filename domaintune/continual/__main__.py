"""Continual learning from the command line: a new round, a rollback, the history.

    python -m domaintune.continual train data/new_round.jsonl   # on top of the current generation
    python -m domaintune.continual rollback                     # previous generation current again
    python -m domaintune.continual status                       # every round, its scores and status

The first round starts from ``continual.start_from`` (the pipeline's merged specialist). Rounds
train with the ``train.specialist`` settings; see ``domaintune/continual/rounds.py``.
"""

from __future__ import annotations

import argparse
import json
import sys

from domaintune.cli import run_stage
from domaintune.continual import rounds as continual
from domaintune.io import read_jsonl
from domaintune.params import load_params


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m domaintune.continual", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a new round on top of the current generation")
    train.add_argument("data", help="JSONL of chat records (the pipeline's record format)")
    sub.add_parser("rollback", help="make the previous generation current again")
    sub.add_parser("status", help="print every round")
    a = ap.parse_args(argv)
    p = load_params()
    cfg = p.continual
    if a.command == "train":
        continual.init_registry(cfg.registry, cfg.start_from, read_jsonl(cfg.replay_from),
                                read_jsonl(cfg.heldout_from))
        record = continual.train_round(cfg.registry, a.data, cfg, p.train.specialist, p.lora_for("specialist"),
                                       p.seed)
        print(json.dumps(record, indent=2))
        if record["status"] != "accepted":
            sys.exit(1)
    elif a.command == "rollback":
        print(f"current: {continual.rollback(cfg.registry)}")
    else:
        for h in continual.history(cfg.registry):
            print(json.dumps(h))
        print(f"current: {continual.current(cfg.registry)}")


if __name__ == "__main__":
    run_stage(main)
