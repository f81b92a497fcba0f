"""The embedding kind: (question, passage) pairs from the travel catalog, contrastive training of
the base embedder, recall and MRR before and after on held-out destinations."""

from __future__ import annotations

import json

from domaintune.agents import data_dir, model_dir
from domaintune.data.retrieval import build_retrieval
from domaintune.evaluation.retrieval import query_latency, score_retrieval
from domaintune.io import read_jsonl, write_json, write_jsonl
from domaintune.modeling.embedder import load_embedder
from domaintune.modeling.grounding import PassageIndex
from domaintune.params import EmbeddingAgent, Params
from domaintune.training.embedder import train_embedder


def build(name: str, agent: EmbeddingAgent, p: Params) -> dict:
    rows, stats = build_retrieval(agent.data, p.seed)
    out = data_dir(name)
    for split, items in rows.items():
        write_jsonl(out / f"{split}.jsonl", items)
    write_json(out / "stats.json", stats)
    return stats


def train(name: str, agent: EmbeddingAgent, p: Params) -> dict:
    return train_embedder(agent.base, read_jsonl(data_dir(name) / "train.jsonl"), agent.train, p.seed,
                          model_dir(name))


def evaluate(name: str, agent: EmbeddingAgent, p: Params) -> tuple[dict, dict]:
    """(per-query details for evals/, headline metrics for metrics/)."""
    corpus = read_jsonl(data_dir(name) / "corpus.jsonl")
    test = read_jsonl(data_dir(name) / "test.jsonl")
    e, m = agent.eval, {}
    details: dict = {"queries": [t["query"] for t in test]}
    for which, path in (("base", agent.base), ("trained", model_dir(name))):
        index = PassageIndex(load_embedder(path), corpus)  # what serving searches (serve.grounding)
        scores = score_retrieval(index, test, e.k, e.mrr_at)
        details[which] = scores.pop("_first_hit")
        m[which] = scores
        m[which]["latency"] = query_latency(index, [t["query"] for t in test][: e.latency_queries])
    for key in [f"recall@{x}" for x in e.k] + [f"mrr@{e.mrr_at}"]:
        m[f"gain_{key}"] = m["trained"][key] - m["base"][key]
    m["training"] = json.loads((model_dir(name) / "training.json").read_text(encoding="utf-8"))
    m["data"] = {"train_pairs": sum(1 for _ in read_jsonl(data_dir(name) / "train.jsonl")),
                 "test_queries": len(test), "index_passages": len(corpus)}
    return details, m
