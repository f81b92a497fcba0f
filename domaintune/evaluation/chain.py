"""Accuracy of the serving fallback chain (``serve.tiers``) on the held-out intent rows.

Each tier's answers were computed once (the model in ``evaluate``, the TF-IDF classifier and
keyword rules in ``baselines``); here they are replayed through the router serving uses, with
its thresholds, so the metric is what a user of the served chain gets. A second model has no
answers in the pipeline and counts as unavailable.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from domaintune.params import ClassifierTier, KeywordTier, ModelTier
from domaintune.serving.router import FallbackRouter, Tier


def chain_accuracy(model_preds: list[dict], baseline_preds: list[dict], tiers: list, default_intent: str,
                   unsure: str | None = None) -> dict:
    by_id = {b["id"]: b for b in baseline_preds}
    missing = [p["id"] for p in model_preds if p["id"] not in by_id]
    if missing:
        raise ValueError(f"{len(missing)} test rows have model answers but no baseline answers (e.g. {missing[0]}): "
                         "evaluate and baselines scored different rows")
    answers: dict[str, dict[str, dict | None]] = defaultdict(dict)
    for p in model_preds:
        answers["model"][p["id"]] = {"primary_intent": p["scored"], "confidence": p["scored_confidence"],
                                     "all_intents": [p["scored"]]}
        answers["classifier"][p["id"]] = by_id[p["id"]]["tfidf"]
        answers["keywords"][p["id"]] = by_id[p["id"]]["keywords"]
    chain = []
    for spec in tiers:
        if isinstance(spec, ModelTier) and spec.kind == "second_model":
            chain.append(Tier(spec.kind, lambda *_: None, available=False, why_unavailable="not in the pipeline"))
            continue
        name = "keywords" if isinstance(spec, KeywordTier) else "classifier" if isinstance(spec, ClassifierTier) \
            else "model"
        chain.append(Tier(name, lambda key, _t, a=answers[name]: a[key], spec.threshold, 60.0))
    router = FallbackRouter(chain, default_intent, unsure)
    hits, per_lang, tier_of = [], defaultdict(list), Counter()
    for p in model_preds:
        routed = router.route(p["id"])  # the router passes the key through to each tier's lookup
        ok = routed.result["primary_intent"] == p["actual"]
        hits.append(ok)
        per_lang[p["lang"]].append(ok)
        tier_of[routed.tier] += 1
    n = max(1, len(hits))
    return {"accuracy": sum(hits) / n, "per_language": {k: sum(v) / len(v) for k, v in sorted(per_lang.items())},
            "answered_by": {k: v / n for k, v in sorted(tier_of.items())}, "examples": len(hits)}


def chain_report(model_preds: list[dict], baselines: dict, tiers: list, default_intent: str, unsure: str | None,
                 calibration_preds: list[dict] | None = None) -> dict:
    """The chain on the test rows as served (``serve.unsure`` included), beside it without ``unsure``
    (``default_intent`` for unsure rows), and both again on the calibration split's rows, which the
    test never saw: a chain setting that only helps on the test rows shows here."""
    out = chain_accuracy(model_preds, baselines["predictions"], tiers, default_intent, unsure)
    if unsure is not None:
        out["with_default_intent"] = chain_accuracy(model_preds, baselines["predictions"], tiers, default_intent)[
            "accuracy"]
    split = baselines.get("calibration_split")
    if calibration_preds and split:
        served = chain_accuracy(calibration_preds, split["predictions"], tiers, default_intent, unsure)
        out["calibration_split"] = {
            "accuracy": served["accuracy"], "answered_by": served["answered_by"], "examples": served["examples"],
            "with_default_intent": chain_accuracy(calibration_preds, split["predictions"], tiers,
                                                  default_intent)["accuracy"],
            "model": sum(p["scored"] == p["actual"] for p in calibration_preds) / len(calibration_preds),
            "tfidf": split["tfidf"]["accuracy"], "keywords": split["keywords"]["accuracy"]}
    return out
