"""Perplexity of held-out general answers: a retention signal that, unlike exact-match probes, moves
smoothly. Only assistant tokens count, located exactly as training locates them."""

from __future__ import annotations

import math

import torch

from domaintune.modeling.chat_format import tokenize_row


@torch.inference_mode()
def perplexity(model, tok, records: list[dict], batch_size: int, max_length: int = 1024) -> dict:
    """exp(mean negative log-likelihood per assistant token) over ``records`` (every token of a
    plain-text row)."""
    encoded = [tokenize_row(tok, r) for r in records]
    encoded = [{k: v[:max_length] for k, v in e.items()} for e in encoded]
    encoded.sort(key=lambda e: len(e["input_ids"]))  # less padding per batch
    device = next(model.parameters()).device
    nll, tokens = 0.0, 0
    for start in range(0, len(encoded), batch_size):
        batch = encoded[start : start + batch_size]
        width = max(len(e["input_ids"]) for e in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id or 0, dtype=torch.long)
        attn = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        for i, e in enumerate(batch):
            n = len(e["input_ids"])
            ids[i, :n] = torch.tensor(e["input_ids"])
            attn[i, :n] = 1
            labels[i, :n] = torch.where(torch.tensor(e["assistant_masks"]) == 1, torch.tensor(e["input_ids"]), -100)
        logits = model(input_ids=ids.to(device), attention_mask=attn.to(device)).logits.float()
        shift_logits, shift_labels = logits[:, :-1], labels[:, 1:].to(device)
        loss = torch.nn.functional.cross_entropy(shift_logits.reshape(-1, shift_logits.shape[-1]),
                                                 shift_labels.reshape(-1), ignore_index=-100, reduction="sum")
        nll += float(loss)
        tokens += int((shift_labels != -100).sum())
    return {"perplexity": math.exp(nll / tokens) if tokens else float("nan"), "tokens": tokens,
            "examples": len(records)}
