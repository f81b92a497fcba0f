"""Multi-process training through ``accelerate launch``, chosen by ``train.launch`` in params.

The DVC command stays ``python -m stages.train <phase>``; with a strategy other than
``single`` that process re-runs itself under ``accelerate launch`` with
``configs/accelerate/<strategy>.yaml``. On a machine without GPUs, ``ddp`` runs its
processes on the CPU over gloo (accelerate's ``--cpu``/``MULTI_CPU`` paths start a single
process unless MPI is installed, so the multi-GPU launcher is used for both).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

from domaintune.cli import InputError
from domaintune.params import LaunchParams

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"
GPU_ONLY = {"fsdp", "zero2", "zero3"}


def inside_launcher() -> bool:
    """True in a process that a distributed launcher started (it sets LOCAL_RANK)."""
    return "LOCAL_RANK" in os.environ


def launch_command(launch: LaunchParams, target: list[str]) -> list[str]:
    """The ``accelerate launch`` command that runs ``target`` (``-m module args`` or a script) N times."""
    gpus = torch.cuda.device_count()
    if launch.strategy in GPU_ONLY and not gpus:
        raise InputError(f"params.yaml: train.launch.strategy: {launch.strategy!r} needs GPUs and none is visible; "
                         "use 'ddp' (runs on the CPU too) or 'single'")
    n = launch.num_processes or gpus or 2
    return [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
            str(CONFIGS / f"{launch.strategy}.yaml"), "--num_processes", str(n), *target]
