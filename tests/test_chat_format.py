"""Formatting and loss masks through the real SmolLM2 tokenizer and chat template."""

import json

from domaintune.modeling.chat_format import assistant_spans, prompt_text, tokenize_with_mask


def trained_text(tok, enc):
    return tok.decode([t for t, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True) if m])


def test_mask_covers_assistant_turns_and_end_of_turn_only(tokenizer):
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of Peru?"},
            {"role": "assistant", "content": "Lima."}, {"role": "user", "content": "And Chile?"},
            {"role": "assistant", "content": "Santiago."}]
    enc = tokenize_with_mask(tokenizer, msgs)
    assert len(enc["input_ids"]) == len(enc["assistant_masks"])
    assert trained_text(tokenizer, enc) == "Lima.<|im_end|>\nSantiago.<|im_end|>\n"
    # the end-of-turn token is inside the loss, so the model learns to stop
    eos = tokenizer.eos_token_id
    assert any(t == eos and m for t, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True))
    # and nothing of the prompt is
    prompt_ids = tokenizer(prompt_text(tokenizer, msgs[:3]), add_special_tokens=False)["input_ids"]
    assert sum(enc["assistant_masks"][: len(prompt_ids)]) == 0


def test_masked_ids_are_the_ids_inference_would_produce(tokenizer):
    msgs = [{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "Hi there!"}]
    enc = tokenize_with_mask(tokenizer, msgs)
    prompt = prompt_text(tokenizer, msgs)
    full = tokenizer(prompt + "Hi there!<|im_end|>\n", add_special_tokens=False)["input_ids"]
    assert enc["input_ids"] == full


def test_tool_call_turn_trained_tool_result_not(tokenizer, root):
    tool = json.loads((root / "data/raw/tools/get_weather.json").read_text())
    msgs = [{"role": "user", "content": "Rain in Rome tomorrow?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "get_weather",
                                                  "arguments": {"location": "Rome", "date": "2026-05-02"}}}]},
            {"role": "tool", "content": '{"condition": "sunny"}'},
            {"role": "assistant", "content": "No rain: sunny."}]
    text, spans = assistant_spans(tokenizer, msgs, [tool])
    assert "get_weather" in text[: spans[0][0]]  # the schema is in the prompt
    trained = trained_text(tokenizer, tokenize_with_mask(tokenizer, msgs, [tool]))
    call = '{"name": "get_weather", "arguments": {"location": "Rome", "date": "2026-05-02"}}'
    assert f"<tool_call>\n{call}\n</tool_call>" in trained
    assert "sunny\"}" not in trained and trained.endswith("No rain: sunny.<|im_end|>\n")


def test_tool_template_renders_plain_chats_like_the_original(tokenizer):
    convs = [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        [{"role": "system", "content": "S"}, {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
         {"role": "user", "content": "c"}],
    ]
    for conv in convs:
        for gen in (False, True):
            ours = tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen)
            theirs = tokenizer.apply_chat_template(conv, tokenize=False, add_generation_prompt=gen,
                                                   chat_template=tokenizer.original_chat_template)
            assert ours == theirs


def test_pad_token_differs_from_end_of_turn(tokenizer):
    assert tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id


def test_mix_stage_lengths_are_the_lengths_training_sees(tokenizer, root, monkeypatch):
    """The mix stage filters on token_lengths; training tokenizes with tokenize_with_mask. They must agree."""
    from domaintune.data.lengths import token_lengths
    from domaintune.data.tools import build_tools
    from domaintune.data.travel import build_travel
    from domaintune.params import load_params

    monkeypatch.chdir(root)
    p = load_params(root / "params.yaml")
    rows = build_tools(p.data.tools, p.seed)[0][:15] + build_travel(p.data.travel, p.seed)[0][:15]
    expected = [len(tokenize_with_mask(tokenizer, r["messages"], r.get("tools"))["input_ids"]) for r in rows]
    assert token_lengths(tokenizer, rows, batch=7) == expected
    assert max(expected) > 400  # tool schemas and travel plans, not toy rows
