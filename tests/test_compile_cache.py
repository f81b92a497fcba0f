"""serve.compile with a compile cache: the second start finds the compiled graphs the first
one built (fresh processes, as a restart is), and answers the same."""

import json
import subprocess
import sys

SCRIPT = """
import json, sys
from domaintune.data.intents import SYSTEM_PROMPT
from domaintune.evaluation.label_scoring import LabelScorer
from domaintune.records import INTENTS
from domaintune.serving.engine import ModelEngine
e = ModelEngine(sys.argv[1], "fp32", compile_scoring=True, batch_max=2, compile_cache=sys.argv[2])
texts = ["selam naber", "Where can I eat good sushi in Rome?", "Wie wird das Wetter morgen in Berlin?"]
print(json.dumps({**e.describe(), "answers": [e.scorer.classify(t) for t in texts],
                  "served": [e.classify(t, 60) for t in texts],
                  "eager": [LabelScorer(e.model, e.tok, list(INTENTS), SYSTEM_PROMPT).classify(t) for t in texts]}))
"""


def _start(root, model, cache) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(model), str(cache)], cwd=root, capture_output=True,
                         text=True, timeout=1200, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin",
                                                       "HOME": str(cache.parent)})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_restart_reuses_the_compile_cache(tiny_model, tmp_path, root):
    cache = tmp_path / "compile_cache"
    first = _start(root, tiny_model, cache)
    assert "compile_error" not in first and first["compile"] is True
    assert first["cache_loaded"] is False and first["fxgraph_cache_misses"] > 0
    assert list(cache.glob("*.bin")) and (cache / "inductor").is_dir()  # kept beside, not in /tmp
    second = _start(root, tiny_model, cache)
    assert second["cache_loaded"] is True
    assert second["fxgraph_cache_misses"] == 0 and second["fxgraph_cache_hits"] > 0  # nothing rebuilt
    for a, b in zip(first["answers"], second["answers"], strict=True):
        assert a["primary_intent"] == b["primary_intent"] and abs(a["confidence"] - b["confidence"]) < 1e-4
    # compiled and eager label scoring agree, and the micro-batcher serves the compiled scorer
    for compiled, eager, served in zip(second["answers"], second["eager"], second["served"], strict=True):
        assert compiled["primary_intent"] == eager["primary_intent"] == served["primary_intent"]
        assert abs(compiled["confidence"] - eager["confidence"]) < 1e-3
