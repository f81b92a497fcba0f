"""General data against forgetting: an Alpaca-format importer and verifiable probes.

Probes have exact answers, so retention is measured by a check, not a judge model. They are
all held out: none is ever trained on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from domaintune.cli import InputError
from domaintune.data.common import load_checked, rng, stable_hash
from domaintune.params import GeneralData

PROBE_SUFFIX = " Answer briefly."


def _row_lines(text: str) -> Iterator[tuple[int, object]]:
    """Yield (line, value) for each element of a top-level JSON list, so errors can cite lines."""
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    while True:
        while i < len(text) and text[i] in " \t\r\n,":
            i += 1
        if i >= len(text) or text[i] == "]":
            return
        value, end = dec.raw_decode(text, i)
        yield text.count("\n", 0, i) + 1, value
        i = end


def read_alpaca(path: str | Path) -> list[dict]:
    """Read an Alpaca JSON list; a malformed row stops with ``file:line``, its index and the reason."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        rows = json.loads(text)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (data.general.alpaca_path)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(rows, list):
        raise InputError(f"{path}: expected a JSON list of {{instruction, input, output}} rows")
    for i, row in enumerate(rows):
        problem = None
        if not isinstance(row, dict):
            problem = f"expected an object, got {type(row).__name__}"
        elif not isinstance(row.get("instruction"), str) or not isinstance(row.get("output"), str):
            key = "instruction" if not isinstance(row.get("instruction"), str) else "output"
            problem = f"{key!r} missing or not a string"
        elif not isinstance(row.get("input", ""), str):
            problem = "'input' is not a string"
        if problem:
            line = next(n for k, (n, _) in enumerate(_row_lines(text)) if k == i)
            raise InputError(f"{path}:{line}: row {i}: {problem}")
    return rows


def alpaca_to_chat(row: dict) -> list[dict]:
    user = row["instruction"].strip()
    if row.get("input", "").strip():
        user = f"{user}\n\n{row['input'].strip()}"
    return [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"].strip()}]


def build_alpaca(cfg: GeneralData, seed: int) -> tuple[list[dict], dict]:
    rows = read_alpaca(cfg.alpaca_path)
    stats = {"rows": len(rows), "empty_removed": 0, "duplicates_removed": 0}
    seen, kept = set(), []
    for row in rows:
        if not row["instruction"].strip() or not row["output"].strip():
            stats["empty_removed"] += 1
            continue
        key = stable_hash((row["instruction"] + "\n" + row.get("input", "")).strip().lower())
        if key in seen:
            stats["duplicates_removed"] += 1
            continue
        seen.add(key)
        kept.append(row)
    rng(seed, "alpaca").shuffle(kept)
    stats["beyond_max_examples"] = max(0, len(kept) - cfg.max_examples)
    kept = kept[: cfg.max_examples]
    n_test = round(len(kept) * cfg.test_fraction)
    records = [
        {"id": f"general-{i:05d}", "task": "general", "lang": "en",
         "split": "test" if i < n_test else "train", "messages": alpaca_to_chat(row), "meta": {"source": "alpaca"}}
        for i, row in enumerate(kept)
    ]
    return records, stats


class Fact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    q: Annotated[str, Field(min_length=3)]
    a: Annotated[str, Field(min_length=1)]
    alt: list[str] = []


class ProbeFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    capitals: dict[str, Annotated[str, Field(min_length=1)]]
    facts: list[Fact]


def _probe(i: int, kind: str, question: str, answers: list[str], split: str) -> dict:
    return {"id": f"probe-{i:05d}", "task": "probe", "lang": "en", "split": split,
            "messages": [{"role": "user", "content": question + PROBE_SUFFIX},
                         {"role": "assistant", "content": answers[0]}],
            "meta": {"kind": kind, "answers": answers}}


def build_probes(probes_file: str | Path, n: int, seed: int, guard: int = 0) -> list[dict]:
    """``n`` test probes (retention is measured on them) and ``guard`` different ones with split
    ``train``: the training guard watches those; no probe is ever a training example."""
    raw = load_checked(probes_file, ProbeFile)
    r = rng(seed, "probes")
    items: list[tuple[str, str, list[str]]] = []
    for country, capital in raw.capitals.items():
        items.append(("capital", f"What is the capital of {country}?", [capital]))
    for f in raw.facts:
        items.append(("fact", f.q, [f.a] + f.alt))
    conversions = [("kilometers", "meters", 1000), ("hours", "minutes", 60), ("kilograms", "grams", 1000),
                   ("minutes", "seconds", 60), ("meters", "centimeters", 100), ("days", "hours", 24)]
    while len({q for _, q, _ in items}) < n + guard:
        kind = r.choice(["add", "sub", "mul", "convert"])
        if kind == "add":
            a, b = r.randint(2, 60), r.randint(2, 60)
            items.append(("arithmetic", f"What is {a} + {b}?", [str(a + b)]))
        elif kind == "sub":
            a, b = r.randint(20, 99), r.randint(1, 19)
            items.append(("arithmetic", f"What is {a} - {b}?", [str(a - b)]))
        elif kind == "mul":
            a, b = r.randint(2, 12), r.randint(2, 10)
            items.append(("arithmetic", f"What is {a} times {b}?", [str(a * b)]))
        else:
            src, dst, factor = r.choice(conversions)
            q = r.randint(2, 9)
            items.append(("conversion", f"How many {dst} are in {q} {src}?", [str(q * factor)]))
    unique = list({q: (k, q, a) for k, q, a in items}.values())
    r.shuffle(unique)
    return [_probe(i, k, q, a, "test" if i < n else "train") for i, (k, q, a) in enumerate(unique[: n + guard])]
