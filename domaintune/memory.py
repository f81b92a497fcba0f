"""Peak memory of this process, for training and serving metrics alike."""

from __future__ import annotations

import resource

import torch


def peak_mem_mb() -> float:
    """Peak GPU memory allocated on CUDA; else the process's peak resident set size."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
