"""Where a training run keeps its checkpoints so that an interrupted stage resumes, not restarts.

DVC 3 has no checkpoint outputs and deletes a stage's outputs before running it, so
checkpoints live outside every output, in ``checkpoints/<phase>/<fingerprint>/`` (git- and
DVC-ignored). The fingerprint covers everything the result depends on (base model, data,
params), so a checkpoint is only resumed by the very run that wrote it; other runs' are
removed. A finished run removes its own: the adapter is then a DVC output, cached.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

ROOT = Path("checkpoints")


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(inputs: list[str | Path], settings: dict) -> str:
    """Hash of the input files (a directory: its files) and the JSON-able ``settings``."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for item in map(Path, inputs):
        files = sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
        for p in files:
            # Large weight files: size + mtime would be cheaper but not stable across clones.
            h.update(f"{p.relative_to(item) if item.is_dir() else p.name}:{_file_digest(p)}".encode())
    return h.hexdigest()[:16]


def run_dir(phase: str, fp: str, root: Path = ROOT, clean: bool = True) -> Path:
    """This run's checkpoint folder; with ``clean``, stale folders of other runs of the phase are deleted."""
    phase_dir = root / phase
    if clean and phase_dir.is_dir():
        for other in phase_dir.iterdir():
            if other.name != fp:
                shutil.rmtree(other, ignore_errors=True)
    return phase_dir / fp


def last_checkpoint(folder: Path) -> str | None:
    """The newest *complete* checkpoint in ``folder``; incomplete ones are deleted.

    The Trainer writes ``trainer_state.json`` last, so a process killed while saving leaves
    a folder without it (or with it cut short); resuming from that would fail. The previous
    checkpoint is only rotated away after the new one is complete, so one good one remains.
    """
    if not folder.is_dir():
        return None
    found = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[-1]), reverse=True)
    for ckpt in found:
        try:
            json.loads((ckpt / "trainer_state.json").read_text())
            return str(ckpt)
        except (OSError, ValueError):
            shutil.rmtree(ckpt, ignore_errors=True)
    return None
