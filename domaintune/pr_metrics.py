"""What a pull request did to the metrics: the smoke-sized pipeline on the target branch and on the
PR head, each result committed on a throwaway commit, then ``dvc metrics diff --md`` between them.

Both runs use the same smoke overrides (configs/smoke.yaml) and the repository's DVC cache, so the
head's run restores every stage the PR did not touch from the base's run cache (or a teammate's,
after ``python -m domaintune.run_cache pull``) instead of recomputing it.

    python -m domaintune.pr_metrics --base origin/main --out pr-metrics.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

SMOKE = Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml"
GIT_ID = ["-c", "user.name=pr-metrics", "-c", "user.email=pr-metrics@localhost"]


def apply_overrides(params_path: str | Path, overrides: dict[str, object]) -> None:
    """Set dotted keys (``train.instruct.max_steps``) in a params file; an unknown key is an error."""
    params = yaml.safe_load(Path(params_path).read_text())
    for dotted, value in overrides.items():
        node = params
        *parents, leaf = dotted.split(".")
        for p in parents:
            if not isinstance(node, dict) or p not in node:
                raise KeyError(f"{params_path}: no key {dotted!r} to override")
            node = node[p]
        if leaf not in node:
            raise KeyError(f"{params_path}: no key {dotted!r} to override")
        node[leaf] = value
    Path(params_path).write_text(yaml.safe_dump(params, sort_keys=False))


def _run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(cwd)})
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {cwd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout + proc.stderr


def commit_all(repo: Path, message: str) -> str:
    """Commit everything in the work tree (results included); return the commit id."""
    _run(["git", "add", "-A"], repo)
    _run(["git", *GIT_ID, "commit", "-q", "--allow-empty", "-m", message], repo)
    return _run(["git", "rev-parse", "HEAD"], repo).strip()


def metrics_diff_md(repo: Path, a_rev: str, b_rev: str) -> str:
    """The markdown table of every metric that differs between two commits (``--all`` would add the rest)."""
    return _run([sys.executable, "-m", "dvc", "metrics", "diff", "--md", a_rev, b_rev], repo)


def smoke_run(worktree: Path, cache_dir: Path, overrides: dict[str, object], label: str) -> str:
    """Smoke-sized ``dvc repro`` in ``worktree`` with a shared cache; the results' commit id."""
    apply_overrides(worktree / "params.yaml", overrides)
    _run([sys.executable, "-m", "dvc", "cache", "dir", "--local", str(cache_dir)], worktree)
    _run([sys.executable, "-m", "dvc", "repro"], worktree)
    return commit_all(worktree, f"pr-metrics: smoke results of {label}")


def main() -> None:
    ap = argparse.ArgumentParser(description="Metrics diff of a pull request, from smoke-sized runs.")
    ap.add_argument("--base", required=True, help="the target branch, e.g. origin/main")
    ap.add_argument("--head", default="HEAD")
    ap.add_argument("--out", default="pr-metrics.md")
    args = ap.parse_args()
    repo = Path(_run(["git", "rev-parse", "--show-toplevel"], Path.cwd()).strip())
    overrides = yaml.safe_load(SMOKE.read_text())
    # The repository's own cache: a pulled run cache is used, and `run_cache push` shares this run's.
    cache = Path(_run([sys.executable, "-m", "dvc", "cache", "dir"], repo).strip())
    with tempfile.TemporaryDirectory(prefix="pr-metrics-") as tmp:
        shas = {}
        for name, rev in (("base", args.base), ("head", args.head)):
            wt = Path(tmp) / name
            _run(["git", "worktree", "add", "--detach", str(wt), rev], repo)
            try:
                shas[name] = smoke_run(wt, cache, overrides, f"{name} ({rev})")
            finally:
                # the commits stay reachable by id from the main repository (worktrees share .git)
                _run(["git", "worktree", "remove", "--force", str(wt)], repo)
        table = metrics_diff_md(repo, shas["base"], shas["head"])
        # metrics and plots are in git (cache: false), so both diffs read the two commits alone
        _run([sys.executable, "-m", "dvc", "plots", "diff", shas["base"], shas["head"], "-o", "pr-plots"], repo)
    body = (f"### Metrics: `{args.head}` against `{args.base}` (smoke-sized params, configs/smoke.yaml)\n\n"
            + (table.strip() or "No metric changed.")
            + "\n\nPlots diff: the `pr-plots` artifact of this run (`dvc plots diff`).\n")
    Path(args.out).write_text(body)
    print(body)


if __name__ == "__main__":
    main()
