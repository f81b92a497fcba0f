"""Where evaluation time goes: seconds per named step, logged as each ends and kept in evals/."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class StepTimer:
    def __init__(self, who: str):
        self.who, self.seconds = who, {}

    def __call__(self, step: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, timed under ``step``."""
        start = time.perf_counter()
        out = fn(*args)
        self.seconds[step] = round(time.perf_counter() - start, 1)
        log.info("%s: %s done in %.1f s", self.who, step, self.seconds[step])
        return out
