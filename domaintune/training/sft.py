"""One training module for both phases: LoRA SFT with TRL on assistant tokens only."""

from __future__ import annotations

import logging
import math
import resource
import time
from pathlib import Path

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
from trl import SFTConfig, SFTTrainer

from domaintune.io import atomic_path, read_jsonl
from domaintune.params import LoraParams, PhaseParams
from domaintune.training.chat_format import tokenize_with_mask
from domaintune.training.precision import use_bf16

log = logging.getLogger(__name__)


def tokenize_records(tok, rows: list[dict], max_length: int) -> tuple[Dataset, int]:
    """Tokenize records with loss masks; drop (and count) the ones longer than ``max_length``
    rather than train on a truncated answer without its end-of-turn token."""
    kept, too_long = [], 0
    for row in rows:
        enc = tokenize_with_mask(tok, row["messages"], row.get("tools"))
        if len(enc["input_ids"]) > max_length:
            too_long += 1
            continue
        kept.append(enc)
    if not kept:
        raise ValueError(f"no training example fits in max_length={max_length}")
    return Dataset.from_list(kept), too_long


def top_layers(model, n: int) -> list[int] | None:
    """Indices of the top ``n`` decoder layers (``None``: all layers)."""
    total = model.config.num_hidden_layers
    if n == 0 or n >= total:
        return None
    return list(range(total - n, total))


def peak_mem_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_adapter(
    base_dir: str | Path,
    train_path: str | Path,
    val_path: str | Path,
    out_dir: str | Path,
    phase: PhaseParams,
    lora: LoraParams,
    seed: int,
    work_dir: str | Path,
) -> dict:
    """Train a LoRA adapter on ``base_dir``; save it to ``out_dir``; return the phase metrics."""
    set_seed(seed)
    tok = AutoTokenizer.from_pretrained(base_dir)
    train_ds, train_too_long = tokenize_records(tok, read_jsonl(train_path), phase.max_length)
    val_ds, val_too_long = tokenize_records(tok, read_jsonl(val_path), phase.max_length)
    bf16 = use_bf16(phase.precision)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)

    args = SFTConfig(
        output_dir=str(work_dir),
        per_device_train_batch_size=phase.batch_size,
        per_device_eval_batch_size=phase.batch_size,
        gradient_accumulation_steps=phase.grad_accum,
        learning_rate=phase.learning_rate,
        num_train_epochs=phase.epochs,
        max_steps=phase.max_steps,
        lr_scheduler_type=phase.scheduler,
        warmup_steps=phase.warmup_ratio,  # a float below 1 is a share of the steps
        weight_decay=phase.weight_decay,
        max_grad_norm=phase.max_grad_norm,
        bf16=bf16,
        max_length=phase.max_length,
        logging_steps=10,
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        train_sampling_strategy="group_by_length",  # less padding per batch
        use_cpu=not torch.cuda.is_available(),
    )
    peft_config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        layers_to_transform=top_layers(model, lora.top_layers),
        task_type="CAUSAL_LM",
    )
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
        processing_class=tok, peft_config=peft_config,
    )
    n_tokens = sum(len(x) for x in train_ds["input_ids"])
    start = time.perf_counter()
    result = trainer.train()
    runtime = time.perf_counter() - start
    eval_loss = trainer.evaluate()["eval_loss"]

    with atomic_path(out_dir, is_dir=True) as tmp:
        trainer.model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)

    epochs_done = result.metrics.get("epoch", phase.epochs)
    metrics = {
        "train_loss": result.training_loss,
        "eval_loss": eval_loss,
        "eval_perplexity": math.exp(min(eval_loss, 50)),
        "tokens_per_s": n_tokens * epochs_done / runtime,
        "runtime_s": runtime,
        "peak_mem_mb": peak_mem_mb(),
        "steps": result.global_step,
        "train_examples": len(train_ds),
        "val_examples": len(val_ds),
        "too_long_removed": train_too_long + val_too_long,
        "precision": "bf16" if bf16 else "fp32",
        "lora_r": lora.r,
    }
    log.info("trained %s: %s", out_dir, metrics)
    return metrics
