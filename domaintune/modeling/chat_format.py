"""Tokenize chat records through the model's own chat template, with a mask of the tokens to train on.

TRL's ``assistant_only_loss`` needs ``{% generation %}`` markers that the SmolLM2 and Llama 3.2
templates lack. Instead, the assistant spans are found by rendering the conversation
incrementally with the *inference* template, so training and serving can never disagree on
format, and it works for any template whose renders extend one another. Each span runs from
the end of the generation prompt to the end of the assistant turn, so the end-of-turn token
is trained and the model learns to stop.
"""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from domaintune.records import to_chat


class TemplateError(ValueError):
    """The chat template does not render a conversation as a sequence of growing prefixes."""


def _render(tok: PreTrainedTokenizerBase, messages: list[dict], tools: list | None, gen_prompt: bool) -> str:
    return tok.apply_chat_template(messages, tools=tools or None, tokenize=False, add_generation_prompt=gen_prompt)


def assistant_spans(
    tok: PreTrainedTokenizerBase, messages: list[dict], tools: list | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """Render ``messages`` and return the text with the (start, end) character spans of assistant turns."""
    messages = to_chat(messages)
    text = _render(tok, messages, tools, False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = _render(tok, messages[:i], tools, True)
        upto = _render(tok, messages[: i + 1], tools, False)
        if not (upto.startswith(prompt) and text.startswith(upto)):
            raise TemplateError(
                f"the chat template does not render message {i} as an extension of the ones before it; "
                "assistant-only loss cannot be located"
            )
        spans.append((len(prompt), len(upto)))
    return text, spans


def tokenize_with_mask(tok: PreTrainedTokenizerBase, messages: list[dict], tools: list | None = None) -> dict:
    """Return ``input_ids`` and ``assistant_masks`` (1 = in the loss), as TRL's SFTTrainer consumes them."""
    text, spans = assistant_spans(tok, messages, tools)
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = []
    for start, _end in enc["offset_mapping"]:
        mask.append(int(any(a <= start < b for a, b in spans)))
    return {"input_ids": enc["input_ids"], "assistant_masks": mask}


def tokenize_row(tok: PreTrainedTokenizerBase, row: dict) -> dict:
    """A chat record (loss on assistant tokens) or a plain-text row ``{"text"}`` (loss on every
    token, closed by end-of-sequence: causal LM training on a style or code corpus)."""
    if "text" in row:
        ids = tok(row["text"], add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
        return {"input_ids": ids, "assistant_masks": [1] * len(ids)}
    return tokenize_with_mask(tok, row["messages"], row.get("tools"))


def prompt_text(tok: PreTrainedTokenizerBase, messages: list[dict], tools: list | None = None) -> str:
    """The inference prompt for everything before the last assistant turn (what a user would send)."""
    messages = to_chat(messages)
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return _render(tok, messages[:last], tools, True)
