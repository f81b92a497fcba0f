"""Clean the built datasets, then mix them into per-phase train/val sets and one test set.

Cleaning comes first and is counted: exact and near-duplicate requests are removed (a training
row that nearly repeats a test row is removed from training, never the other way round), and
rows longer than a phase's ``max_length`` in the real tokenizer leave that phase's pool.
Test records come only from the builders' test split; val is carved from the training pools;
stage 2 mixes domain data with a share of general data against forgetting.
"""

from __future__ import annotations

import json
import math
from collections import Counter

from domaintune.data.common import rng, stable_hash
from domaintune.data.dedup import context, near_duplicates, request_text
from domaintune.data.lengths import length_summary
from domaintune.params import MixParams

DOMAIN_TASKS = ("intent", "travel", "tool")


def content_key(row: dict) -> str:
    return stable_hash(json.dumps(row["messages"], sort_keys=True, ensure_ascii=False))


def deduplicate(records: list[dict], threshold: float) -> tuple[list[dict], list[dict], list[dict], dict]:
    """Split into (test, calibration, train) without duplicates. Held-out rows (test first, then
    calibration) are kept over the later rows they match, so training never holds one of them."""
    held = {name: sorted((x for x in records if x["split"] == name), key=lambda x: x["id"])
            for name in ("test", "calibration")}
    train = [x for x in records if x["split"] == "train"]
    rows = held["test"] + held["calibration"] + train
    texts = [request_text(x) for x in rows]
    match = near_duplicates(texts, threshold, [context(x) for x in rows])
    kept: dict[str, list[dict]] = {"test": [], "calibration": [], "train": []}
    stats = Counter(exact=0, near=0, train_matching_test=0, train_matching_calibration=0)
    for i, (row, j) in enumerate(zip(rows, match, strict=True)):
        if j is None:
            kept[row["split"]].append(row)
            continue
        stats["exact" if texts[i] == texts[j] else "near"] += 1
        if row["split"] == "train" and rows[j]["split"] != "train":
            stats[f"train_matching_{rows[j]['split']}"] += 1
    return kept["test"], kept["calibration"], kept["train"], dict(stats)


def _take(pool: list[dict], n: int, start: int = 0) -> list[dict]:
    """``n`` rows from ``pool`` starting at ``start``, wrapping around (replay) if it runs out."""
    if not pool:
        return []
    return [pool[(start + i) % len(pool)] for i in range(n)]


