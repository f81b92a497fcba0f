"""What a training phase changes, for either method: the LoRA weights of a PEFT model, or the
unfrozen tensors of a partial full fine-tune (``method: full``). The guard snapshots and
restores it, the rank digest hashes it, and a full fine-tune saves only it (a "delta" that
the merge stage lays over the base)."""

from __future__ import annotations

import torch
from peft import PeftModel, get_peft_model_state_dict, set_peft_model_state_dict


def _unwrap(model):
    return getattr(model, "module", model)  # DDP wraps the model once


def trainable_state(model) -> dict[str, torch.Tensor]:
    model = _unwrap(model)
    if isinstance(model, PeftModel):
        return get_peft_model_state_dict(model)
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


@torch.no_grad()
def load_trainable_state(model, state: dict[str, torch.Tensor]) -> None:
    model = _unwrap(model)
    if isinstance(model, PeftModel):
        set_peft_model_state_dict(model, state)
        return
    params = dict(model.named_parameters())
    for name, value in state.items():
        params[name].copy_(value)


def freeze_below(model, top_layers: int) -> list[int]:
    """Full fine-tune of the top ``top_layers`` decoder layers (0: all of them); embeddings stay
    frozen (tied to the output head in small models: cheaper, and the vocabulary keeps its meaning).
    Returns the trained layer indices."""
    n = model.config.num_hidden_layers
    layers = list(range(n - top_layers, n)) if 0 < top_layers < n else list(range(n))
    prefixes = tuple(f"model.layers.{i}." for i in layers)
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(prefixes)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("method full: no parameter matched model.layers.<i>.; this architecture names its "
                         "decoder layers differently")
    return layers
