"""Merge a LoRA adapter into a full-precision copy of its base and save plain safetensors.

Merging into quantized weights would re-quantize and lose accuracy, so the base is always
loaded in fp32 here, whatever precision training used.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from domaintune.io import atomic_path

log = logging.getLogger(__name__)
DELTA_FILE = "delta.safetensors"  # a full fine-tune's trained tensors, in the adapter directory


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path) -> None:
    """LoRA: merge_and_unload. A full fine-tune (``delta.safetensors``): its tensors replace the base's."""
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    delta = Path(adapter_dir) / DELTA_FILE
    if delta.exists():
        state = load_file(str(delta))
        unknown = sorted(set(state) - set(base.state_dict()))
        if unknown:
            raise ValueError(f"{delta}: tensors the base model {base_dir} does not have, e.g. {unknown[0]}")
        base.load_state_dict(state, strict=False)
        model = base
    else:
        model = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    tok = AutoTokenizer.from_pretrained(adapter_dir)
    with atomic_path(out_dir, is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    log.info("merged %s into %s -> %s", adapter_dir, base_dir, out_dir)
