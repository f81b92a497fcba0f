"""Benchmark: how long a server with ``serve.compile: true`` takes to be ready, cold and restarted.

Starts ``python -m domaintune.serving serve --set compile=true`` twice with the same compile
cache directory (a fresh one unless ``--cache`` is given): the first start compiles from
nothing, the second reuses what the first kept. For each it prints the seconds to the first
``/health`` answer (the server listens at once and classifies eagerly meanwhile) and to
``status: ok`` (compiled and warmed), plus p50 of classification one at a time afterwards,
and checks that both starts give the same answers.

    python benchmarks/compile_restart.py                       # models/specialist, fp32
    python benchmarks/compile_restart.py --set inference=bf16
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["selam naber", "Where can I eat good sushi in Rome?", "Wie wird das Wetter morgen in Berlin?",
           "Comment aller à l'aéroport ?", "Где ближайшая аптека?", "أين أفضل مكان للتسوق في دبي؟"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model: str, cache: Path, settings: list[str], log: Path) -> dict:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    sets = [a for s in ["compile=true", f"compile_cache={cache}", *settings] for a in ("--set", s)]
    t = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "domaintune.serving", "--model", model, *sets, "serve",
                                 "--port", str(port)], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env=os.environ.copy())
    try:
        listening = ready = None
        while time.perf_counter() - t < 1800:
            if proc.poll() is not None:
                sys.exit(f"server exited with {proc.returncode}; see {log}")
            try:
                health = httpx.get(url + "/health", timeout=2).json()
                listening = listening or time.perf_counter() - t
                if health["status"] == "ok":
                    ready = time.perf_counter() - t
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        if ready is None:
            sys.exit("not ready within 30 min")
        answers, ms = [], []
        for q in QUERIES * 3:
            r = httpx.post(url + "/v1/classify", json={"text": q}, timeout=30).json()
            answers.append(r["primary_intent"])
            ms.append(r["latency_ms"])
        return {"listening_s": listening, "ready_s": ready, "compile_s": health.get("compile_s"),
                "compile_error": health.get("compile_error"), "classify_p50_ms": statistics.median(ms),
                "answers": answers}
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/specialist")
    ap.add_argument("--cache", help="compile cache directory to use (default: a fresh temporary one)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more serve.* overrides")
    args = ap.parse_args()
    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="compile-cache-"))
    log = ROOT / "benchmarks" / "compile_restart.server.log"
    try:
        cold = start(args.model, cache, args.set, log)
        print(f"first start:  listening {cold['listening_s']:.1f} s, compiled and warm {cold['ready_s']:.1f} s "
              f"(compile {cold['compile_s']} s), classify p50 {cold['classify_p50_ms']:.1f} ms")
        warm = start(args.model, cache, args.set, log)
        print(f"restart:      listening {warm['listening_s']:.1f} s, compiled and warm {warm['ready_s']:.1f} s "
              f"(compile {warm['compile_s']} s), classify p50 {warm['classify_p50_ms']:.1f} ms")
        print(f"restart ready in {warm['ready_s']:.1f} s against {cold['ready_s']:.1f} s "
              f"({cold['ready_s'] / warm['ready_s']:.1f}x; target: under 30 s)")
        same = sum(a == b for a, b in zip(cold["answers"], warm["answers"], strict=True))
        print(f"same answers: {same} of {len(cold['answers'])}")
        errors = [r["compile_error"] for r in (cold, warm) if r["compile_error"]]
        if errors or same != len(cold["answers"]):
            sys.exit(f"compile errors {errors} or answers differ")
    finally:
        if not args.cache:
            shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
