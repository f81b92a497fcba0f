"""One training module for both phases: LoRA SFT with TRL on assistant tokens only."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import shutil
import time
from pathlib import Path

import torch
import torch.distributed as dist
from datasets import Dataset
from peft import LoraConfig
from safetensors.torch import save_file
from transformers import AutoTokenizer, set_seed
from trl import SFTConfig, SFTTrainer

from domaintune.io import atomic_path, read_jsonl
from domaintune.memory import peak_mem_mb
from domaintune.modeling.chat_format import tokenize_row
from domaintune.modeling.merge import DELTA_FILE
from domaintune.params import LoraParams, PhaseParams
from domaintune.training import auto_size
from domaintune.training.checkpoints import last_checkpoint
from domaintune.training.curves import GlobalStepDVCLive, open_live
from domaintune.training.guard import ForgettingGuard
from domaintune.training.lm_head import compact_lm_head
from domaintune.training.model_loading import load_for_training, training_device
from domaintune.training.precision import use_bf16
from domaintune.training.trainable import freeze_below, trainable_state

log = logging.getLogger(__name__)


def tokenize_records(tok, rows: list[dict], max_length: int | None) -> tuple[Dataset, int]:
    """Tokenize chat records (or plain-text rows) with loss masks; drop (and count) the ones longer
    than ``max_length`` rather than train on a truncated answer without its end-of-turn token."""
    kept, too_long = [], 0
    for row in rows:
        enc = tokenize_row(tok, row)
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


def is_main_rank() -> bool:
    """Rank 0, known from the launcher's environment before any process group exists."""
    return int(os.environ.get("RANK", "0")) == 0


def rank_summaries(model, steps: int) -> list[dict]:
    """Each process's step count and LoRA weight digest, gathered from every rank (one entry alone)."""
    h = hashlib.sha256()
    for name, tensor in sorted(trainable_state(model).items()):
        h.update(name.encode())
        h.update(tensor.detach().float().cpu().numpy().tobytes())
    mine = {"rank": dist.get_rank() if dist.is_initialized() else 0, "steps": steps, "lora_sha256": h.hexdigest()[:16]}
    if not dist.is_initialized():
        return [mine]
    everyone: list = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, mine)
    return everyone


def save_delta(trainer: SFTTrainer, tok, out_dir: Path, layers: list[int]) -> None:
    """A full fine-tune's result: only the tensors it trained (safetensors) and the tokenizer."""
    if trainer.accelerator.is_main_process:
        state = {k: v.detach().float().cpu().contiguous() for k, v in trainable_state(trainer.model).items()}
        with atomic_path(out_dir, is_dir=True) as tmp:
            save_file(state, str(tmp / DELTA_FILE), metadata={"method": "full", "layers": ",".join(map(str, layers))})
            tok.save_pretrained(tmp)
    trainer.accelerator.wait_for_everyone()


def save_adapter(trainer: SFTTrainer, tok, out_dir: Path, staging: Path) -> None:
    """One adapter, whatever the number of processes. Every rank takes part in ``save_model``
    (FSDP and ZeRO-3 gather the sharded weights there); only the main process writes, to a
    staging folder outside the DVC outputs, and then moves the adapter into place atomically."""
    if trainer.is_fsdp_enabled:
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    trainer.save_model(str(staging))
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        with atomic_path(out_dir, is_dir=True) as tmp:
            for name in ("adapter_config.json", "adapter_model.safetensors"):  # not the pickled training_args.bin
                shutil.copy2(staging / name, tmp / name)
            tok.save_pretrained(tmp)
        shutil.rmtree(staging, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()


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
    model = load_for_training(base_dir, phase.quantization, bf16, phase.gradient_checkpointing)

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
        max_length=None,  # rows over max_length were dropped and counted above, never truncated
        # Padding-free: a batch is one row of concatenated examples; position ids restart per example
        # so attention stays within each (transformers builds the block-diagonal mask from them).
        padding_free=phase.padding_free,
        gradient_checkpointing=phase.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False} if phase.gradient_checkpointing else None,
        logging_steps=phase.log_steps,
        eval_strategy="steps" if phase.eval_steps else "no",
        eval_steps=phase.eval_steps or None,
        save_strategy="steps" if phase.save_steps else "no",
        save_steps=phase.save_steps or 500,
        save_total_limit=1,  # a LoRA checkpoint is small, but optimizer state adds up
        report_to="none",
        seed=seed,
        data_seed=seed,
        dataloader_num_workers=0,
        # similar lengths per batch: less padding, and less attention over a padding-free row
        train_sampling_strategy="group_by_length",
        use_cpu=training_device() == "cpu",
        ddp_find_unused_parameters=False,  # LoRA on the top layers: the frozen lower layers have no grads
    )
    peft_config, full_layers = None, []
    if phase.method == "full":
        if phase.quantization != "none":
            raise ValueError("method full trains the weights themselves: set quantization: none (4bit is QLoRA)")
        full_layers = freeze_below(model, lora.top_layers)
    else:
        peft_config = LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            layers_to_transform=top_layers(model, lora.top_layers),
            task_type="CAUSAL_LM",
        )
    resume = last_checkpoint(Path(checkpoint_dir))
    resumed_step = int(Path(resume).name.rsplit("-", 1)[-1]) if resume else 0
    callbacks, live, guard = [], None, None
    if live_dir is not None and is_main_rank():
        live = open_live(str(live_dir), resumed_step)
        callbacks.append(GlobalStepDVCLive(live=live))
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
    if resume:
        log.info("resuming from %s", resume)
    with compact_lm_head(training_device()) as compact:
        start = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=resume)
        runtime = time.perf_counter() - start
        # the last step's scheduled evaluation, if there was one; else one now
        done = [h["eval_loss"] for h in trainer.state.log_history
                if "eval_loss" in h and h.get("step") == trainer.state.global_step]
        eval_loss = done[-1] if done else trainer.evaluate()["eval_loss"]

    ranks = rank_summaries(trainer.model, result.global_step)
    if phase.method == "full":
        save_delta(trainer, tok, Path(out_dir), full_layers)
    else:
        save_adapter(trainer, tok, Path(out_dir), Path(checkpoint_dir) / "final")

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
        "quantization": phase.quantization,
        "padding_free": phase.padding_free,
        "cpu_compact_lm_head": compact,  # the LM head skipped unlabelled positions on the CPU (lm_head.py)
        "device": training_device(),
        "world_size": len(ranks),
        "ranks": ranks,  # per process: steps and a digest of its LoRA weights (equal under DDP)
        "method": phase.method,
        "lora_r": lora.r if phase.method == "lora" else None,
        "trainable_params": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "auto": chosen,  # the values picked for params set to "auto"
        "guard": guard.summary() if guard else None,
        "resumed_from_step": resumed_step,
    }
    log.info("trained %s: %s", out_dir, metrics)
    return metrics
