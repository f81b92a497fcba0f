"""The HTTP API: OpenAI-compatible chat completions (whole or streamed, with tools) from the
specialist or an agent (the ``model`` field picks it), embeddings from an embedding agent, intent
classification through the fallback chain, health and Prometheus metrics.

The model is loaded once, before the app exists. Model work runs in worker threads (chats in
the engine's chat slots, classifications in its micro-batches), so the
event loop keeps answering ``/health`` and ``/metrics`` under load. At most
``serve.max_pending`` model requests are admitted (running + waiting); the next gets 503 with
``Retry-After`` at once, and a chat request that waits past ``serve.queue_timeout_s`` gets 503
too: overload is an answer, never a hang.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from domaintune.params import ServeParams
from domaintune.serving.agents import Embedder, Grounder
from domaintune.serving.engine import ModelEngine
from domaintune.serving.openai_schema import (
    APIError,
    ChatRequest,
    ChunkWriter,
    ClassifyRequest,
    EmbeddingRequest,
    completion_body,
    split_tool_calls,
    to_chat,
    usage,
)
from domaintune.serving.router import FallbackRouter

log = logging.getLogger(__name__)
ROUTES = {"/health", "/metrics", "/v1/models", "/v1/chat/completions", "/v1/classify", "/v1/embeddings"}


class Metrics:
    """Prometheus series, in a registry of the app's own (two apps in one process do not collide)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.latency = Histogram("domaintune_request_seconds",
                                 "Time to the response (for streams: to its first byte), by path and status",
                                 ["path", "status"], registry=r,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.classifications = Counter("domaintune_classifications_total", "Classifications by answering tier",
                                       ["tier"], registry=r)
        self.fallbacks = Counter("domaintune_fallbacks_total", "Tiers skipped, by tier and reason",
                                 ["tier", "reason"], registry=r)
        self.invalid = Counter("domaintune_invalid_model_outputs_total",
                               "Model outputs that did not validate (intent JSON, tool calls)", ["source"], registry=r)
        self.rejected = Counter("domaintune_rejected_total", "Requests refused with 503", ["reason"], registry=r)
        self.tokens = Counter("domaintune_generated_tokens_total", "Tokens generated for chat", registry=r)
        self.pending = Gauge("domaintune_pending_requests", "Model requests running or waiting", registry=r)


class Admission:
    """A bounded count of model requests in the server; past the bound, refuse instead of queueing."""

    def __init__(self, limit: int, gauge: Gauge):
        self.limit, self.n, self.gauge, self._lock = limit, 0, gauge, threading.Lock()

    def enter(self) -> None:
        with self._lock:
            if self.n >= self.limit:
                raise APIError(503, f"server busy: {self.n} requests in progress; retry shortly", None,
                               "overloaded", "server_error", {"Retry-After": "1"})
            self.n += 1
            self.gauge.set(self.n)

    def leave(self) -> None:
        with self._lock:
            self.n -= 1
            self.gauge.set(self.n)


def _validation_message(err: RequestValidationError) -> tuple[str, str | None]:
    parts, param = [], None
    for e in err.errors():
        loc = [str(x) for x in e.get("loc", ()) if x != "body"]
        if e.get("type") == "json_invalid":
            return "the request body is not valid JSON", None
        where = ".".join(loc) or "body"
        param = param or where
        parts.append(f"{where}: {e.get('msg')}")
    return "; ".join(parts) or "invalid request", param


