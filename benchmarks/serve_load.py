"""Benchmark: the HTTP server under bounded load, from a second process.

For each engine in ``--engines`` it starts ``python -m domaintune.serving serve`` on a free
127.0.0.1 port (or uses ``--url``), then:

1. baseline: ``--baseline`` classify requests one at a time;
2. load: ``--requests`` requests at ``--concurrency``, a ``--chat-share`` of them short streamed
   chat completions, the rest classifications of held-out test utterances;

and prints p50/p95/p99 per kind (chats: time to the first token and to the end), throughput,
status counts, the answering tiers and the server's own fallback counters. The engines run the
same requests, one after the other on the same machine, and a last table compares them with
today's engine (``single``: one classification at a time, behind chats) as ratios, since these
machines are noisy. It stops by itself (every request has a timeout) and exits 1 if any request
got a 5xx or no answer at all.

    python benchmarks/serve_load.py                      # single vs batched (params.yaml's serve.*)
    python benchmarks/serve_load.py --engines batched --set inference=bf16
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


# today's engine; serve.* as params.yaml sets it; the same with chats one at a time
ENGINES = {"single": ["batch_max=1"], "batched": [], "batched-1chat": ["max_chats=1"]}


def _start(model: str, settings: list[str]) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = open(ROOT / "benchmarks" / "serve_load.server.log", "w")  # noqa: SIM115 - lives as long as the server
    sets = [arg for s in settings for arg in ("--set", s)]
    proc = subprocess.Popen([sys.executable, "-m", "domaintune.serving", "--model", model, *sets, "serve", "--port",
                             str(port)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 600  # serve.compile compiles before the server listens
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
    sys.exit("server did not become healthy in 600 s")


def _has_text(chunk: str) -> bool:
    choices = json.loads(chunk).get("choices") or [{}]
    return bool(choices[0].get("delta", {}).get("content"))


def _request(client: httpx.Client, url: str, kind: str, text: str, model: str, max_tokens: int) -> dict:
    t = time.perf_counter()
    try:
        if kind == "classify":
            r = client.post(url + "/v1/classify", json={"text": text})
            return {"kind": kind, "status": r.status_code, "ms": (time.perf_counter() - t) * 1000,
                    "tier": r.json().get("tier")}
        body = {"model": model, "max_tokens": max_tokens, "stream": True,
                "messages": [{"role": "user", "content": text}]}
        first = None
        with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
            for line in r.iter_lines():
                if first is None and line.startswith("data: {") and _has_text(line[6:]):
                    first = (time.perf_counter() - t) * 1000
        return {"kind": kind, "status": r.status_code, "ms": (time.perf_counter() - t) * 1000, "ttft_ms": first}
    except (httpx.HTTPError, ValueError) as e:
        return {"kind": kind, "status": None, "ms": (time.perf_counter() - t) * 1000, "error": type(e).__name__}


def _summary(results: list[dict], wall: float) -> dict:
    cls = [r["ms"] for r in results if r["kind"] == "classify" and r["status"] == 200]
    ttft = [r["ttft_ms"] for r in results if r["kind"] == "chat" and r["status"] == 200 and r.get("ttft_ms")]
    return {"wall_s": wall, "req_per_s": len(results) / wall, "classify_per_s": len(cls) / wall,
            "classify_p50": percentile(cls, 50) if cls else None, "classify_p95": percentile(cls, 95) if cls else None,
            "ttft_p50": percentile(ttft, 50) if ttft else None, "ttft_p95": percentile(ttft, 95) if ttft else None,
            "five_xx": sum(1 for r in results if r["status"] is not None and r["status"] >= 500),
            "lost": sum(1 for r in results if r["status"] is None)}


def _report(title: str, results: list[dict], wall: float) -> None:
    print(f"\n{title}: {len(results)} requests in {wall:.1f} s ({len(results) / wall:.1f} req/s)")
    rows = [("classify", [r["ms"] for r in results if r["kind"] == "classify" and r["status"] == 200]),
            ("chat ttft", [r["ttft_ms"] for r in results if r["kind"] == "chat" and r.get("ttft_ms")]),
            ("chat", [r["ms"] for r in results if r["kind"] == "chat" and r["status"] == 200])]
    for kind, ms in rows:
        if ms:
            print(f"  {kind:9s} n={len(ms):4d}  p50 {percentile(ms, 50):7.1f} ms  p95 {percentile(ms, 95):7.1f} ms  "
                  f"p99 {percentile(ms, 99):7.1f} ms")
    print("  status:", dict(Counter(str(r["status"]) for r in results)))
    tiers = Counter(r["tier"] for r in results if r["kind"] == "classify" and r["status"] == 200)
    if tiers:
        print("  classify answered by:", dict(tiers))


def _run(args: argparse.Namespace, url: str, jobs: list[tuple[str, str]], queries: list[str]) -> dict:
    rnd = random.Random(1)
    client = httpx.Client(timeout=args.timeout, limits=httpx.Limits(max_connections=args.concurrency + 2))
    for q in queries[:3]:  # warm-up
        _request(client, url, "classify", q, args.model_name, args.max_tokens)
    t = time.perf_counter()
    base = [_request(client, url, "classify", q, args.model_name, args.max_tokens)
            for q in rnd.sample(queries, min(args.baseline, len(queries)))]
    _report("baseline, one at a time", base, time.perf_counter() - t)
    t = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        results = list(pool.map(lambda j: _request(client, url, j[0], j[1], args.model_name, args.max_tokens), jobs))
    wall = time.perf_counter() - t
    _report(f"load, concurrency {args.concurrency}", results, wall)
    metrics = httpx.get(url + "/metrics", timeout=10).text
    fallbacks = [line for line in metrics.splitlines() if line.startswith("domaintune_fallbacks_total{")]
    print("  server fallbacks:", "; ".join(fallbacks) or "none")
    print("  served configuration:", {k: v for k, v in httpx.get(url + "/health", timeout=10).json().items()
                                      if k in ("inference", "compile", "batch_max", "mean_batch")})
    out = _summary(results, wall)
    # answered by a lower tier because the model tier timed out (not because it was unsure)
    out["timeouts"] = sum(float(line.rsplit(" ", 1)[1]) for line in fallbacks
                          if 'reason="timeout"' in line and 'tier="model"' in line)
    out["five_xx"] += sum(1 for r in base if r["status"] is not None and r["status"] >= 500)
    out["lost"] += sum(1 for r in base if r["status"] is None)
    return out


def _compare(summaries: dict[str, dict], args: argparse.Namespace) -> None:
    ref = summaries.get("single")
    print("\n| engine | classify/s | x single | classify p50 | p95 (target <= 150 ms) | model tier timed "
          "out (target 0) | chat TTFT p95 (target <= 500 ms) | 5xx | lost |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    fmt = lambda v: "-" if v is None else f"{v:.0f} ms"  # noqa: E731
    for name, s in summaries.items():
        ratio = f"{s['classify_per_s'] / ref['classify_per_s']:.2f}x" if ref and ref["classify_per_s"] else "-"
        print(f"| {name} | {s['classify_per_s']:.1f} | {ratio} | {fmt(s['classify_p50'])} | {fmt(s['classify_p95'])} "
              f"| {s['timeouts']:.0f} | {fmt(s['ttft_p95'])} | {s['five_xx']} | {s['lost']} |")
    print(f"({args.requests} requests at concurrency {args.concurrency}, {args.chat_share:.0%} streamed chats of "
          f"{args.max_tokens} tokens; the same requests for every engine)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/specialist")
    ap.add_argument("--url", help="an already running server (its model name must be --model-name)")
    ap.add_argument("--model-name", default="domaintune-specialist")
    ap.add_argument("--engines", default="single,batched", help=f"comma-separated, of {list(ENGINES)}")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="serve.* override for every engine started, e.g. inference=bf16")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--chat-share", type=float, default=0.1)
    ap.add_argument("--max-tokens", type=int, default=16)
    ap.add_argument("--baseline", type=int, default=40)
    ap.add_argument("--timeout", type=float, default=120.0, help="per request, seconds")
    args = ap.parse_args()

    queries = _queries()
    rnd = random.Random(0)
    jobs = [("chat" if rnd.random() < args.chat_share else "classify", rnd.choice(queries))
            for _ in range(args.requests)]
    summaries = {}
    for name in ([None] if args.url else args.engines.split(",")):
        if name is not None and name not in ENGINES:
            sys.exit(f"--engines: unknown engine {name!r}; known: {list(ENGINES)}")
        print(f"\n=== engine: {name or args.url} ===")
        proc, url = (None, args.url) if args.url else _start(args.model, [*ENGINES[name], *args.set])
        try:
            summaries[name or "url"] = _run(args, url, jobs, queries)
        finally:
            if proc:
                proc.terminate()
                proc.wait(30)
    _compare(summaries, args)
    bad = {k: (s["five_xx"], s["lost"]) for k, s in summaries.items() if s["five_xx"] or s["lost"]}
    if bad:
        sys.exit(f"5xx or unanswered requests (5xx, lost): {bad}")


if __name__ == "__main__":
    main()
