import pytest

from domaintune.records import RecordError, validate_record

TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


def rec(messages, **kw):
    return {"id": "x-1", "task": "tool", "lang": "en", "split": "train", "messages": messages, **kw}


def test_tool_conversation_is_valid():
    msgs = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"type": "function", "function": {"name": "get_weather", "arguments": {"location": "Rome"}}}]},
        {"role": "tool", "content": "{}"},
        {"role": "assistant", "content": "Sunny."},
    ]
    assert validate_record(rec(msgs, tools=[TOOL]), "f:1")


@pytest.mark.parametrize("messages,reason", [
    ([{"role": "assistant", "content": "a"}, {"role": "user", "content": "u"}], "must start with a user message"),
    ([{"role": "user", "content": "u"}, {"role": "assistant", "content": "  "}], "empty assistant message"),
    ([{"role": "user", "content": "u"}, {"role": "user", "content": "u2"}, {"role": "assistant", "content": "a"}],
     "user message after user"),
    ([{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}, {"role": "system", "content": "s"},
      {"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}], "system message may only come first"),
    ([{"role": "user", "content": "u"}, {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "a"}],
     "tool message without a pending tool call"),
    ([{"role": "user", "content": "u"}], "at least 2 items"),
])
def test_malformed_conversations_are_rejected_with_location(messages, reason):
    with pytest.raises(RecordError, match=rf"^data.jsonl:7: .*{reason}"):
        validate_record(rec(messages), "data.jsonl:7")


def test_call_to_undeclared_tool_is_rejected():
    msgs = [{"role": "user", "content": "u"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"type": "function", "function": {"name": "book_flight", "arguments": {}}}]},
            {"role": "tool", "content": "{}"}, {"role": "assistant", "content": "done"}]
    with pytest.raises(RecordError, match="undeclared tool 'book_flight'"):
        validate_record(rec(msgs, tools=[TOOL]), "r")


def test_unknown_task_and_split_are_rejected():
    ok = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}]
    with pytest.raises(RecordError, match="task"):
        validate_record({**rec(ok), "task": "poetry"}, "r")
    with pytest.raises(RecordError, match="split"):
        validate_record({**rec(ok), "split": "dev"}, "r")
