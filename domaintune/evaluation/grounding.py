"""Travel answers grounded on retrieved catalog passages, beside the same model's answers without
(metrics/travel.json): does retrieval make the specialist's plans name real places, add up, stop
looping? Also how many retrieved passages are about the destination asked for."""

from __future__ import annotations

from pathlib import Path

from domaintune.evaluation.generate import load_model
from domaintune.evaluation.run import score_travel_answers, travel_conversations, travel_inputs
from domaintune.evaluation.summary import TRAVEL_KEYS, travel_headline
from domaintune.evaluation.travel import plan_request
from domaintune.io import read_jsonl
from domaintune.modeling.grounding import PassageIndex, ground_all
from domaintune.params import Params


def grounded_travel(model_dir: str | Path, test_path: str | Path, p: Params, without: dict) -> tuple[dict, dict]:
    """(answers and retrieved passages for evals/, figures for metrics/). ``without``: the same model's
    travel figures on the same requests, ungrounded, as metrics/travel.json has them."""
    g = p.grounding
    index = PassageIndex.for_agent(g.agent)
    catalog, questions = travel_inputs(p)
    test = read_jsonl(test_path)
    model, tok = load_model(model_dir)
    on = score_travel_answers(model, tok, test, p, questions, catalog,
                              ground=lambda conversations: ground_all(index, conversations, g.top_k))
    plans, _ = travel_conversations(test, p, questions)
    asked = [plan_request(r)["destinations"] for r in plans] + [q.destinations for q in questions.travel]
    dest_of = {x["id"]: x["dest"] for x in index.passages}
    hits = [sum(dest_of[pid] in want for pid in ids) for ids, want in zip(on["grounding"], asked, strict=True)]
    off_m, on_m = {k: without[k] for k in (*TRAVEL_KEYS, "seed")}, travel_headline(on)
    metrics = {
        "agent": g.agent, "top_k": g.top_k, "without": off_m, "with": on_m,
        "gain": {k: on_m[k] - off_m[k] for k in TRAVEL_KEYS if k != "examples"},
        # retrieval's part: passages about the destination the user asked for (not another one)
        "passages_on_destination": sum(hits) / max(1, sum(len(ids) for ids in on["grounding"])),
    }
    details = {"with": on, "retrieved": [{"destinations": a, "passages": ids}
                                         for a, ids in zip(asked, on["grounding"], strict=True)]}
    return details, metrics
