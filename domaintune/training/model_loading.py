"""Load the base model for LoRA training: full precision, or 4-bit NF4 for QLoRA.

QLoRA (Dettmers et al., 2023): the frozen base is stored in NF4 with double quantization and
computes in bf16 (fp32 where bf16 is not native); only the LoRA weights train. The merge
step never touches these 4-bit weights: it reloads the base in full precision
(``domaintune/modeling/merge.py``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel


def training_device() -> str:
    """cuda, then mps, then cpu: the device the Trainer will pick."""
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_for_training(base_dir: str | Path, quantization: str, bf16: bool,
                      gradient_checkpointing: bool) -> PreTrainedModel:
    if quantization == "none":
        return AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if quantization != "4bit":
        raise ValueError(f"unknown quantization {quantization!r} (expected 'none' or '4bit')")
    from peft import prepare_model_for_kbit_training
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float32,
    )
    # One process per device under DDP: each rank loads its own quantized copy on its own GPU.
    device = training_device()
    if device == "cuda":
        device = f"cuda:{torch.cuda.current_device()}"
    model = AutoModelForCausalLM.from_pretrained(base_dir, quantization_config=config, device_map={"": device})
    # Norms and embeddings to fp32, input grads on for checkpointing through frozen 4-bit layers.
    return prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
