"""Retrieval quality and speed of an embedder: recall@k and MRR@n on held-out questions, searched
against the whole catalog index (every destination's passages), and the time one query takes."""

from __future__ import annotations

import statistics
import time

from domaintune.modeling.grounding import PassageIndex


def score_retrieval(index: PassageIndex, test: list[dict], k: list[int], mrr_at: int) -> dict:
    """``test`` rows: ``{"query", "facet", "relevant": [ids]}``, searched against the whole ``index``."""
    top = index.search_ids([t["query"] for t in test], max([*k, mrr_at]))
    first_hit = []  # rank (0-based) of the first relevant passage, or None
    for row, ranked in zip(test, top, strict=True):
        first_hit.append(next((i for i, pid in enumerate(ranked) if pid in row["relevant"]), None))
    n = len(test)
    out = {f"recall@{x}": sum(h is not None and h < x for h in first_hit) / n for x in k}
    out[f"mrr@{mrr_at}"] = sum(1 / (h + 1) for h in first_hit if h is not None and h < mrr_at) / n
    facets = sorted({t["facet"] for t in test})
    out["recall@5_by_facet"] = {f: sum(h is not None and h < 5 for h, t in zip(first_hit, test, strict=True)
                                       if t["facet"] == f) / sum(t["facet"] == f for t in test) for f in facets}
    out["queries"] = n
    out["index_passages"] = len(index.passages)
    out["_first_hit"] = first_hit
    return out


def query_latency(index: PassageIndex, queries: list[str], n: int = 10) -> dict:
    """One query at a time (what a server answering one user does): encode it, search the index."""
    times = []
    for q in queries:
        start = time.perf_counter()
        index.search([q], n)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))],
            "queries": len(times), "index_passages": len(index.passages)}
