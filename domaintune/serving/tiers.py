"""Build the fallback chain from ``serve.tiers`` in params.yaml."""

from __future__ import annotations

import logging
from pathlib import Path

from domaintune.classifiers.keywords import KeywordClassifier
from domaintune.classifiers.tfidf import TfidfIntentClassifier
from domaintune.params import ClassifierTier, KeywordTier, ModelTier, ServeParams
from domaintune.serving.engine import ModelEngine
from domaintune.serving.router import FallbackRouter, Tier

log = logging.getLogger(__name__)


def build_router(cfg: ServeParams, engine: ModelEngine | None) -> FallbackRouter:
    """``engine`` serves the ``model`` tier (and chat); a tier naming another directory loads its own.
    A tier that cannot load is kept in the chain as unavailable, so answers say why it was skipped."""
    tiers = []
    for spec in cfg.tiers:
        if isinstance(spec, KeywordTier):
            kc = KeywordClassifier.from_file(spec.file)  # a broken rules file is a startup error
            tiers.append(Tier("keywords", lambda text, _t, kc=kc: kc.classify(text), spec.threshold, 1.0))
            continue
        if isinstance(spec, ClassifierTier):
            tier = Tier("classifier", lambda *_: None, spec.threshold, 1.0)
            try:
                clf = TfidfIntentClassifier.load(spec.model_dir)
                tier.classify = lambda text, _t, clf=clf: clf.classify(text)
            except (OSError, ValueError, KeyError) as e:
                log.warning("tier classifier unavailable: %s", e)
                tier.available, tier.why_unavailable = False, str(e)
            tiers.append(tier)
            continue
        assert isinstance(spec, ModelTier)
        tier = Tier(spec.kind, lambda *_: None, spec.threshold, spec.timeout_s)
        model_dir = spec.model_dir or (cfg.model_dir if spec.kind == "model" else None)
        if model_dir is None:
            tier.available, tier.why_unavailable = False, "no model_dir configured"
        elif engine is not None and Path(model_dir).resolve() == Path(engine.model_dir).resolve():
            tier.classify = engine.classify
        else:
            try:
                tier.classify = ModelEngine.serving(cfg, model_dir).classify
            except (OSError, ValueError) as e:
                log.warning("tier %s unavailable: %s", spec.kind, e)
                tier.available, tier.why_unavailable = False, str(e)
        tiers.append(tier)
    return FallbackRouter(tiers, cfg.default_intent, cfg.unsure)
