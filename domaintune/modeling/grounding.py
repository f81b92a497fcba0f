"""Retrieval-augmented chat: the passages an embedding agent ranks highest for the user's
messages, added to the system prompt. The server does it with ``serve.grounding: true``; the
``ground`` stage scores the specialist's travel answers with it, beside the same answers without.
"""

from __future__ import annotations

from pathlib import Path

from domaintune.agents import data_dir, model_dir
from domaintune.cli import InputError
from domaintune.io import read_jsonl
from domaintune.modeling.embedder import encode, load_embedder, rank

HEADER = "Facts from the travel catalog:"


class PassageIndex:
    """Every passage of an embedding agent's corpus (``data/agents/<name>/corpus.jsonl``), encoded
    once by its trained model; exact cosine search (see :func:`rank`)."""

    def __init__(self, model, passages: list[dict]):
        if not passages:
            raise InputError("grounding: the passage corpus is empty")
        self.model, self.passages = model, passages
        self.by_id = {p["id"]: p for p in passages}
        self.vectors = encode(model, [p["text"] for p in passages])

    @classmethod
    def for_agent(cls, name: str, model=None) -> PassageIndex:
        """The agent's corpus encoded by its trained model (``model``: that model, already loaded)."""
        corpus, path = data_dir(name) / "corpus.jsonl", model_dir(name)
        for f, stage in ((corpus, "agent_data"), (path / "modules.json", "agent_train")):
            if not Path(f).is_file():
                raise InputError(f"grounding.agent {name!r}: {f} is missing; run `dvc repro {stage}@{name}`")
        return cls(model if model is not None else load_embedder(path), read_jsonl(corpus))

    def search_ids(self, queries: list[str], k: int) -> list[list[str]]:
        """The ids of the ``k`` best passages per query, best first."""
        top = rank(encode(self.model, queries), self.vectors, k)
        return [[self.passages[j]["id"] for j in row] for row in top]

    def search(self, queries: list[str], k: int) -> list[list[dict]]:
        """The ``k`` best passages per query, best first."""
        return [[self.by_id[i] for i in row] for row in self.search_ids(queries, k)]


def query_of(messages: list[dict]) -> str:
    """What to search for: the user's messages, newest first (the embedder truncates the oldest away)."""
    return "\n".join(m["content"] for m in reversed(messages) if m["role"] == "user")


def ground(messages: list[dict], passages: list[dict]) -> list[dict]:
    """``messages`` with ``passages`` appended to the system message (one is added when there is none)."""
    facts = "\n".join([HEADER, *(f"- {p['text']}" for p in passages)])
    if messages and messages[0]["role"] == "system":
        return [{**messages[0], "content": f"{messages[0]['content']}\n\n{facts}"}, *messages[1:]]
    return [{"role": "system", "content": facts}, *messages]


def ground_all(index: PassageIndex, conversations: list[list[dict]],
               k: int) -> tuple[list[list[dict]], list[list[str]]]:
    """Every conversation grounded on the top ``k`` passages for its user messages (one batched
    search), and the ids of those passages."""
    found = index.search([query_of(c) for c in conversations], k)
    return [ground(c, ps) for c, ps in zip(conversations, found, strict=True)], [[p["id"] for p in ps] for ps in found]
