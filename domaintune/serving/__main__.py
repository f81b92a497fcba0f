"""Command line: ``python -m domaintune.serving {serve,chat,classify}``.

    python -m domaintune.serving serve                       # http://127.0.0.1:8000 (serve.* in params.yaml)
    python -m domaintune.serving chat                        # interactive, streams the answer
    python -m domaintune.serving chat "Plan 3 days in Rome"  # one-shot
    python -m domaintune.serving classify "where can I eat near Taksim?" "selam naber"
    python -m domaintune.serving --set batch_max=1 serve      # any serve.* key, for this run only
    python -m domaintune.serving --set "agents=[persona, retrieval]" serve   # agents beside the specialist
    python -m domaintune.serving --set grounding=true serve   # travel chats get the retrieval agent's passages
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import yaml
from pydantic import ValidationError

from domaintune.classifiers.keywords import KeywordFileError
from domaintune.evaluation.temperature import load_temperature
from domaintune.modeling.intent_head import load_intent_head
from domaintune.params import Params, ParamsError, ServeParams, load_params
from domaintune.serving.engine import ModelEngine, ModelNotFound


def _config(args: argparse.Namespace) -> ServeParams:
    cfg = load_params(args.params).serve
    update = {k: v for k, v in (("model_dir", args.model), ("host", getattr(args, "host", None)),
                                ("port", getattr(args, "port", None))) if v is not None}
    if args.model is not None and Path(args.model) != Path(cfg.model_dir):
        # serve.calibration and serve.intent_head are serve.model_dir's; --set calibration=FILE for this one
        update["calibration"] = update["intent_head"] = None
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or key not in ServeParams.model_fields:
            keys = ", ".join(ServeParams.model_fields)
            raise ParamsError(f"--set {item!r}: expected KEY=VALUE, KEY one of the serve section's: {keys}")
        update[key] = yaml.safe_load(value)
    try:
        return ServeParams.model_validate({**cfg.model_dump(), **update})
    except ValidationError as e:
        raise ParamsError(f"serve settings: {e}") from None


def _serve(cfg: ServeParams, params: Params) -> None:
    import uvicorn

    from domaintune.serving.agents import load_agents, load_grounder
    from domaintune.serving.app import create_app
    from domaintune.serving.tiers import build_router

    engine = ModelEngine.serving(cfg, background=True)  # with serve.compile: listening at once, compiled soon
    chats, embedders = load_agents(cfg, params.agents)
    app = create_app(cfg, engine, build_router(cfg, engine), chats, embedders,
                     grounder=load_grounder(cfg, params.grounding, params.agents, embedders))
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        logging.warning("listening on %s: reachable from other machines%s", cfg.host,
                        "" if os.environ.get(cfg.api_key_env) else f", and {cfg.api_key_env} is not set: no API key")
    # uvicorn's own cap answers 503 past it too, before a request reaches the app
    uvicorn.run(app, host=cfg.host, port=cfg.port, limit_concurrency=4 * cfg.max_pending + 16, log_level="info")


def _classify(cfg: ServeParams, texts: list[str]) -> None:
    from domaintune.serving.tiers import build_router

    # one user, one text at a time: nothing to batch
    router = build_router(cfg, ModelEngine(cfg.model_dir, cfg.inference, cfg.compile,
                                           temperature=load_temperature(cfg.calibration),
                                           head=load_intent_head(cfg.intent_head)))
    for text in texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]:
        print(json.dumps(router.route(text).as_json(), ensure_ascii=False), flush=True)


def _chat(cfg: ServeParams, message: str | None, system: str | None, max_tokens: int) -> None:
    engine = ModelEngine(cfg.model_dir, cfg.inference)  # serve.compile speeds classification only
    history = [{"role": "system", "content": system}] if system else []
    interactive = message is None
    if interactive:
        print(f"{cfg.model_dir} ready; an empty line or Ctrl-D quits.", file=sys.stderr)
    while True:
        if interactive:
            try:
                message = input("> ").strip()
            except EOFError:
                break
            if not message:
                break
        history.append({"role": "user", "content": message})
        answer = []
        with engine.slots:
            for piece in engine.stream(engine.prompt(history, None), min(max_tokens, cfg.max_new_tokens)):
                answer.append(piece)
                print(piece, end="", flush=True)
        print(flush=True)
        history.append({"role": "assistant", "content": "".join(answer).strip()})
        if not interactive:
            break


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m domaintune.serving", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", default="params.yaml", help="the serve section is read from here")
    ap.add_argument("--model", help="model directory (default: serve.model_dir, the pipeline's merged model)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a serve.* setting for this run, e.g. --set batch_max=1 --set inference=bf16")
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="the HTTP API")
    s.add_argument("--host", help="default serve.host (127.0.0.1); 0.0.0.0 exposes it to the network")
    s.add_argument("--port", type=int)
    c = sub.add_parser("chat", help="chat, streaming the answer")
    c.add_argument("message", nargs="?", help="one-shot message; none: interactive")
    c.add_argument("--system", help="a system prompt")
    c.add_argument("--max-tokens", type=int, default=512)
    k = sub.add_parser("classify", help="intent JSON through the fallback chain, one line per text")
    k.add_argument("texts", nargs="*", help="texts to classify (none: one per line on stdin)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        cfg = _config(args)
        if args.command == "serve":
            _serve(cfg, load_params(args.params))
        elif args.command == "chat":
            _chat(cfg, args.message, args.system, args.max_tokens)
        else:
            _classify(cfg, args.texts)
    except (ParamsError, ModelNotFound, KeywordFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
