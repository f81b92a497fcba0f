"""One loaded model, shared by every request, on two lanes over the same weights:

- classification: label scoring in micro-batches (:class:`~domaintune.serving.batcher.MicroBatcher`),
  on its own thread, so a classification never waits for a chat to finish;
- chat generation (whole or streamed): up to ``max_chats`` at once, each on its own thread
  with its own KV cache (:attr:`ModelEngine.slots`). Two generations on a CPU are no faster
  in total than one after the other, but a chat starts answering at once instead of waiting
  for every chat before it to finish.

With ``batch_max=1`` the engine is the single-lane one of before: one model request at a time,
classification behind chats on one slot (the scorer's cached prefix is then shared state).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

from domaintune.data.intents import SYSTEM_PROMPT
from domaintune.evaluation.generate import load_model
from domaintune.evaluation.label_scoring import LabelScorer
from domaintune.evaluation.temperature import load_temperature
from domaintune.modeling.cpu_inference import CompileCache, Variant, compiled, for_inference, resolve
from domaintune.modeling.intent_head import IntentHead, load_intent_head
from domaintune.params import ServeParams
from domaintune.records import INTENTS
from domaintune.serving.batcher import MicroBatcher
from domaintune.serving.router import TierTimeout

log = logging.getLogger(__name__)


class ModelNotFound(FileNotFoundError):
    """The model directory does not hold a saved model."""


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" or "length"


class _CountingStreamer(TextIteratorStreamer):
    """Counts the new tokens as they arrive (the first ``put`` is the prompt, skipped)."""

    new_tokens = 0

    def put(self, value) -> None:
        if not self.next_tokens_are_prompt:
            self.new_tokens += int(value.numel())
        super().put(value)


class _Cancelled(StoppingCriteria):
    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        return self.event.is_set()


class ModelEngine:
    def __init__(self, model_dir: str | Path, variant: Variant = "fp32", compile_scoring: bool = False,
                 batch_max: int = 1, batch_window_ms: float = 5.0, compile_cache: str | Path | None = None,
                 warm_in_background: bool = False, max_chats: int = 1, temperature: float = 1.0,
                 head: IntentHead | None = None):
        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise ModelNotFound(f"{model_dir}: no model here (config.json missing); run `dvc repro` "
                                "or pass the directory of a saved model")
        t = time.perf_counter()
        model, self.tok = load_model(model_dir)
        self.model = for_inference(model, variant)
        self.model_dir, self.variant = model_dir, resolve(variant)
        self.temperature = temperature  # label scoring's calibration (stage calibrate)
        self.head = head  # the intent head (stage intent_head), read instead of the LM head
        self.scorer = LabelScorer(self.model, self.tok, list(INTENTS), SYSTEM_PROMPT,  # eager: serves at once
                                  temperature=temperature, head=head)
        self.max_context = int(getattr(self.model.config, "max_position_embeddings", 2048))
        self.max_chats = max_chats if batch_max > 1 else 1
        self.slots = threading.BoundedSemaphore(self.max_chats)  # model requests that may run at once
        self.batch_max = batch_max
        # the scorer is looked up per batch: warming swaps the compiled one in
        self.batcher = (MicroBatcher(lambda texts: self.scorer.classify_batch(texts), batch_max, batch_window_ms)
                        if batch_max > 1 else None)
        self.compiled, self.warming, self.compile_s, self.compile_error = compile_scoring, False, None, None
        self.compile_stats: dict = {}
        self.compile_cache = CompileCache(compile_cache, model_dir, self.variant) if compile_scoring and \
            compile_cache else None
        if compile_scoring and warm_in_background:  # serve eagerly meanwhile; /health says "warming"
            self.warming = True
            threading.Thread(target=self._compile, name="compile-warmup", daemon=True).start()
        elif compile_scoring:
            self._compile()
        self.load_s = time.perf_counter() - t

    def _compile(self) -> None:
        """Compile label scoring and run it on short, long and batched queries, so requests never
        pay for compilation; with a compile cache, reuse what an earlier start compiled."""
        t = time.perf_counter()
        try:
            cached = self.compile_cache.load() if self.compile_cache else False
            scorer = LabelScorer(compiled(self.model), self.tok, list(INTENTS), SYSTEM_PROMPT,
                                 temperature=self.temperature, head=self.head)
            warm = ["hi", "Where can I eat good food near the old town tonight?",
                    "I have three days in the city with my family; how should I split the museums, "
                    "the markets and the best viewpoints so that we do not walk too much?"]
            for text in warm:
                scorer.classify(text)
            if self.batch_max > 1:  # and the batched shapes the micro-batcher runs
                scorer.classify_batch(warm[:2])
                scorer.classify_batch((warm * self.batch_max)[: self.batch_max])
            if self.compile_cache:
                self.compile_cache.save()
            from torch._dynamo.utils import counters  # what the compile cache spared: graphs found, not built

            self.compile_stats = {"cache_loaded": cached,
                                  "fxgraph_cache_hits": counters["inductor"]["fxgraph_cache_hit"],
                                  "fxgraph_cache_misses": counters["inductor"]["fxgraph_cache_miss"]}
            self.scorer = scorer
            self.compile_s = round(time.perf_counter() - t, 1)
            log.info("label scoring compiled in %.1f s (%s)", self.compile_s,
                     "from the compile cache" if cached else "no cache yet")
        except Exception as e:  # keep serving eagerly rather than not at all
            self.compile_error = f"{type(e).__name__}: {e}"
            log.exception("compilation failed; label scoring stays eager")
        finally:
            self.warming = False

    @classmethod
    def serving(cls, cfg: ServeParams, model_dir: str | Path | None = None, background: bool = False) -> ModelEngine:
        """The engine ``serve.*`` describes: precision, compilation (and its cache) and micro-batching.
        ``background``: compile after the server is up (a server), not before returning (a benchmark).
        ``serve.calibration`` and ``serve.intent_head`` are ``serve.model_dir``'s: another ``model_dir`` goes
        without them."""
        own = model_dir is None or Path(model_dir) == Path(cfg.model_dir)
        return cls(model_dir or cfg.model_dir, cfg.inference, cfg.compile, cfg.batch_max, cfg.batch_window_ms,
                   cfg.compile_cache, background, cfg.max_chats,
                   temperature=load_temperature(cfg.calibration) if own else 1.0,
                   head=load_intent_head(cfg.intent_head) if own else None)

    def describe(self) -> dict:
        """The served configuration, as ``/health`` and the latency metrics name it."""
        out = {"inference": self.variant, "compile": self.compiled, "batch_max": self.batch_max,
               "temperature": self.temperature, "intent_head": self.head is not None}
        if self.compiled:
            out["compile_s"] = self.compile_s  # None while warming
            out.update(self.compile_stats)
            if self.compile_error:
                out["compile_error"] = self.compile_error
        if self.batcher is not None and self.batcher.batches:
            out["mean_batch"] = round(self.batcher.requests / self.batcher.batches, 2)
        return out

    def acquire(self, timeout_s: float) -> bool:
        """A chat slot, or False after ``timeout_s``; give it back with :meth:`release`."""
        return self.slots.acquire(timeout=timeout_s)

    def release(self) -> None:
        self.slots.release()

    def classify(self, text: str, timeout_s: float) -> dict:
        """The intent JSON by label scoring; :class:`TierTimeout` when the model stays busy past ``timeout_s``."""
        if self.batcher is not None:
            fut = self.batcher.submit(text)
            try:
                return fut.result(timeout=timeout_s)
            except FutureTimeout:
                fut.cancel()  # still queued: the batcher skips it
                raise TierTimeout(f"no batch slot within {timeout_s} s") from None
        if not self.slots.acquire(timeout=timeout_s):
            raise TierTimeout(f"model busy for {timeout_s} s")
        try:
            return self.scorer.classify(text)
        finally:
            self.slots.release()

    def prompt(self, messages: list[dict], tools: list[dict] | None) -> str:
        return self.tok.apply_chat_template(messages, tools=tools or None, tokenize=False, add_generation_prompt=True)

    def _gen_kwargs(self, prompt: str, max_new_tokens: int, temperature: float, top_p: float,
                    seed: int | None) -> dict:
        enc = self.tok(prompt, return_tensors="pt", add_special_tokens=False)
        kw = dict(**enc, max_new_tokens=max_new_tokens, pad_token_id=self.tok.pad_token_id,
                  eos_token_id=self.tok.eos_token_id)
        if temperature > 0:
            torch.manual_seed(0 if seed is None else seed)
            kw.update(do_sample=True, temperature=temperature, top_p=top_p)
        else:
            kw.update(do_sample=False)
        return kw

    @torch.inference_mode()
    def complete(self, prompt: str, max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
                 seed: int | None = None) -> Completion:
        """Generate the whole answer. The caller holds a slot (see :meth:`acquire`)."""
        kw = self._gen_kwargs(prompt, max_new_tokens, temperature, top_p, seed)
        n_prompt = kw["input_ids"].shape[1]
        out = self.model.generate(**kw)[0, n_prompt:]
        n_new = int(out.shape[0])
        ended = n_new > 0 and int(out[-1]) == self.tok.eos_token_id
        text = self.tok.decode(out, skip_special_tokens=True).strip()
        return Completion(text, n_prompt, n_new, "stop" if ended or n_new < max_new_tokens else "length")

    def stream(self, prompt: str, max_new_tokens: int, temperature: float = 0.0, top_p: float = 1.0,
               seed: int | None = None, stats: dict | None = None) -> Iterator[str]:
        """Yield text pieces as they are generated. The caller holds a slot; closing the iterator
        (a client that went away) stops the generation at the next token. At the end ``stats``
        holds prompt_tokens, completion_tokens and finish_reason."""
        kw = self._gen_kwargs(prompt, max_new_tokens, temperature, top_p, seed)
        streamer = _CountingStreamer(self.tok, skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        kw.update(streamer=streamer, stopping_criteria=StoppingCriteriaList([_Cancelled(stop)]))

        failed: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self.model.generate(**kw)
            except BaseException as e:  # end the stream instead of leaving the reader waiting forever
                failed.append(e)
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        try:
            yield from streamer
        finally:
            stop.set()
            worker.join()
        if failed:
            raise failed[0]
        if stats is not None:
            n = streamer.new_tokens
            stats.update(prompt_tokens=int(kw["input_ids"].shape[1]), completion_tokens=n,
                         finish_reason="length" if n >= max_new_tokens else "stop")