def split_by_shares(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Whole counts that add up to ``total`` exactly (largest remainder): rounding each share on its
    own can overshoot (1310 x {0.86, 0.125, 0.015} rounds to 1311)."""
    exact = {k: total * v for k, v in sorted(shares.items())}
    counts = {k: math.floor(v) for k, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: (-(exact[k] - counts[k]), k))
    for k in by_remainder[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def mix(records: list[dict], lengths: dict[str, int], max_length: dict[str, int], cfg: MixParams,
        seed: int) -> tuple[dict[str, list[dict]], dict]:
    """Return the splits and what was removed on the way.

    ``lengths`` maps record id to token length; ``max_length`` maps phase (``instruct``,
    ``specialist``) to its training ``max_length``.
    """
    r = rng(seed, "mix")
    test, calibration, train, dups = deduplicate(records, cfg.near_dup_threshold)

    def fits(x: dict, phase: str) -> bool:
        return lengths[x["id"]] <= max_length[phase]

    general = [x for x in train if x["task"] == "general"]
    domain = [x for x in train if x["task"] in DOMAIN_TASKS]
    too_long = {"instruct": sum(not fits(x, "instruct") for x in general),
                "specialist": sum(not fits(x, "specialist") for x in general + domain)}
    domain = [x for x in domain if fits(x, "specialist")]
    r.shuffle(general)
    r.shuffle(domain)
    n_gval = max(1, round(len(general) * cfg.val_fraction))
    n_dval = max(1, round(len(domain) * cfg.val_fraction))
    general_val, general = general[:n_gval], general[n_gval:]
    domain_val, domain = domain[:n_dval], domain[n_dval:]

    instruct_train = [x for x in general if fits(x, "instruct")][: cfg.instruct_examples]
    seen_in_stage1 = {x["id"] for x in instruct_train}
    n_general = round(cfg.specialist_examples * cfg.general_share)
    n_domain_target = cfg.specialist_examples - n_general
    picked = []
    for task, n in split_by_shares(n_domain_target, cfg.domain_shares).items():
        picked += [x for x in domain if x["task"] == task][:n]
    # Stage 2 replays general rows that stage 1 did not see first, then wraps around.
    replay = [x for x in general if x["id"] not in seen_in_stage1 and fits(x, "specialist")]
    replay += [x for x in instruct_train if fits(x, "specialist")]
    specialist_train = picked + _take(replay, n_general)
    # Another pass over a task's rows is another epoch of them alone: the short intent rows repeat,
    # the long travel and tool rows need not (a whole second epoch would double stage 2's time).
    specialist_train += [x for x in specialist_train for _ in range(cfg.task_passes.get(x["task"], 1) - 1)]
    r.shuffle(specialist_train)
    # stage-2 validation keeps the training mix's share of general rows
    general_val_s = [x for x in general_val if fits(x, "specialist")]
    n_gval_s = len(general_val_s)
    if cfg.general_share < 1:
        n_gval_s = max(1, round(len(domain_val) * cfg.general_share / (1 - cfg.general_share)))
    splits = {
        "instruct_train": instruct_train,
        "instruct_val": [x for x in general_val if fits(x, "instruct")],
        "specialist_train": specialist_train,
        "specialist_val": domain_val + general_val_s[:n_gval_s],
        "test": test,
        "calibration": calibration,   # stage calibrate fits the label probabilities' temperature on it
        "guard": [x for x in train if x["task"] == "probe"],  # watched by the training guard, never trained on
    }
    return splits, {
        "duplicates_removed": dups,
        "too_long_removed": too_long,
        "domain_available": len(domain),
        "domain_shortfall": n_domain_target - len(picked),
    }


def data_metrics(splits: dict[str, list[dict]], lengths: dict[str, int], build_stats: dict[str, dict],
                 mix_stats: dict) -> dict:
    """Everything ``metrics/data.json`` reports: counts by task, language and intent, shares, removals."""

    def count(values) -> dict:
        return dict(sorted(Counter(values).items()))

    spec = splits["specialist_train"]
    n = max(1, len(spec))
    builders = {name: {k: v for k, v in s.items() if k != "heldout"} for name, s in build_stats.items()}
    dups = mix_stats["duplicates_removed"]  # train_matching_test is a subset of exact + near
    removed_dups = sum(s.get("duplicates_removed", 0) for s in build_stats.values()) + dups["exact"] + dups["near"]
    return {
        # contract keys (../DESIGN.md): totals over every output row; per-split detail below
        "duplicates_removed": removed_dups,
        "tokens": length_summary([lengths[x["id"]] for rows in splits.values() for x in rows]),
        "examples": {name: {"total": len(rows),
                            "task": count(x["task"] for x in rows),
                            "lang": count(x["lang"] for x in rows),
                            "intent": count(x["meta"]["intent"] for x in rows if x["task"] == "intent"),
                            "tokens": length_summary([lengths[x["id"]] for x in rows])}
                     for name, rows in splits.items()},
        "mix": {"specialist_unique_rows": len({x["id"] for x in spec}),  # rows less the repeats of mix.task_passes
                "specialist_general_share": sum(x["task"] == "general" for x in spec) / n,
                "specialist_domain_share": {t: sum(x["task"] == t for x in spec) / n for t in DOMAIN_TASKS}},
        "removed": {
            "builder_duplicates": sum(s.get("duplicates_removed", 0) for s in build_stats.values()),
            "builder_empty": sum(s.get("empty_removed", 0) for s in build_stats.values()),
            "beyond_max_examples": sum(s.get("beyond_max_examples", 0) for s in build_stats.values()),
            **{f"{k}_duplicates": v for k, v in mix_stats["duplicates_removed"].items()},
            **{f"too_long_{k}": v for k, v in mix_stats["too_long_removed"].items()},
        },
        "domain_shortfall": mix_stats["domain_shortfall"],
        "build": builders,
    }
