"""Merge a LoRA adapter into a full-precision copy of its base and save plain safetensors.

Merging into quantized weights would re-quantize and lose accuracy, so the base is always
loaded in fp32 here, whatever precision training used.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from domaintune.io import atomic_path

log = logging.getLogger(__name__)


def merge_adapter(base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path) -> None:
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    tok = AutoTokenizer.from_pretrained(adapter_dir)
    with atomic_path(out_dir, is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    log.info("merged %s into %s -> %s", adapter_dir, base_dir, out_dir)
