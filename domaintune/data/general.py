"""General data against forgetting: an Alpaca-format importer and verifiable probes.

Probes have exact answers, so retention is measured by a check, not a judge model. They are
all held out: none is ever trained on.
"""

from __future__ import annotations

import json
from pathlib import Path

from domaintune.cli import InputError
from domaintune.data.common import load_yaml, rng, stable_hash
from domaintune.params import GeneralData

PROBE_SUFFIX = " Answer briefly."


def read_alpaca(path: str | Path) -> list[dict]:
    """Read an Alpaca JSON list; a malformed row stops with its index and the reason."""
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found (data.general.alpaca_path)") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None
    if not isinstance(rows, list):
        raise InputError(f"{path}: expected a JSON list of {{instruction, input, output}} rows")
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise InputError(f"{path}: row {i}: expected an object, got {type(row).__name__}")
        for key in ("instruction", "output"):
            if not isinstance(row.get(key), str):
                raise InputError(f"{path}: row {i}: {key!r} missing or not a string")
        if not isinstance(row.get("input", ""), str):
            raise InputError(f"{path}: row {i}: 'input' is not a string")
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


def _probe(i: int, kind: str, question: str, answers: list[str]) -> dict:
    return {"id": f"probe-{i:05d}", "task": "probe", "lang": "en", "split": "test",
            "messages": [{"role": "user", "content": question + PROBE_SUFFIX},
                         {"role": "assistant", "content": answers[0]}],
            "meta": {"kind": kind, "answers": answers}}


def build_probes(probes_file: str | Path, n: int, seed: int) -> list[dict]:
    raw = load_yaml(probes_file, required=("capitals", "facts"))
    r = rng(seed, "probes")
    items: list[tuple[str, str, list[str]]] = []
    for country, capital in raw["capitals"].items():
        items.append(("capital", f"What is the capital of {country}?", [capital]))
    for i, f in enumerate(raw["facts"]):
        if not isinstance(f, dict) or "q" not in f or "a" not in f:
            raise InputError(f"{probes_file}: facts[{i}]: needs keys q and a")
        items.append(("fact", f["q"], [str(f["a"])] + [str(x) for x in f.get("alt", [])]))
    conversions = [("kilometers", "meters", 1000), ("hours", "minutes", 60), ("kilograms", "grams", 1000),
                   ("minutes", "seconds", 60), ("meters", "centimeters", 100), ("days", "hours", 24)]
    while len(items) < n:
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
    return [_probe(i, k, q, a) for i, (k, q, a) in enumerate(unique[:n])]
