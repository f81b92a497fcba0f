"""General-capability probes with exact answers: correct when an expected answer appears as a whole word."""

from __future__ import annotations

import re
from collections import defaultdict


def probe_correct(output: str, answers: list[str]) -> bool:
    text = output.lower()
    return any(re.search(rf"(?<![\w.]){re.escape(a.lower())}(?![\w])", text) for a in answers)


def score_probes(outputs: list[str], records: list[dict]) -> dict:
    by_kind = defaultdict(list)
    hits = []
    for out, r in zip(outputs, records, strict=True):
        ok = probe_correct(out, r["meta"]["answers"])
        hits.append(ok)
        by_kind[r["meta"]["kind"]].append(ok)
    return {
        "score": sum(hits) / max(1, len(hits)),
        "per_kind": {k: sum(v) / len(v) for k, v in sorted(by_kind.items())},
        "examples": len(hits),
    }
