"""``auto`` hyperparameters, chosen from the training set the way practitioners size LoRA runs.

Small sets get a lower rank (fewer parameters to overfit with) and more epochs; large sets a
higher rank and one epoch. Warmup is min(10% of the examples, 50) steps. ``max_length``
covers the longest row, which ``mix`` has already capped (see :func:`auto_max_length`).
Every chosen value is returned so the train stage records it in its metrics.
"""

from __future__ import annotations

import math

from domaintune.params import LoraParams, PhaseParams


def auto_max_length(lengths: list[int], multiple: int = 64) -> int:
    """Cover 99% of the rows, rounded up to a multiple of 64 (what ``mix`` filters with)."""
    if not lengths:
        return multiple
    ranked = sorted(lengths)
    p99 = ranked[min(len(ranked) - 1, math.ceil(0.99 * len(ranked)) - 1)]
    return max(multiple, math.ceil(p99 / multiple) * multiple)


def resolve(phase: PhaseParams, lora: LoraParams, n_examples: int, longest: int,
            on_gpu: bool) -> tuple[PhaseParams, LoraParams, dict]:
    """Replace every ``auto`` with a value; return the concrete params and what was chosen."""
    chosen: dict = {}
    if lora.r == "auto":
        chosen["lora_r"] = 8 if n_examples < 1000 else 16 if n_examples < 10000 else 32
    r = chosen.get("lora_r", lora.r)
    if lora.alpha == "auto":
        chosen["lora_alpha"] = 2 * r
    if phase.epochs == "auto":
        chosen["epochs"] = 3 if n_examples < 500 else 2 if n_examples < 5000 else 1
    if phase.batch_size == "auto":
        chosen["batch_size"] = 8 if on_gpu else 4
    if phase.max_length == "auto":
        chosen["max_length"] = longest
    if phase.warmup_ratio == "auto":
        chosen["warmup_steps"] = min(math.ceil(0.1 * n_examples), 50)
    lora = lora.model_copy(update={k.removeprefix("lora_"): v for k, v in chosen.items() if k.startswith("lora_")})
    phase = phase.model_copy(update={("warmup_ratio" if k == "warmup_steps" else k): v
                                     for k, v in chosen.items() if not k.startswith("lora_")})
    return phase, lora, chosen
