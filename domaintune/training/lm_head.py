"""Score only the positions that carry a label in TRL's fused LM head, on the CPU too.

TRL's SFTTrainer projects hidden states through the LM head in tiles (``add_fused_lm_head``).
On Triton devices it projects only the positions whose next token is trained; elsewhere it
projects every position, because on compiled backends (Neuron) a changing number of positions
recompiles the tiles. Eager CPU training has no such cost, and the head is ~20% of a training
step of the 135M model (vocabulary 49,152 x 576), while an intent row trains on a third of its
tokens. Same loss to the last digit, 23% less time (stage-2 rows, fp32, 2-core Xeon: 65.8 -> 50.5 s
in ``benchmarks/lm_head_speed.py``). No TRL option selects this, hence the patch of one
module-level switch, scoped to a training run and restored after it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
import trl.trainer.utils as trl_utils

log = logging.getLogger(__name__)


@contextlib.contextmanager
def compact_lm_head(device: str) -> Iterator[bool]:
    """Within the block, TRL's fused LM head skips unlabelled positions on ``device`` ("cpu").
    Yields whether the switch was applied (False on CUDA, where TRL already does it, or if this
    TRL version no longer has the switch: training then runs as TRL ships it)."""
    original = getattr(trl_utils, "_use_triton", None)
    if device != "cpu" or original is None:
        if original is None:
            log.warning("TRL has no _use_triton switch: the LM head scores every position")
        yield False
        return

    def use_compact(dev: torch.device) -> bool:
        return dev.type == "cpu" or original(dev)

    trl_utils._use_triton = use_compact
    try:
        yield True
    finally:
        trl_utils._use_triton = original
