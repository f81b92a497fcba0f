"""Helpers every data builder shares: seeded randomness, stable hold-outs, raw-file loading.

Raw files are checked against pydantic schemas; an error names ``file:line`` and the key path,
so a typo in row 812 of a hand-written catalog is found without a debugger.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from domaintune.cli import InputError

M = TypeVar("M", bound=BaseModel)


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


def key_path(loc: tuple | list) -> str:
    """``("destinations", 3, "name")`` -> ``destinations[3].name``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "top level"


def yaml_line(path: str | Path, loc: tuple | list) -> int | None:
    """1-based line of the node at ``loc`` in a YAML file (or of its nearest existing parent).

    Only called on the error path, so the second parse costs nothing on good input.
    """
    try:
        node = yaml.compose(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            node, at = (pair[1], pair[0]) if pair else (None, None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = at = node.value[part]
        else:
            node = None
        if node is None:
            break
        line = at.start_mark.line + 1  # a mapping entry is reported at its key
    return line


def raw_error(path: str | Path, loc: tuple | list, reason: str) -> InputError:
    """An :class:`InputError` reading ``file:line: key.path: reason``."""
    line = yaml_line(path, loc) if str(path).endswith((".yaml", ".yml")) else None
    where = f"{path}:{line}" if line else str(path)
    return InputError(f"{where}: {key_path(loc)}: {reason}")


def load_yaml(path: str | Path) -> Any:
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML: {e}") from None


def load_checked(path: str | Path, schema: type[M]) -> M:
    """Load a YAML or JSON file and validate it against ``schema``; the first error names file:line."""
    if str(path).endswith(".json"):
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{path}: file not found") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    else:
        data = load_yaml(path)
    try:
        return schema.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = [p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        raise raw_error(path, loc, first["msg"].removeprefix("Value error, ")) from None
