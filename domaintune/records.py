"""The chat record every data stage writes and every later stage reads (one JSON object per line).

``split`` is decided by the builder, which is the only place that knows what must stay unseen
(held-out templates, entities, probes); ``mix`` then never moves a test record into training.
``calibration`` rows (intents on templates of their own) are held out like test rows; only the
``calibrate`` stage reads them.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

TASKS = ("general", "travel", "intent", "tool", "probe")
# The travel intent taxonomy: data builders, validation, evaluation and serving share it.
INTENTS = ("greeting", "restaurant", "attraction", "transportation", "weather", "events", "neighborhood",
           "shopping", "hidden_gems", "airport_transport", "route_planning", "museum_route_planning",
           "gps_route_planning", "nearby_locations", "general")


class FunctionCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    arguments: dict[str, Any]


class ToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str
    tool_calls: list[ToolCall] | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _content(self) -> Message:
        if self.tool_calls and self.role != "assistant":
            raise ValueError(f"only assistant messages carry tool_calls, not {self.role}")
        if not self.content.strip() and not self.tool_calls:
            raise ValueError(f"empty {self.role} message")
        return self


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1)
    task: Literal[TASKS]  # type: ignore[valid-type]
    lang: str = Field(min_length=2, max_length=8)
    split: Literal["train", "test", "calibration"]
    messages: list[Message] = Field(min_length=2)
    tools: list[dict[str, Any]] | None = None
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _conversation(self) -> Record:
        roles = [m.role for m in self.messages]
        if "system" in roles[1:]:
            raise ValueError("a system message may only come first")
        turns = roles[1:] if roles[0] == "system" else roles
        if not turns or turns[0] != "user":
            raise ValueError("the conversation must start with a user message (after an optional system one)")
        if turns[-1] != "assistant":
            raise ValueError("the conversation must end with an assistant message")
        declared = {t.get("function", {}).get("name") for t in self.tools or []}
        prev = None
        pending_calls = 0
        for i, m in enumerate(self.messages[len(roles) - len(turns):]):
            if m.role == "user" and prev not in (None, "assistant"):
                raise ValueError(f"message {i}: user message after {prev}")
            if m.role == "assistant" and prev not in ("user", "tool"):
                raise ValueError(f"message {i}: assistant message after {prev}")
            if m.role == "tool":
                if pending_calls == 0:
                    raise ValueError(f"message {i}: tool message without a pending tool call")
                pending_calls -= 1
            for call in m.tool_calls or []:
                if call.function.name not in declared:
                    raise ValueError(f"message {i}: calls undeclared tool {call.function.name!r}")
            if m.tool_calls:
                pending_calls = len(m.tool_calls)
            prev = m.role
        if self.task == "intent":
            _check_intent_answer(self.messages[-1].content)
        return self


def _check_intent_answer(content: str) -> None:
    """An intent target must be the JSON the classifier is trained to emit, with known labels."""
    try:
        obj = json.loads(content)
    except json.JSONDecodeError:
        raise ValueError("intent answer is not JSON") from None
    if not isinstance(obj, dict) or set(obj) != {"primary_intent", "confidence", "all_intents"}:
        raise ValueError("intent answer needs exactly primary_intent, confidence, all_intents")
    labels = obj["all_intents"]
    if not isinstance(labels, list) or not labels or obj["primary_intent"] != labels[0]:
        raise ValueError("all_intents must be a non-empty list starting with primary_intent")
    unknown = [x for x in labels if x not in INTENTS]
    if unknown:
        raise ValueError(f"unknown intent labels {unknown}")
    if not isinstance(obj["confidence"], int | float) or not 0 <= obj["confidence"] <= 1:
        raise ValueError("confidence must be a number in [0, 1]")


class RecordError(ValueError):
    """A record that breaks the schema; the message names where it came from."""


def validate_record(row: dict, where: str) -> dict:
    """Validate one record dict; raise :class:`RecordError` naming ``where`` (file:line or id)."""
    try:
        Record.model_validate(row)
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "record"
        raise RecordError(f"{where}: {loc}: {first['msg'].removeprefix('Value error, ')}") from None
    return row


def to_chat(messages: list[dict]) -> list[dict]:
    """Messages as chat templates expect them: drop ``None`` fields the schema allows."""
    return [{k: v for k, v in m.items() if v is not None} for m in messages]
