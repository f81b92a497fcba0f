"""The agents a server loads beside the travel specialist (``serve.agents``): chat agents as their
own :class:`ModelEngine`, embedding agents as sentence-transformers models behind /v1/embeddings."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from domaintune.agents import model_dir
from domaintune.cli import InputError
from domaintune.modeling.grounding import PassageIndex, ground_all
from domaintune.params import Agent, GroundingParams, ServeParams
from domaintune.serving.engine import ModelEngine, ModelNotFound


@dataclass
class Embedder:
    name: str
    model: object  # a SentenceTransformer
    dim: int
    lock: threading.Lock = field(default_factory=threading.Lock)  # one encode at a time on 2 cores

    def embed(self, texts: list[str]) -> tuple[list[list[float]], int]:
        """Normalized embeddings and the number of tokens they read."""
        with self.lock:
            vecs = self.model.encode(texts, normalize_embeddings=True, convert_to_numpy=True,
                                     show_progress_bar=False)
            tokens = sum(len(ids) for ids in self.model.tokenizer(texts)["input_ids"])
        return [v.tolist() for v in vecs], tokens


def load_agents(cfg: ServeParams, agents: dict[str, Agent]) -> tuple[dict[str, ModelEngine], dict[str, Embedder]]:
    """``serve.agents`` loaded: (chat engines by name, embedders by name). An unknown, disabled or
    untrained agent stops the server with its name, never a server that lacks what was asked."""
    chats, embedders = {}, {}
    for name in cfg.agents:
        if name not in agents:
            raise ModelNotFound(f"serve.agents: {name!r} is not in params.yaml agents ({', '.join(sorted(agents))})")
        if not agents[name].enabled:
            raise ModelNotFound(f"serve.agents: {name!r} is disabled (agents.{name}.enabled: false)")
        path = model_dir(name)
        if agents[name].kind == "embedding":
            from domaintune.modeling.embedder import load_embedder

            if not (path / "modules.json").is_file():
                raise ModelNotFound(f"{path}: agent {name!r} not trained; run `dvc repro agent_train@{name}`")
            model = load_embedder(path)
            embedders[name] = Embedder(name, model, model.get_embedding_dimension())
        else:
            chats[name] = ModelEngine(path, cfg.inference, max_chats=cfg.max_chats, batch_max=cfg.batch_max)
    return chats, embedders


@dataclass
class Grounder:
    """``serve.grounding``: a chat's messages with the grounding agent's top passages in the system prompt."""
    index: PassageIndex
    top_k: int
    lock: threading.Lock = field(default_factory=threading.Lock)  # the embedder's, when it is served too

    def __call__(self, messages: list[dict]) -> tuple[list[dict], list[str]]:
        """(the grounded messages, the ids of the passages added)."""
        with self.lock:
            (grounded,), (ids,) = ground_all(self.index, [messages], self.top_k)
        return grounded, ids


def load_grounder(cfg: ServeParams, grounding: GroundingParams, agents: dict[str, Agent],
                  embedders: dict[str, Embedder] | None = None) -> Grounder | None:
    """The grounding agent's passage index when ``serve.grounding`` is on, on the model ``embedders``
    already loaded for it if any (one copy, one lock); a disabled or untrained agent stops the server
    with its name."""
    if not cfg.grounding:
        return None
    name = grounding.agent
    served = (embedders or {}).get(name)
    if getattr(agents.get(name), "kind", None) != "embedding":
        raise ModelNotFound(f"serve.grounding: grounding.agent {name!r} is not an embedding agent in params.yaml")
    if not agents[name].enabled:
        raise ModelNotFound(f"serve.grounding: grounding.agent {name!r} is disabled (agents.{name}.enabled: false)")
    try:
        if served is not None:
            return Grounder(PassageIndex.for_agent(name, served.model), grounding.top_k, served.lock)
        return Grounder(PassageIndex.for_agent(name), grounding.top_k)
    except InputError as e:
        raise ModelNotFound(f"serve.grounding: {e}") from None
