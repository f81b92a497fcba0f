"""Continual learning: train new data on top of the last merged model, keep every generation, roll back.

A registry folder holds one generation per round::

    gen-000/model/          the starting merged model (hard links where the file system allows)
    gen-000/heldout.jsonl   rows the starting model must keep answering (measured every round)
    gen-000/train.jsonl     rows it was trained on (replayed by later rounds)
    gen-001/adapter/        round 1's LoRA adapter, trained on top of gen-000/model: kept
    gen-001/model/          gen-000/model + that adapter, merged in full precision
    gen-001/train.jsonl, heldout.jsonl, round.json (data digest, replay, scores before/after)
    CURRENT                 the generation in use

A round mixes a share of earlier rounds' training rows into the new ones (replay, the plain and
effective defence against forgetting), trains with the specialist phase's settings, merges, and
scores the model before and after on every earlier generation's held-out rows. A round whose
drop exceeds ``max_drop`` is kept for inspection but not made current; ``rollback`` makes the
previous accepted generation current again, byte for byte, since nothing overwrote it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
from pathlib import Path

from domaintune.cli import InputError
from domaintune.io import atomic_path, read_jsonl, write_json, write_jsonl
from domaintune.params import ContinualParams, LoraParams, PhaseParams
from domaintune.records import INTENTS, validate_record

log = logging.getLogger(__name__)


class RegistryError(InputError):
    """The registry is missing, empty, or asked to do something it cannot (roll back past the start)."""


def _gen(n: int) -> str:
    return f"gen-{n:03d}"


def current(registry: str | Path) -> str:
    path = Path(registry) / "CURRENT"
    if not path.is_file():
        raise RegistryError(f"{registry}: not a continual-learning registry (no CURRENT); run a round first")
    return path.read_text().strip()


def current_model(registry: str | Path) -> Path:
    return Path(registry) / current(registry) / "model"


def _set_current(registry: Path, gen: str) -> None:
    with atomic_path(registry / "CURRENT") as tmp:
        tmp.write_text(gen + "\n")


def _link_tree(src: Path, dst: Path) -> None:
    def link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:  # another file system: copy
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link)


def history(registry: str | Path) -> list[dict]:
    """Every generation's round record, oldest first."""
    return [json.loads(p.read_text()) for p in sorted(Path(registry).glob("gen-*/round.json"))]


def init_registry(registry: str | Path, start_model: str | Path, trained_on: list[dict],
                  heldout: list[dict]) -> None:
    """Create ``gen-000`` from the starting model and the rows that define what it must keep knowing."""
    registry = Path(registry)
    if (registry / "CURRENT").exists():
        return
    if not (Path(start_model) / "config.json").is_file():
        raise RegistryError(f"{start_model}: no model there to start from (run `dvc repro` first)")
    with atomic_path(registry / _gen(0), is_dir=True) as tmp:
        _link_tree(Path(start_model), tmp / "model")
        write_jsonl(tmp / "train.jsonl", trained_on)
        write_jsonl(tmp / "heldout.jsonl", heldout)
        write_json(tmp / "round.json", {"generation": _gen(0), "status": "accepted", "source": str(start_model)})
    _set_current(registry, _gen(0))


def accuracy(model_dir: str | Path, rows: list[dict], max_new_tokens: int = 48,
             batch_size: int = 16) -> float | None:
    """Share of rows answered right (``None`` for no rows): the intent label for intent rows; else
    an expected answer (``meta.answers``, or the reference reply) appearing as a whole word, as
    the retention probes are scored."""
    from domaintune.evaluation.generate import generate, load_model, prompts_for
    from domaintune.evaluation.intent import parse_intent
    from domaintune.evaluation.retention import probe_correct

    if not rows:
        return None
    model, tok = load_model(model_dir)
    outs = generate(model, tok, prompts_for(tok, rows), max_new_tokens, batch_size)
    hits = 0
    for out, row in zip(outs, rows, strict=True):
        if row["task"] == "intent":
            hits += (parse_intent(out, list(INTENTS)) or {}).get("primary_intent") == row["meta"]["intent"]
        else:
            hits += probe_correct(out, row.get("meta", {}).get("answers") or [row["messages"][-1]["content"]])
    return hits / len(rows)


