"""Every package module a stage can run is one of its DVC deps (the file, or a folder above it), so
an edit to the code re-runs the stages that use it. The imports are read from the source (at any
depth, so imports inside functions count), following them through the package; the agent stages
also run every kind module, which they import by name."""

import ast
from pathlib import Path

import pytest
from dvc.repo import Repo

from stages.agent_steps import KINDS

# Shared plumbing every stage loads; its changes are covered by unit tests, not by re-running the DAG.
EXEMPT = {"domaintune/params.py", "domaintune/cli.py", "domaintune/io.py"}
PACKAGES = ("domaintune", "stages")


def _file(root: Path, module: str) -> str | None:
    base = root / module.replace(".", "/")
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return str(path.relative_to(root))
    return None


def _closure(root: Path, modules: list[str]) -> set[str]:
    seen: set[str] = set()
    todo = [f for m in modules if (f := _file(root, m))]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path in EXEMPT:
            continue
        for node in ast.walk(ast.parse((root / path).read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import name`: name may be a submodule
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                if name.split(".")[0] in PACKAGES and (f := _file(root, name)):
                    todo.append(f)
    # a package __init__ with no code of its own is only a marker
    return {f for f in seen if not (f.endswith("__init__.py") and "def " not in (root / f).read_text())} - EXEMPT


def _stages(root: Path) -> dict:
    return {s.addressing: s for s in Repo(str(root)).index.stages if s.cmd and s.cmd.startswith("python -m stages.")}


def _uncovered(root: Path, stage) -> list[str]:
    module = stage.cmd.split()[2]
    modules = [module] + (list(KINDS.values()) if module.startswith("stages.agent_") else [])
    deps = [str(d.def_path).rstrip("/") for d in stage.deps]
    return sorted(f for f in _closure(root, modules) if not any(f == d or f.startswith(d + "/") for d in deps))


def test_every_stage_depends_on_the_code_it_runs(root):
    missing = {name: files for name, stage in _stages(root).items() if (files := _uncovered(root, stage))}
    assert not missing, f"dvc.yaml deps lack code these stages run: {missing}"


@pytest.mark.parametrize("stage", ["evaluate@specialist", "train@specialist"])
def test_agent_code_does_not_rerun_the_main_stages(root, stage):
    """Editing an agent's evaluation or training code leaves the travel specialist's stages alone."""
    deps = [str(d.def_path).rstrip("/") for d in _stages(root)[stage].deps]
    for agent_code in ("domaintune/evaluation/style.py", "domaintune/evaluation/retrieval.py",
                       "domaintune/training/embedder.py"):
        assert not any(agent_code == d or agent_code.startswith(d + "/") for d in deps), (stage, agent_code)