def create_app(cfg: ServeParams, engine: ModelEngine, router: FallbackRouter,
               agents: dict[str, ModelEngine] | None = None, embedders: dict[str, Embedder] | None = None,
               grounder: Grounder | None = None) -> FastAPI:
    """``engine`` serves ``serve.model_name``; ``agents`` and ``embedders`` serve under their names.
    ``grounder`` (``serve.grounding``) adds catalog passages to ``serve.model_name``'s chats without
    tools; the response's ``X-Grounding-Passages`` header lists their ids."""
    chats = {cfg.model_name: engine, **(agents or {})}
    embedders = embedders or {}
    app = FastAPI(title="domaintune", summary="OpenAI-compatible API and intent router for the domain model")
    metrics = Metrics()
    admission = Admission(cfg.max_pending, metrics.pending)
    api_key = os.environ.get(cfg.api_key_env) or None
    max_body = 4 * cfg.max_message_chars * cfg.max_messages + 65536  # UTF-8 worst case, plus the JSON around it

    def auth(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {api_key}".encode()):
            raise APIError(401, "missing or wrong API key (Authorization: Bearer ...)", None, "invalid_api_key")

    @app.exception_handler(APIError)
    async def _api_error(_: Request, e: APIError) -> JSONResponse:
        if e.status == 503:
            metrics.rejected.labels(e.code or "unavailable").inc()
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, e: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(e)
        return JSONResponse(APIError(400, message, param).body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(APIError(e.status_code, str(e.detail), None, None).body(), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def _crash(_: Request, e: Exception) -> JSONResponse:
        log.exception("request failed")
        return JSONResponse(APIError(500, f"internal error: {type(e).__name__}", None, None, "server_error").body(),
                            status_code=500)

    @app.middleware("http")
    async def _measure(request: Request, call_next):
        t = time.perf_counter()
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > max_body:
            response = JSONResponse(APIError(413, f"request body of {size} bytes; at most {max_body}").body(),
                                    status_code=413)
        else:
            response = await call_next(request)
        path = request.url.path if request.url.path in ROUTES else "other"
        metrics.latency.labels(path, str(response.status_code)).observe(time.perf_counter() - t)
        return response

    @app.get("/health")
    async def health() -> dict:
        return {"status": "warming" if engine.warming else "ok", "model": cfg.model_name,
                "model_dir": str(engine.model_dir),
                "agents": sorted(chats.keys() - {cfg.model_name} | embedders.keys()), "grounding": grounder is not None,
                **engine.describe(), "max_chats": engine.max_chats, "load_s": round(engine.load_s, 3),
                "pending": admission.n, "max_pending": cfg.max_pending,
                "tiers": [{"name": t.name, "available": t.available, "threshold": t.threshold,
                           **({"reason": t.why_unavailable} if not t.available else {})} for t in router.tiers]}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/models", dependencies=[Depends(auth)])
    async def models() -> dict:
        listed = [(name, "chat") for name in chats] + [(name, "embedding") for name in embedders]
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "domaintune",
                                            "kind": kind} for name, kind in listed]}

    @app.post("/v1/embeddings", dependencies=[Depends(auth)])
    async def embeddings(req: EmbeddingRequest) -> dict:
        if req.model not in embedders:
            raise APIError(404, f"model {req.model!r} is not an embedding model here; embedding models: "
                           f"{sorted(embedders) or 'none (serve.agents)'}", "model", "model_not_found")
        texts = [req.input] if isinstance(req.input, str) else req.input
        if not texts or any(not t.strip() for t in texts):
            raise APIError(400, "input: empty text", "input", "empty_message")
        if too_long := [i for i, t in enumerate(texts) if len(t) > cfg.max_message_chars]:
            raise APIError(400, f"input[{too_long[0]}]: longer than {cfg.max_message_chars} characters", "input",
                           "message_too_long")
        admission.enter()
        try:
            vecs, tokens = await run_in_threadpool(embedders[req.model].embed, texts)
        finally:
            admission.leave()
        return {"object": "list", "model": req.model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vecs)]}

    @app.post("/v1/classify", dependencies=[Depends(auth)])
    async def classify(req: ClassifyRequest) -> dict:
        if not req.text.strip():
            raise APIError(400, "text: empty", "text", "empty_message")
        if len(req.text) > cfg.max_message_chars:
            raise APIError(400, f"text: {len(req.text)} characters; at most {cfg.max_message_chars}", "text",
                           "message_too_long")
        admission.enter()
        try:
            t = time.perf_counter()
            routed = await run_in_threadpool(router.route, req.text)
            ms = (time.perf_counter() - t) * 1000
        finally:
            admission.leave()
        metrics.classifications.labels(routed.tier).inc()
        for s in routed.skipped:
            metrics.fallbacks.labels(s["tier"], s["reason"]).inc()
        for name in routed.invalid:
            metrics.invalid.labels(name).inc()
        return {**routed.as_json(), "latency_ms": round(ms, 2)}

    def locked(engine: ModelEngine, fn, *args):
        """Run ``fn`` holding ``engine``'s model, or 503 when it stays busy past the queue timeout."""
        if not engine.acquire(cfg.queue_timeout_s):
            raise APIError(503, f"model busy for {cfg.queue_timeout_s} s; retry shortly", None, "queue_timeout",
                           "server_error", {"Retry-After": "1"})
        try:
            return fn(*args)
        finally:
            engine.release()

    @app.post("/v1/chat/completions", dependencies=[Depends(auth)])
    async def chat(req: ChatRequest):
        if req.model not in chats:
            what = "an embedding model (POST /v1/embeddings)" if req.model in embedders else "not served here"
            raise APIError(404, f"model {req.model!r}: {what}; chat models: {', '.join(chats)}",
                           "model", "model_not_found")
        engine = chats[req.model]
        messages, tools = to_chat(req, cfg.max_message_chars, cfg.max_messages)
        headers = {}
        if grounder is not None and req.model == cfg.model_name and not tools:  # a tool call needs no catalog
            messages, ids = await run_in_threadpool(grounder, messages)
            headers["X-Grounding-Passages"] = ",".join(ids)
        max_new = min(req.max_completion_tokens or req.max_tokens or cfg.max_new_tokens, cfg.max_new_tokens)
        prompt = engine.prompt(messages, tools)
        n_prompt = len(engine.tok(prompt, add_special_tokens=False)["input_ids"])
        if n_prompt + max_new > engine.max_context:
            raise APIError(400, f"{n_prompt} prompt tokens + {max_new} new exceed the model's context of "
                           f"{engine.max_context}", "messages", "context_length_exceeded")
        sampling = (max_new, req.temperature, req.top_p, req.seed)
        if req.stream and not tools:
            streamed = await _stream(req, engine, prompt, sampling)
            streamed.headers.update(headers)
            return streamed
        admission.enter()
        try:
            done = await run_in_threadpool(locked, engine, engine.complete, prompt, *sampling)
        finally:
            admission.leave()
        metrics.tokens.inc(done.completion_tokens)
        content, calls, invalid = split_tool_calls(done.text, tools)
        if invalid:
            metrics.invalid.labels("chat_tool_call").inc()
        finish = "tool_calls" if calls else done.finish_reason
        if not req.stream:
            return JSONResponse(completion_body(req.model, content, calls, finish, done.prompt_tokens,
                                                done.completion_tokens), headers=headers)
        # Tools and streaming: a call is only known once complete, so the answer comes as one delta.
        w = ChunkWriter(req.model)
        delta: dict = {"role": "assistant", "content": content}
        if calls:
            delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(calls)]
        events = [w.chunk(delta), w.chunk({}, finish)]
        if req.stream_options and req.stream_options.include_usage:
            events.append(w.chunk({}, usage=usage(done.prompt_tokens, done.completion_tokens)))
        events.append(w.done())
        return StreamingResponse(iter(events), media_type="text/event-stream")

    async def _stream(req: ChatRequest, engine: ModelEngine, prompt: str, sampling: tuple) -> StreamingResponse:
        admission.enter()
        got = {"lock": False}

        def acquire() -> bool:
            got["lock"] = engine.acquire(cfg.queue_timeout_s)
            return got["lock"]

        try:
            if not await run_in_threadpool(acquire):
                raise APIError(503, f"model busy for {cfg.queue_timeout_s} s; retry shortly", None,
                               "queue_timeout", "server_error", {"Retry-After": "1"})
        except BaseException:
            if got["lock"]:
                engine.release()
            admission.leave()
            raise
        stats: dict = {}
        pieces = engine.stream(prompt, *sampling, stats=stats)
        w = ChunkWriter(req.model)
        end = object()

        async def events():
            try:
                yield w.chunk({"role": "assistant", "content": ""})
                while (piece := await run_in_threadpool(next, pieces, end)) is not end:
                    if piece:
                        yield w.chunk({"content": piece})
                yield w.chunk({}, stats["finish_reason"])
                if req.stream_options and req.stream_options.include_usage:
                    yield w.chunk({}, usage=usage(stats["prompt_tokens"], stats["completion_tokens"]))
                yield w.done()
                metrics.tokens.inc(stats["completion_tokens"])
            finally:
                with anyio.CancelScope(shield=True):  # a client that left: stop generating, free the model
                    await run_in_threadpool(pieces.close)
                engine.release()
                admission.leave()

        return StreamingResponse(events(), media_type="text/event-stream")

    app.state.metrics, app.state.admission, app.state.router, app.state.engine = metrics, admission, router, engine
    return app

