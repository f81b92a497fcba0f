"""Sharing the run cache through a real directory remote, with the real DVC: a stage with
``cache: false`` metrics and plots is restored in a fresh clone, not re-run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STAGE = """stages:
  a:
    cmd: python gen.py
    deps: [gen.py]
    outs: [out.txt]
    metrics:
      - m.json:
          cache: false
    plots:
      - curves:
          cache: false
"""
GEN = """import json, os, random
open("out.txt", "w").write(str(random.random()))
json.dump({"x": random.random()}, open("m.json", "w"))
os.makedirs("curves", exist_ok=True)
open("curves/loss.tsv", "w").write("step\\tloss\\n1\\t%f\\n" % random.random())
"""


def sh(*cmd: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout + p.stderr


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    sh("git", "init", "-q", cwd=repo)
    sh("git", "config", "user.email", "t@example.com", cwd=repo)
    sh("git", "config", "user.name", "t", cwd=repo)
    sh(sys.executable, "-m", "dvc", "init", "-q", cwd=repo)
    (repo / "dvc.yaml").write_text(STAGE)
    (repo / "gen.py").write_text(GEN)
    sh(sys.executable, "-m", "dvc", "repro", "-q", cwd=repo)
    sh(sys.executable, "-m", "dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote"), cwd=repo)
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-qm", "run", cwd=repo)
    return repo


def _clone(repo: Path, to: Path) -> Path:
    sh("git", "clone", "-q", str(repo), str(to), cwd=repo.parent)
    return to


def test_plain_run_cache_push_leaves_uncached_outputs_behind_and_the_wrapper_sends_them(tmp_path):
    repo = _repo(tmp_path)
    # plain DVC: the record arrives, the metrics object does not, the clone re-runs the stage
    sh(sys.executable, "-m", "dvc", "push", "--run-cache", cwd=repo)
    plain = _clone(repo, tmp_path / "plain")
    sh(sys.executable, "-m", "dvc", "pull", "--run-cache", cwd=plain)
    (plain / "dvc.lock").unlink()
    assert "Running stage 'a'" in sh(sys.executable, "-m", "dvc", "repro", cwd=plain)

    out = sh(sys.executable, "-m", "domaintune.run_cache", "push", cwd=repo)
    assert "3 object(s)" in out  # m.json, the curves directory and its one file
    shared = _clone(repo, tmp_path / "shared")
    sh(sys.executable, "-m", "domaintune.run_cache", "pull", cwd=shared)
    (shared / "dvc.lock").unlink()
    out = sh(sys.executable, "-m", "dvc", "repro", cwd=shared)
    assert "Stage 'a' is cached - skipping run" in out and "Running stage" not in out
    for f in ("out.txt", "m.json", "curves/loss.tsv"):
        assert (shared / f).read_bytes() == (repo / f).read_bytes(), f
