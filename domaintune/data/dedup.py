"""Exact and near-duplicate detection over what a conversation asks (its user turns).

Near-duplicates ("Hello!" / "hello", one word changed in a long instruction) are found with
MinHash LSH (datasketch) over character 5-grams and confirmed with the exact Jaccard
similarity, so the result does not depend on hash collisions. Comparing the user turns, not
the whole conversation, keeps a shared system prompt or a shared answer format from making
every intent example look alike.
"""

from __future__ import annotations

import re

from datasketch import MinHash, MinHashLSH

SHINGLE = 5
NUM_PERM = 128
_SPACE = re.compile(r"\s+")
# Sentence punctuation only: "+", "-" and digits change what a question asks.
_PUNCT = re.compile("[.,!?;:'\"¿¡…()\\[\\]«»“”‘’؟،]")


def request_text(row: dict) -> str:
    """The user side of a conversation, lowercased, without punctuation: what it asks."""
    text = "\n".join(m["content"] for m in row["messages"] if m["role"] == "user")
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def shingles(text: str) -> set[bytes]:
    data = text.encode("utf-8")
    if len(data) <= SHINGLE:
        return {data}
    return {data[i : i + SHINGLE] for i in range(len(data) - SHINGLE + 1)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def context(row: dict) -> str:
    """The system prompt: rows are only compared with rows that share it (a tool-use request
    asked on another date is a different example, not a duplicate)."""
    return row["messages"][0]["content"] if row["messages"][0]["role"] == "system" else ""


def near_duplicates(texts: list[str], threshold: float, groups: list[str] | None = None) -> list[int | None]:
    """For each text, the index of an earlier kept text of the same group it nearly duplicates, else ``None``.

    Earlier texts win, so callers order what must be kept (the test split) first.
    """
    groups = groups or [""] * len(texts)
    sets = [shingles(t) for t in texts]
    hashes = MinHash.bulk(sets, num_perm=NUM_PERM, seed=1)
    # LSH misses some pairs just above its threshold; ask it for looser candidates and let the
    # exact check (same group, Jaccard >= threshold) decide, so recall does not depend on luck.
    lsh = MinHashLSH(threshold=max(0.3, threshold - 0.2), num_perm=NUM_PERM)
    exact: dict[tuple[str, str], int] = {}
    out: list[int | None] = []
    for i, (text, group, s, h) in enumerate(zip(texts, groups, sets, hashes, strict=True)):
        if (group, text) in exact:
            out.append(exact[group, text])
            continue
        match = next((j for j in sorted(int(k) for k in lsh.query(h))
                      if groups[j] == group and jaccard(s, sets[j]) >= threshold), None)
        out.append(match)
        if match is None:
            exact[group, text] = i
            lsh.insert(str(i), h)
    return out
