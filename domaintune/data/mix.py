"""Mix the built datasets into per-phase train/val sets and one held-out test set.

Test records come only from the builders' test split and are never trained on; val is carved
from the training pools; stage 2 mixes domain data with a share of general data against
forgetting. Everything is counted in ``metrics/data.json``.
"""

from __future__ import annotations

import json
from collections import Counter

from domaintune.data.common import rng, stable_hash
from domaintune.params import MixParams

DOMAIN_TASKS = ("intent", "travel", "tool")


def content_key(row: dict) -> str:
    return stable_hash(json.dumps(row["messages"], sort_keys=True, ensure_ascii=False))


def _take(pool: list[dict], n: int, start: int = 0) -> list[dict]:
    """``n`` rows from ``pool`` starting at ``start``, wrapping around (replay) if it runs out."""
    if not pool:
        return []
    return [pool[(start + i) % len(pool)] for i in range(n)]


def mix(records: list[dict], cfg: MixParams, seed: int) -> tuple[dict[str, list[dict]], dict]:
    r = rng(seed, "mix")
    test = [x for x in records if x["split"] == "test"]
    test_keys = {content_key(x) for x in test}
    train = [x for x in records if x["split"] == "train"]
    overlap = [x for x in train if content_key(x) in test_keys]
    train = [x for x in train if content_key(x) not in test_keys]

    general = [x for x in train if x["task"] == "general"]
    domain = [x for x in train if x["task"] in DOMAIN_TASKS]
    r.shuffle(general)
    r.shuffle(domain)
    n_gval = max(1, round(len(general) * cfg.val_fraction))
    n_dval = max(1, round(len(domain) * cfg.val_fraction))
    general_val, general = general[:n_gval], general[n_gval:]
    domain_val, domain = domain[:n_dval], domain[n_dval:]

    instruct_train = general[: cfg.instruct_examples]
    n_general = round(cfg.specialist_examples * cfg.general_share)
    n_domain_target = cfg.specialist_examples - n_general
    picked = []
    for task, share in sorted(cfg.domain_shares.items()):
        picked += [x for x in domain if x["task"] == task][: round(n_domain_target * share)]
    n_domain = len(picked)
    # Stage 2 replays general rows that stage 1 did not see first, then wraps around.
    specialist_train = picked + _take(general, n_general, start=len(instruct_train))
    r.shuffle(specialist_train)
    # stage-2 validation keeps the training mix's share of general rows
    n_gval_s = len(general_val)
    if cfg.general_share < 1:
        n_gval_s = max(1, round(len(domain_val) * cfg.general_share / (1 - cfg.general_share)))
    splits = {
        "instruct_train": instruct_train,
        "instruct_val": general_val,
        "specialist_train": specialist_train,
        "specialist_val": domain_val + general_val[:n_gval_s],
        "test": sorted(test, key=lambda x: x["id"]),
    }
    return splits, {
        "overlap_removed": len(overlap),
        "domain_available": len(domain),
        "domain_shortfall": n_domain_target - n_domain,
    }


def data_metrics(splits: dict[str, list[dict]], build_stats: dict[str, dict], mix_stats: dict) -> dict:
    def count(rows, key):
        return dict(sorted(Counter(x[key] for x in rows).items()))

    spec = splits["specialist_train"]
    n = max(1, len(spec))
    return {
        "examples": {name: {"total": len(rows), "task": count(rows, "task"), "lang": count(rows, "lang")}
                     for name, rows in splits.items()},
        "test_intents": count([x["meta"] for x in splits["test"] if x["task"] == "intent"], "intent"),
        "mix": {"specialist_general_share": sum(x["task"] == "general" for x in spec) / n,
                "specialist_domain_share": sum(x["task"] in DOMAIN_TASKS for x in spec) / n},
        "duplicates_removed": sum(s.get("duplicates_removed", 0) for s in build_stats.values()),
        "filtered": {"empty_removed": sum(s.get("empty_removed", 0) for s in build_stats.values()),
                     "beyond_max_examples": sum(s.get("beyond_max_examples", 0) for s in build_stats.values()),
                     **mix_stats},
        "build": build_stats,
    }
