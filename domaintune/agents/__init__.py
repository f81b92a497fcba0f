"""Agents beside the travel specialist (``params.yaml: agents``), one module per kind.

Each kind module has ``build``, ``train`` and ``evaluate``, which the agent_data, agent_train and
agent_evaluate stages call with the agent's name; the data, training and metric code they
assemble lives in domaintune.data, domaintune.training and domaintune.evaluation.
"""

from __future__ import annotations

from pathlib import Path


def data_dir(name: str) -> Path:
    return Path("data/agents") / name


def model_dir(name: str) -> Path:
    return Path("models/agents") / name


def eval_path(name: str) -> Path:
    return Path("evals/agents") / f"{name}.json"


def metrics_path(name: str) -> Path:
    return Path("metrics/agents") / f"{name}.json"
