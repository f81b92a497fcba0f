"""The slice of the OpenAI chat-completions API this server speaks: request validation, conversion
to chat-template messages, and response bodies (whole and streamed chunks).

Clients send fields we do not use (``frequency_penalty``, ``user``...); they are accepted and
ignored, as other OpenAI-compatible servers do. Differences: ``temperature`` defaults to 0
(greedy: the same question gets the same answer), and ``n`` must be 1.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domaintune.evaluation.tools import CALL_OPEN, parse_tool_calls


class APIError(Exception):
    """An error answered as OpenAI does: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 type_: str = "invalid_request_error", headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type_
        self.headers = headers

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionCall(_Loose):
    name: str
    arguments: str | dict = "{}"


class ToolCall(_Loose):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class TextPart(_Loose):
    type: Literal["text"]
    text: str


class Message(_Loose):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class FunctionDef(_Loose):
    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict = Field(default_factory=dict)


class ToolDef(_Loose):
    type: Literal["function"]
    function: FunctionDef


class StreamOptions(_Loose):
    include_usage: bool = False


class ChatRequest(_Loose):
    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, gt=0)
    max_completion_tokens: int | None = Field(None, gt=0)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1, le=1, description="one choice per request")
    seed: int | None = None
    tools: list[ToolDef] | None = None
    tool_choice: str | dict | None = None


class EmbeddingRequest(_Loose):
    model: str
    input: str | list[str] = Field(description="a text or a list of texts (token-id input is not supported)")
    encoding_format: Literal["float"] = "float"


class ClassifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str


def _text(m: Message) -> str:
    if isinstance(m.content, list):
        return "".join(p.text for p in m.content)
    return m.content or ""


def to_chat(req: ChatRequest, max_chars: int, max_messages: int) -> tuple[list[dict], list[dict] | None]:
    """Template messages and tool schemas; :class:`APIError` (400) naming the bad field otherwise."""
    if len(req.messages) > max_messages:
        raise APIError(400, f"{len(req.messages)} messages; at most {max_messages}", "messages")
    out: list[dict] = []
    for i, m in enumerate(req.messages):
        text = _text(m)
        where = f"messages[{i}].content"
        if len(text) > max_chars:
            raise APIError(400, f"{where}: {len(text)} characters; at most {max_chars}", where, "message_too_long")
        if m.role in ("system", "developer", "user", "tool") and not text.strip():
            raise APIError(400, f"{where}: empty {m.role} message", where, "empty_message")
        msg: dict = {"role": "system" if m.role == "developer" else m.role, "content": text}
        if m.role == "assistant":
            if not text.strip() and not m.tool_calls:
                raise APIError(400, f"{where}: an assistant message needs content or tool_calls", where)
            if m.tool_calls:
                msg["tool_calls"] = [_call(c, f"messages[{i}].tool_calls[{j}]") for j, c in enumerate(m.tool_calls)]
        out.append(msg)
    if out[-1]["role"] == "assistant":
        raise APIError(400, "the last message is the assistant's; there is nothing to answer", "messages")
    use_tools = req.tools and req.tool_choice != "none"
    tools = [t.model_dump() for t in req.tools] if use_tools else None
    return out, tools


def _call(c: ToolCall, where: str) -> dict:
    args = c.function.arguments
    if isinstance(args, str):
        try:
            args = json.loads(args or "{}")
        except json.JSONDecodeError:
            raise APIError(400, f"{where}.function.arguments: not valid JSON", f"{where}.function.arguments") from None
    if not isinstance(args, dict):
        raise APIError(400, f"{where}.function.arguments: must be a JSON object", f"{where}.function.arguments")
    return {"type": "function", "function": {"name": c.function.name, "arguments": args}}


def split_tool_calls(text: str, tools: list[dict] | None) -> tuple[str | None, list[dict] | None, bool]:
    """(content, OpenAI tool_calls, invalid): calls the model wrote in ``<tool_call>`` tags, when the
    request declared tools. A call that does not parse or names an undeclared tool makes the whole
    answer plain text and ``invalid`` True (counted as an invalid model output)."""
    if not tools or CALL_OPEN not in text:
        return text, None, False
    calls = parse_tool_calls(text)
    declared = {t["function"]["name"] for t in tools}
    if not calls or any(c is None or c["name"] not in declared for c in calls):
        return text, None, True
    content = text[: text.index(CALL_OPEN)].strip() or None
    return content, [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                      "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)}}
                     for c in calls], False


def completion_body(model: str, content: str | None, tool_calls: list[dict] | None, finish: str,
                    prompt_tokens: int, completion_tokens: int) -> dict:
    message: dict = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage(prompt_tokens, completion_tokens),
    }


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


class ChunkWriter:
    """Server-sent events for one streamed completion, in OpenAI's chunk format."""

    def __init__(self, model: str):
        self.id, self.created, self.model = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), model

    def chunk(self, delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
        body: dict = {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                      "choices": [{"index": 0, "delta": delta, "finish_reason": finish}] if usage is None else []}
        if usage is not None:
            body["usage"] = usage
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    @staticmethod
    def done() -> str:
        return "data: [DONE]\n\n"
