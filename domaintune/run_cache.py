"""Share the run cache completely, so a teammate's `dvc repro` restores every expensive stage.

`dvc push --run-cache` sends each run's record and its cached outputs, but not the objects of
its ``cache: false`` outputs (the metrics and plots this project keeps in git). The run cache
saves those objects locally, so restoring works on the machine that ran the stage; on another
machine the record points at objects that never left, and DVC re-runs the stage (measured with
DVC 3.67: a fresh clone without dvc.lock re-ran `mix`, both trainings, the merges and the
evaluations). This pushes, and pulls, those objects too.

    python -m domaintune.run_cache push [-r REMOTE]   # dvc push --run-cache, plus uncached outputs
    python -m domaintune.run_cache pull [-r REMOTE]   # dvc pull --run-cache, plus uncached outputs
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path

import yaml

log = logging.getLogger(__name__)


def _uncached_paths(repo) -> set[str]:
    """Output paths the pipeline declares with ``cache: false`` (as run records name them)."""
    return {out.def_path for stage in repo.index.stages for out in stage.outs if not out.use_cache}


def _records(repo) -> Iterator[dict]:
    runs = Path(repo.cache.legacy.path) / "runs"
    for f in sorted(runs.rglob("*")) if runs.is_dir() else []:
        if f.is_file():
            entry = yaml.safe_load(f.read_text(encoding="utf-8"))
            if isinstance(entry, dict):
                yield entry


def uncached_objects(repo) -> set:
    """The objects of every run record's ``cache: false`` outputs."""
    from dvc_data.hashfile.hash_info import HashInfo

    paths = _uncached_paths(repo)
    objs = set()
    for entry in _records(repo):
        for out in entry.get("outs") or []:
            if out.get("path") in paths and out.get("md5"):
                objs.add(HashInfo("md5" if out.get("hash") == "md5" else "md5-dos2unix", out["md5"]))
    return objs


def _with_children(repo, objs) -> list:
    """Directory objects and the files they list (a directory's own transfer does not send its files)."""
    from dvc_data.hashfile.tree import Tree

    out = []
    for o in objs:
        if not _odb(repo, o).exists(o.value):
            continue
        out.append(o)
        if o.isdir:
            out.extend(hi for _, _, hi in Tree.load(_odb(repo, o), o))
    return out


def push(root: str | Path = ".", remote: str | None = None) -> int:
    """`dvc push --run-cache`, then the uncached outputs' objects; returns how many of those were sent."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        repo.push(remote=remote, run_cache=True)
        return len(repo.cloud.push(_with_children(repo, uncached_objects(repo)), remote=remote).transferred)


def pull(root: str | Path = ".", remote: str | None = None) -> int:
    """`dvc pull --run-cache`, then the uncached outputs' objects the records name; returns how many came."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        repo.pull(remote=remote, run_cache=True)
        objs = uncached_objects(repo)
        got = repo.cloud.pull([o for o in objs if not _odb(repo, o).exists(o.value)], remote=remote).transferred
        children = [o for o in _with_children(repo, objs) if not _odb(repo, o).exists(o.value)]
        return len(got) + len(repo.cloud.pull(children, remote=remote).transferred)


def _odb(repo, obj):
    return repo.cache.legacy if obj.name == "md5-dos2unix" else repo.cache.local


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m domaintune.run_cache", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["push", "pull"])
    ap.add_argument("-r", "--remote", help="a DVC remote name (default: the core.remote one)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    n = (push if args.command == "push" else pull)(".", args.remote)
    print(f"{args.command}: {n} object(s) of cache: false outputs {'sent' if args.command == 'push' else 'fetched'}")


if __name__ == "__main__":
    main()
