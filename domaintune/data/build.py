"""What every build stage does with its records: validate each one, then write atomically."""

from __future__ import annotations

import logging
from pathlib import Path

from domaintune.io import write_json, write_jsonl
from domaintune.records import validate_record

log = logging.getLogger(__name__)
PROCESSED = Path("data/processed")


def write_built(name: str, records: list[dict], stats: dict) -> None:
    """Write ``data/processed/<name>.jsonl`` and its stats; a bad record stops before any write."""
    for row in records:
        validate_record(row, f"{name} record {row.get('id', '?')}")
    ids = [r["id"] for r in records]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{name}: duplicate record ids")
    stats = {**stats, "records": len(records),
             "train": sum(r["split"] == "train" for r in records),
             "test": sum(r["split"] == "test" for r in records),
             "calibration": sum(r["split"] == "calibration" for r in records)}
    write_jsonl(PROCESSED / f"{name}.jsonl", records)
    write_json(PROCESSED / f"{name}.stats.json", stats)
    log.info("%s: %s", name, stats)
