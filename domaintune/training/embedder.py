"""Contrastive training of a sentence embedder: sentence-transformers' trainer with
MultipleNegativesRankingLoss over (question, passage, hard negative) triples.

In-batch negatives come free with this loss; the explicit negative is the same kind of passage
from another destination, which is what a travel question is most easily confused with.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from datasets import Dataset

from domaintune.io import atomic_path
from domaintune.memory import peak_mem_mb
from domaintune.modeling.embedder import load_embedder
from domaintune.params import EmbeddingTrain

log = logging.getLogger(__name__)


def train_embedder(base_dir: str | Path, rows: list[dict], cfg: EmbeddingTrain, seed: int,
                   out_dir: str | Path) -> dict:
    """Train on ``{"query", "positive", "negative"}`` rows; save to ``out_dir``; return the metrics."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments, losses
    from sentence_transformers.training_args import BatchSamplers

    if not rows:
        raise ValueError("no training pairs")
    model = load_embedder(base_dir)
    data = Dataset.from_list([{"anchor": r["query"], "positive": r["positive"], "negative": r["negative"]}
                              for r in rows])
    with tempfile.TemporaryDirectory(prefix="embedder-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=cfg.epochs, max_steps=cfg.max_steps,
            per_device_train_batch_size=cfg.batch_size,
            learning_rate=cfg.learning_rate, warmup_steps=cfg.warmup_ratio, seed=seed, data_seed=seed,
            # a batch with the same passage twice would score a right answer as a negative
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            logging_steps=20, save_strategy="no", report_to="none", dataloader_num_workers=0,
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                             loss=losses.MultipleNegativesRankingLoss(model))
        start = time.perf_counter()
        result = trainer.train()
        runtime = time.perf_counter() - start
    with atomic_path(out_dir, is_dir=True) as tmp:
        model.save(str(tmp), safe_serialization=True)
    metrics = {"train_loss": result.training_loss, "steps": result.global_step, "train_pairs": len(rows),
               "runtime_s": runtime, "pairs_per_s": len(rows) * cfg.epochs / runtime, "peak_mem_mb": peak_mem_mb()}
    log.info("trained %s: %s", out_dir, metrics)
    return metrics
