"""Helpers every data builder shares: seeded randomness, stable hold-outs, raw-file loading."""

from __future__ import annotations

import hashlib
import math
import random
from pathlib import Path
from typing import Any

import yaml

from domaintune.cli import InputError


def rng(seed: int, name: str) -> random.Random:
    """A generator per builder, so adding draws in one builder never shifts another's output."""
    return random.Random(f"{seed}:{name}")


def stable_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def heldout(items: list[str], share: float, minimum: int = 1) -> set[str]:
    """Pick ``share`` of ``items`` for the test split by content hash: stable when items are added."""
    if len(items) <= minimum:
        return set()
    k = max(minimum, math.ceil(share * len(items))) if share > 0 else 0
    return set(sorted(items, key=stable_hash)[:k])


def load_yaml(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping at the top level")
    for key in required:
        if key not in data:
            raise InputError(f"{path}: missing top-level key {key!r}")
    return data
