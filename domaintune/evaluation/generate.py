"""Batched greedy generation through the model's own chat template (the same one training used)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase

from domaintune.modeling.chat_format import prompt_text


def load_model(model_dir: str | Path) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"  # decoder-only batches must be left-padded to generate
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    return model, tok


@torch.inference_mode()
def generate(model, tok, prompts: list[str], max_new_tokens: int, batch_size: int) -> list[str]:
    """Greedy completions for ready-made prompt strings, in input order."""
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))  # less padding per batch
    out: list[str] = [""] * len(prompts)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        new = gen[:, enc["input_ids"].shape[1]:]
        for i, ids in zip(idx, new, strict=True):
            out[i] = tok.decode(ids, skip_special_tokens=True).strip()
    return out


def prompts_for(tok, records: list[dict]) -> list[str]:
    """The prompt a user would send: everything before the record's last assistant turn."""
    return [prompt_text(tok, r["messages"], r.get("tools")) for r in records]
