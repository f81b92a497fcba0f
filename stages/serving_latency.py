"""DVC stage: evals/serving_latency.json, the final model's classification latency as it is
served (serve.inference, serve.compile, serve.batch_max), one query at a time and in batches."""

from domaintune.cli import InputError, run_stage
from domaintune.evaluation.latency import measure_served
from domaintune.io import read_jsonl, write_json
from domaintune.params import load_params
from domaintune.serving.engine import ModelEngine, ModelNotFound


def main() -> None:
    p = load_params()
    rows = read_jsonl("data/processed/splits/test.jsonl")
    queries = [r["messages"][-2]["content"] for r in rows if r["task"] == "intent"][: p.eval.served_latency_queries]
    if not queries:
        raise InputError("data/processed/splits/test.jsonl: no intent rows to time")
    try:  # the batches are timed directly, so the batcher's collection window plays no part
        engine = ModelEngine.serving(p.serve.model_copy(update={"batch_window_ms": 0.0}))
    except ModelNotFound as e:
        raise InputError(str(e)) from None
    write_json("evals/serving_latency.json", {**measure_served(engine, queries), "load_s": round(engine.load_s, 1)})


if __name__ == "__main__":
    run_stage(main)
