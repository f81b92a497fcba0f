"""The classification fallback chain: try each tier in order, answer with the first that is
available, on time, valid and confident enough; say which tier answered and why others did not.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from domaintune.evaluation.intent import parse_intent
from domaintune.records import INTENTS

log = logging.getLogger(__name__)


class TierUnavailable(RuntimeError):
    """The tier cannot answer at all (no model configured, failed to load)."""


class TierTimeout(TimeoutError):
    """The tier did not get to the query within its time budget (e.g. the model is busy)."""


@dataclass
class Tier:
    name: str
    classify: Callable[[str, float], dict | None]  # (text, timeout_s) -> intent JSON, or None: no answer
    threshold: float = 0.0
    timeout_s: float = 2.0
    available: bool = True
    why_unavailable: str = ""


@dataclass
class Routed:
    result: dict
    tier: str
    skipped: list[dict] = field(default_factory=list)  # [{"tier", "reason", "detail"}] in the order tried

    @property
    def invalid(self) -> list[str]:
        """Tiers whose output did not validate."""
        return [s["tier"] for s in self.skipped if s["reason"] == "invalid_output"]

    def as_json(self) -> dict:
        return {**self.result, "tier": self.tier, "skipped": self.skipped}


class FallbackRouter:
    """``unsure``: when every tier answered below its threshold, the answer of the tier of that name
    (marked ``low_confidence``) instead of ``default_intent``; ``default_intent`` stays the answer
    when no tier answered at all (unavailable, timed out, invalid, no match)."""

    def __init__(self, tiers: list[Tier], default_intent: str = "general", unsure: str | None = None):
        if default_intent not in INTENTS:
            raise ValueError(f"default_intent {default_intent!r} is not one of {list(INTENTS)}")
        if unsure is not None and unsure not in {t.name for t in tiers}:
            raise ValueError(f"unsure {unsure!r} is not a tier of the chain ({', '.join(t.name for t in tiers)})")
        self.tiers = tiers
        self.default_intent = default_intent
        self.unsure = unsure

    def route(self, text: str) -> Routed:
        skipped: list[dict] = []
        unsure_answer = None
        for tier in self.tiers:
            answer = self._try(tier, text)
            if isinstance(answer, dict):
                return Routed(answer, tier.name, skipped)
            reason, detail, *low = answer
            skipped.append({"tier": tier.name, "reason": reason, "detail": detail})
            if low and tier.name == self.unsure:
                unsure_answer = low[0]
        if unsure_answer is not None:
            return Routed({**unsure_answer, "low_confidence": True}, self.unsure, skipped)
        fallback = {"primary_intent": self.default_intent, "confidence": 0.0, "all_intents": [self.default_intent]}
        return Routed(fallback, "default", skipped)

    def _try(self, tier: Tier, text: str) -> dict | tuple:
        """The tier's answer, or why it was skipped: (reason code, detail), and for a confidence
        below the threshold the answer too."""
        if not tier.available:
            return "unavailable", tier.why_unavailable
        t = time.perf_counter()
        try:
            out = tier.classify(text, tier.timeout_s)
        except TierTimeout as e:
            return "timeout", str(e)
        except TierUnavailable as e:
            return "unavailable", str(e)
        except Exception as e:  # a broken tier must not take the answer down with it
            log.exception("tier %s failed", tier.name)
            return "error", f"{type(e).__name__}: {e}"
        took = time.perf_counter() - t
        if out is None:
            return "no_answer", "nothing matched"
        if took > tier.timeout_s:
            return "timeout", f"answered after {took:.2f} s > {tier.timeout_s} s"
        if (parse_intent(json.dumps(out), list(INTENTS)) is None
                or any(i not in INTENTS for i in out["all_intents"])):
            return "invalid_output", json.dumps(out)[:200]
        if out["confidence"] < tier.threshold:
            return "low_confidence", f"{out['confidence']:.3f} < {tier.threshold}", out
        return out
