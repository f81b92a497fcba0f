"""One training module for both phases: LoRA SFT with TRL on assistant tokens only."""

from __future__ import annotations

import logging
import math
import resource
import time
from pathlib import Path

import torch
from datasets import Dataset
from dvclive import Live
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
from transformers.integrations import DVCLiveCallback
from trl import SFTConfig, SFTTrainer

from domaintune.io import atomic_path, read_jsonl
from domaintune.params import LoraParams, PhaseParams
from domaintune.training import auto_size
from domaintune.training.chat_format import tokenize_with_mask
from domaintune.training.checkpoints import last_checkpoint
from domaintune.training.guard import ForgettingGuard
from domaintune.training.precision import use_bf16

log = logging.getLogger(__name__)


def tokenize_records(tok, rows: list[dict], max_length: int | None) -> tuple[Dataset, int]:
    """Tokenize records with loss masks; drop (and count) the ones longer than ``max_length``
    rather than train on a truncated answer without its end-of-turn token."""
    kept, too_long = [], 0
    for row in rows:
        enc = tokenize_with_mask(tok, row["messages"], row.get("tools"))
        if max_length is not None and len(enc["input_ids"]) > max_length:
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
    checkpoint_dir: str | Path,
    live_dir: str | Path | None = None,
    guard_path: str | Path | None = None,
) -> dict:
    """Train a LoRA adapter on ``base_dir``; save it to ``out_dir``; return the phase metrics.

    Checkpoints go to ``checkpoint_dir`` every ``phase.save_steps`` steps; if one is there
    (the same run was interrupted), training resumes from it. Per-step logs go to DVCLive
    in ``live_dir``. With ``phase.guard.every_steps``, the anti-forgetting guard watches the
    general probes in ``guard_path`` and the intent rows of the validation set.
    """
    set_seed(seed)
    tok = AutoTokenizer.from_pretrained(base_dir)
    limit = None if phase.max_length == "auto" else phase.max_length
    train_ds, train_too_long = tokenize_records(tok, read_jsonl(train_path), limit)
    val_ds, val_too_long = tokenize_records(tok, read_jsonl(val_path), limit)
    longest = max(len(x) for ds in (train_ds, val_ds) for x in ds["input_ids"])
    phase, lora, chosen = auto_size.resolve(phase, lora, len(train_ds), longest, torch.cuda.is_available())
    bf16 = use_bf16(phase.precision)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)

    args = SFTConfig(
        output_dir=str(checkpoint_dir),
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
        logging_steps=phase.log_steps,
        eval_strategy="no",
        save_strategy="steps" if phase.save_steps else "no",
        save_steps=phase.save_steps or 500,
        save_total_limit=1,  # a LoRA checkpoint is small, but optimizer state adds up
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
    resume = last_checkpoint(Path(checkpoint_dir))
    callbacks, live, guard = [], None, None
    if live_dir is not None:
        # A resumed run appends to the interrupted run's curves instead of starting new ones.
        live = Live(dir=str(live_dir), resume=bool(resume), save_dvc_exp=False, dvcyaml=False)
        callbacks.append(DVCLiveCallback(live=live))
    if phase.guard.every_steps and guard_path is not None:
        domain = [r for r in read_jsonl(val_path) if r["task"] == "intent"]
        guard = ForgettingGuard(str(base_dir), read_jsonl(guard_path), domain, phase.guard, live)
        guard.measure_base(model)  # the plain base model, before the trainer wraps it
        callbacks.append(guard)
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
        processing_class=tok, peft_config=peft_config, callbacks=callbacks,
    )
    n_tokens = sum(len(x) for x in train_ds["input_ids"])
    resumed_step = int(Path(resume).name.rsplit("-", 1)[-1]) if resume else 0
    if resume:
        log.info("resuming from %s", resume)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=resume)
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
        # a resumed run is credited only with the steps it ran itself
        "tokens_per_s": n_tokens * epochs_done * (1 - resumed_step / max(1, result.global_step)) / runtime,
        "runtime_s": runtime,
        "peak_mem_mb": peak_mem_mb(),
        "steps": result.global_step,
        "train_examples": len(train_ds),
        "val_examples": len(val_ds),
        "too_long_removed": train_too_long + val_too_long,
        "precision": "bf16" if bf16 else "fp32",
        "lora_r": lora.r,
        "auto": chosen,  # the values picked for params set to "auto"
        "guard": guard.summary() if guard else None,
        "resumed_from_step": resumed_step,
    }
    log.info("trained %s: %s", out_dir, metrics)
    return metrics
