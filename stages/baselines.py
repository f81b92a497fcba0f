"""DVC stage: fit the TF-IDF intent baseline (models/tfidf, also a serving tier) and score it and
the keyword rules on the same intent test rows as every model, and on the calibration rows
(evals/baselines.json)."""

from domaintune.classifiers.keywords import KeywordClassifier
from domaintune.cli import run_stage
from domaintune.evaluation.baselines import score_baselines, train_tfidf
from domaintune.evaluation.sampling import intent_rows
from domaintune.io import read_jsonl, write_json
from domaintune.params import load_params
from domaintune.records import INTENTS


def main() -> None:
    p = load_params()
    rows = read_jsonl("data/processed/intents.jsonl")
    tfidf = train_tfidf(rows, p.eval.baselines.tfidf_c, p.seed)
    tfidf.save("models/tfidf")
    test = intent_rows(read_jsonl("data/processed/splits/test.jsonl"), p.eval.intent_examples, p.seed)
    keywords = KeywordClassifier.from_file(p.eval.baselines.keywords)
    n_train = sum(r["split"] == "train" for r in rows)
    out = score_baselines(test, tfidf, keywords, list(INTENTS), n_train)
    # the calibration split too: the serving chain's settings can be checked on rows the test never saw
    calibration = [r for r in read_jsonl("data/processed/splits/calibration.jsonl") if r["task"] == "intent"]
    if calibration:
        out["calibration_split"] = score_baselines(calibration, tfidf, keywords, list(INTENTS), n_train)
    write_json("evals/baselines.json", out)


if __name__ == "__main__":
    run_stage(main)
