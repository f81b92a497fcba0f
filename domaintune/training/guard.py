"""Anti-forgetting guard: stop a run that is trading general ability for domain skill.

Every ``every_steps`` steps the callback answers a small set of general probes (exact
answers, disjoint from the test probes) and, for the specialist, a few held-out intent
examples. It logs both and stops training when the general score falls below
``min_general`` or more than ``max_drop`` (a share) below the base model's score, at
``patience`` consecutive checks (mid-training dips at a high learning rate recover). The LoRA
weights of the best check that passed (highest domain score, then general) are restored,
so the adapter that is saved is the last good one, not the one that forgot.
"""

from __future__ import annotations

import logging

import torch
from transformers import AutoTokenizer, TrainerCallback

from domaintune.evaluation.generate import generate, prompts_for
from domaintune.evaluation.intent import parse_intent
from domaintune.evaluation.retention import probe_correct
from domaintune.params import GuardParams
from domaintune.records import INTENTS
from domaintune.training.trainable import load_trainable_state, trainable_state

log = logging.getLogger(__name__)


class ForgettingGuard(TrainerCallback):
    def __init__(self, tokenizer_dir: str, general: list[dict], domain: list[dict], cfg: GuardParams, live=None):
        self.cfg, self.live = cfg, live
        self.tok = AutoTokenizer.from_pretrained(tokenizer_dir)
        self.tok.padding_side = "left"  # generation pads on the left; training's tokenizer is untouched
        self.general, self.domain = general[: cfg.general_probes], domain[: cfg.domain_probes]
        self.general_prompts = prompts_for(self.tok, self.general)
        self.domain_prompts = prompts_for(self.tok, self.domain)
        self.base: dict | None = None
        self.checks: list[dict] = []
        self.best: tuple[tuple, int, dict] | None = None
        self.stopped_at: int | None = None
        self.below = 0  # consecutive checks under the floor

    def score(self, model) -> dict:
        was_training = model.training
        model.eval()
        try:
            outs = generate(model, self.tok, self.general_prompts, self.cfg.max_new_tokens, self.cfg.batch_size)
            general = sum(probe_correct(o, r["meta"]["answers"]) for o, r in zip(outs, self.general, strict=True))
            result = {"general": general / max(1, len(self.general)), "domain": None}
            if self.domain:
                outs = generate(model, self.tok, self.domain_prompts, self.cfg.max_new_tokens, self.cfg.batch_size)
                hits = [(parse_intent(o, list(INTENTS)) or {}).get("primary_intent") == r["meta"]["intent"]
                        for o, r in zip(outs, self.domain, strict=True)]
                result["domain"] = sum(hits) / len(hits)
        finally:
            if was_training:
                model.train()
        return result

    def floor(self) -> float:
        return max(self.cfg.min_general, self.base["general"] * (1 - self.cfg.max_drop))

    def _keep_if_best(self, model, step: int, s: dict) -> None:
        key = (s["domain"] or 0.0, s["general"])
        if self.best is None or key > self.best[0]:
            state = {k: v.detach().clone() for k, v in trainable_state(model).items()}
            self.best = (key, step, state)

    def measure_base(self, model) -> None:
        """Score the base model; call before the trainer wraps it (and before any resume loads weights)."""
        self.base = self.score(model)
        log.info("guard: base scores %s, general floor %.3f", self.base, self.floor())

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        # the adapter as training starts (zero at step 0, the checkpoint on resume) is the fallback
        self._keep_if_best(model, state.global_step, self.base)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.cfg.every_steps:
            return
        s = self.score(model)
        self.checks.append({"step": state.global_step, **s})
        if self.live is not None:
            self.live.step = state.global_step
            self.live.log_metric("guard/general", s["general"])
            if s["domain"] is not None:
                self.live.log_metric("guard/domain", s["domain"])
        self.below = self.below + 1 if s["general"] < self.floor() else 0
        if self.below >= self.cfg.patience:
            log.warning("guard: general score %.3f below %.3f at step %d; stopping and restoring step %d",
                        s["general"], self.floor(), state.global_step, self.best[1])
            self.stopped_at = state.global_step
            with torch.no_grad():
                load_trainable_state(model, self.best[2])
            control.should_training_stop = True
            control.should_save = False  # never checkpoint the state that forgot
        elif not self.below:
            self._keep_if_best(model, state.global_step, s)

    def summary(self) -> dict:
        return {"base": self.base, "floor": self.floor() if self.base else None, "checks": self.checks,
                "stopped_at_step": self.stopped_at,
                "restored_step": self.best[1] if self.stopped_at is not None else None}