def train_round(registry: str | Path, data_path: str | Path, cfg: ContinualParams, phase: PhaseParams,
                lora: LoraParams, seed: int) -> dict:
    """Train ``data_path`` on top of the current generation; return the round record."""
    from domaintune.modeling.merge import merge_adapter
    from domaintune.training.sft import train_adapter

    registry = Path(registry)
    base_gen = current(registry)
    rows = [validate_record(r, f"{data_path}:{i}") for i, r in enumerate(read_jsonl(data_path), 1)]
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    n_heldout = max(1, round(cfg.holdout_fraction * len(rows)))
    if len(rows) - n_heldout < 1:
        raise RegistryError(f"{data_path}: {len(rows)} rows leave nothing to train on after holding out {n_heldout}")
    heldout = [rows[i] for i in sorted(order[:n_heldout])]
    new_train = [rows[i] for i in sorted(order[n_heldout:])]

    accepted = [h["generation"] for h in history(registry) if h["status"] == "accepted"]
    earlier_train = [r for g in accepted for r in read_jsonl(registry / g / "train.jsonl")]
    earlier_heldout = [r for g in accepted for r in read_jsonl(registry / g / "heldout.jsonl")]
    n_replay = min(len(earlier_train), round(cfg.replay_share / max(1e-9, 1 - cfg.replay_share) * len(new_train)))
    replay = rng.sample(earlier_train, n_replay)
    mixed = new_train + replay
    rng.shuffle(mixed)

    gen = _gen(max(int(p.name.split("-")[1]) for p in registry.glob("gen-*")) + 1)
    base_model = registry / base_gen / "model"
    before = {"earlier": accuracy(base_model, earlier_heldout), "new": accuracy(base_model, heldout)}
    with atomic_path(registry / gen, is_dir=True) as tmp:
        write_jsonl(tmp / "train.jsonl", new_train)
        write_jsonl(tmp / "heldout.jsonl", heldout)
        write_jsonl(tmp / "mixed.jsonl", mixed)
        train_metrics = train_adapter(base_model, tmp / "mixed.jsonl", tmp / "heldout.jsonl", tmp / "adapter", phase,
                                      lora, seed, registry / ".checkpoints" / gen)
        merge_adapter(base_model, tmp / "adapter", tmp / "model")
        after = {"earlier": accuracy(tmp / "model", earlier_heldout), "new": accuracy(tmp / "model", heldout)}
        # nothing earlier to forget in the first round after a bare start
        drop = 0.0 if before["earlier"] is None else before["earlier"] - after["earlier"]
        record = {
            "generation": gen, "parent": base_gen,
            "data": str(data_path), "data_sha256": hashlib.sha256(Path(data_path).read_bytes()).hexdigest(),
            "new_train_rows": len(new_train), "heldout_rows": len(heldout), "replayed_rows": n_replay,
            "earlier_heldout_rows": len(earlier_heldout),
            "before": before, "after": after, "earlier_drop": drop, "max_drop": cfg.max_drop,
            "status": "accepted" if drop <= cfg.max_drop else "rejected",
            "train": {k: train_metrics[k] for k in ("train_loss", "eval_loss", "steps", "runtime_s")},
        }
        write_json(tmp / "round.json", record)
        (tmp / "mixed.jsonl").unlink()  # derivable from the two files above and the seed
    shutil.rmtree(registry / ".checkpoints", ignore_errors=True)
    if record["status"] == "accepted":
        _set_current(registry, gen)
    else:
        log.warning("%s: accuracy on earlier rounds fell by %.3f (> %.3f); kept, not made current",
                    gen, drop, cfg.max_drop)
    return record


def rollback(registry: str | Path) -> str:
    """Make the current generation's parent current again; mark the current one rolled back."""
    registry = Path(registry)
    gen = current(registry)
    record_path = registry / gen / "round.json"
    record = json.loads(record_path.read_text())
    parent = record.get("parent")
    if parent is None:
        raise RegistryError(f"{registry}: {gen} is the starting model; there is nothing to roll back to")
    write_json(record_path, {**record, "status": "rolled_back"})
    _set_current(registry, parent)
    return parent
