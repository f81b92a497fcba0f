"""Token lengths through the model's real tokenizer and chat template, as training will see them."""

from __future__ import annotations

import numpy as np
from transformers import PreTrainedTokenizerBase

from domaintune.records import to_chat


def token_lengths(tok: PreTrainedTokenizerBase, rows: list[dict], batch: int = 512) -> list[int]:
    """Length in tokens of each whole rendered conversation (what ``max_length`` is compared with)."""
    texts = [tok.apply_chat_template(to_chat(r["messages"]), tools=r.get("tools") or None, tokenize=False)
             for r in rows]
    out: list[int] = []
    for i in range(0, len(texts), batch):
        enc = tok(texts[i : i + batch], add_special_tokens=False)
        out += [len(ids) for ids in enc["input_ids"]]
    return out


def length_summary(lengths: list[int]) -> dict:
    if not lengths:
        return {"p50": 0, "p95": 0, "max": 0}
    a = np.asarray(lengths)
    return {"p50": int(np.percentile(a, 50)), "p95": int(np.percentile(a, 95)), "max": int(a.max())}
