"""Benchmark: the HTTP server under bounded load, from a second process.

Starts ``python -m domaintune.serving serve`` on a free 127.0.0.1 port (or uses ``--url``), then:

1. baseline: ``--baseline`` classify requests one at a time;
2. load: ``--requests`` requests at ``--concurrency``, a ``--chat-share`` of them short chat
   completions, the rest classifications of held-out test utterances;

and prints p50/p95/p99 per kind, throughput, status counts, the answering tiers and the
server's own fallback counters. It stops by itself (every request has a timeout) and exits 1
if any request got a 5xx or no answer at all.

    python benchmarks/serve_load.py                      # models/specialist, 300 requests at concurrency 8
    python benchmarks/serve_load.py --model models/base --requests 100
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domaintune.evaluation.latency import percentile  # noqa: E402

FALLBACK_QUERIES = ["selam naber", "Where can I eat good sushi in Rome?", "Wie wird das Wetter morgen in Berlin?",
                    "Comment aller à l'aéroport ?", "Где ближайшая аптека?", "أين أفضل مكان للتسوق في دبي؟"]


def _queries() -> list[str]:
    test = ROOT / "data/processed/splits/test.jsonl"
    if not test.exists():
        return FALLBACK_QUERIES
    rows = [json.loads(line) for line in test.open()]
    return [r["messages"][-2]["content"] for r in rows if r["task"] == "intent"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(model: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = open(ROOT / "benchmarks" / "serve_load.server.log", "w")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen([sys.executable, "-m", "domaintune.serving", "--model", model, "serve", "--port",
                             str(port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode}; see benchmarks/serve_load.server.log")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    sys.exit("server did not become healthy in 180 s")


def _request(client: httpx.Client, url: str, kind: str, text: str, model: str, max_tokens: int) -> dict:
    t = time.perf_counter()
    try:
        if kind == "classify":
            r = client.post(url + "/v1/classify", json={"text": text})
        else:
            r = client.post(url + "/v1/chat/completions", json={
                "model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]})
        body = r.json()
        return {"kind": kind, "status": r.status_code, "ms": (time.perf_counter() - t) * 1000,
                "tier": body.get("tier") if kind == "classify" else None}
    except (httpx.HTTPError, ValueError) as e:
        return {"kind": kind, "status": None, "ms": (time.perf_counter() - t) * 1000, "error": type(e).__name__}


def _report(title: str, results: list[dict], wall: float) -> None:
    print(f"\n{title}: {len(results)} requests in {wall:.1f} s ({len(results) / wall:.1f} req/s)")
    for kind in ("classify", "chat"):
        ms = [r["ms"] for r in results if r["kind"] == kind and r["status"] == 200]
        if ms:
            print(f"  {kind:9s} n={len(ms):4d}  p50 {percentile(ms, 50):7.1f} ms  p95 {percentile(ms, 95):7.1f} ms  "
                  f"p99 {percentile(ms, 99):7.1f} ms")
    print("  status:", dict(Counter(str(r["status"]) for r in results)))
    tiers = Counter(r["tier"] for r in results if r["kind"] == "classify" and r["status"] == 200)
    if tiers:
        print("  classify answered by:", dict(tiers))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/specialist")
    ap.add_argument("--url", help="an already running server (its model name must be --model-name)")
    ap.add_argument("--model-name", default="domaintune-specialist")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--chat-share", type=float, default=0.1)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--baseline", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    args = ap.parse_args()

    proc, url = (None, args.url) if args.url else _start(args.model)
    try:
        queries = _queries()
        rnd = random.Random(0)
        client = httpx.Client(timeout=args.timeout, limits=httpx.Limits(max_connections=args.concurrency + 2))
        _request(client, url, "classify", queries[0], args.model_name, args.max_tokens)  # warm-up

        t = time.perf_counter()
        base = [_request(client, url, "classify", q, args.model_name, args.max_tokens)
                for q in rnd.sample(queries, min(args.baseline, len(queries)))]
        _report("baseline, one at a time", base, time.perf_counter() - t)

        jobs = [("chat" if rnd.random() < args.chat_share else "classify", rnd.choice(queries))
                for _ in range(args.requests)]
        t = time.perf_counter()
        with ThreadPoolExecutor(args.concurrency) as pool:
            results = list(pool.map(lambda j: _request(client, url, j[0], j[1], args.model_name, args.max_tokens),
                                    jobs))
        _report(f"load, concurrency {args.concurrency}", results, time.perf_counter() - t)

        metrics = httpx.get(url + "/metrics", timeout=10).text
        fallbacks = [line for line in metrics.splitlines() if line.startswith("domaintune_fallbacks_total{")]
        print("  server fallbacks:", "; ".join(fallbacks) or "none")
        five_xx = sum(1 for r in results + base if r["status"] is not None and r["status"] >= 500)
        lost = sum(1 for r in results + base if r["status"] is None)
        print(f"\n5xx: {five_xx}   no answer: {lost}   sent: {len(results) + len(base)}")
        if five_xx or lost:
            sys.exit(1)
    finally:
        if proc:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
