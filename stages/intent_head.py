"""DVC stage: fit one model's intent head (a linear layer on its hidden states) on the intent
training rows, the rows the TF-IDF baseline learns from, and blend it with that baseline (stage
baselines' models/tfidf) at the weight that scores best on the calibration split
(models/intent_head/<model>)."""

import argparse
import shutil
from pathlib import Path

from domaintune.classifiers.tfidf import TfidfIntentClassifier
from domaintune.cli import run_stage
from domaintune.evaluation.generate import load_model
from domaintune.evaluation.temperature import system_prompt
from domaintune.io import read_jsonl, write_json
from domaintune.modeling.intent_head import HEAD_FILE
from domaintune.params import load_params
from domaintune.records import INTENTS
from domaintune.training.intent_head import fit_intent_head
from stages.phases import MODELS


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model", choices=sorted(MODELS))
    name = ap.parse_args().model
    p = load_params()
    cfg = p.eval.intent_head
    out = Path(f"models/intent_head/{name}")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if not cfg.enabled or name not in cfg.models:
        why = "eval.intent_head.enabled is false" if not cfg.enabled else "not in eval.intent_head.models"
        write_json(out / "fit.json", {"enabled": False, "why": why})
        return
    rows = [r for r in read_jsonl("data/processed/intents.jsonl") if r["task"] == "intent" and r["split"] == "train"]
    calibration = [r for r in read_jsonl("data/processed/splits/calibration.jsonl") if r["task"] == "intent"]
    tfidf = TfidfIntentClassifier.load("models/tfidf") if any(w > 0 for w in cfg.tfidf_weights) else None
    model, tok = load_model(MODELS[name])
    head, stats = fit_intent_head(model, tok, rows, list(INTENTS), system_prompt(rows), cfg.layers, cfg.c, p.seed,
                                  cfg.pooling, tfidf, calibration, cfg.tfidf_weights)
    head.save(out / HEAD_FILE)
    write_json(out / "fit.json", {"enabled": True, **stats})


if __name__ == "__main__":
    run_stage(main)
