"""The agent stages' shared entry: which agent, which kind module, and the stub a disabled agent writes."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import Any

from domaintune.cli import InputError
from domaintune.params import Params, load_params

KINDS = {"embedding": "domaintune.agents.embedding", "chat": "domaintune.agents.persona"}


def agent_step(step: str, disabled: Callable[[str], None]) -> tuple[str, Any] | None:
    """Run ``<kind module>.<step>(name, agent, seed)`` for the agent named on the command line,
    or ``disabled(name)`` when it is switched off. Returns ``(name, result)``, or ``None`` when disabled."""
    ap = argparse.ArgumentParser()
    ap.add_argument("name")
    name = ap.parse_args().name
    p: Params = load_params()
    if name not in p.agents:
        raise InputError(f"params.yaml: agents.{name}: no such agent (have: {', '.join(sorted(p.agents))})")
    agent = p.agents[name]
    if not agent.enabled:
        disabled(name)
        return None
    module = importlib.import_module(KINDS[agent.kind])
    return name, getattr(module, step)(name, agent, p)
