"""End to end: the real `dvc repro` on a copy of the repo with smoke-sized params, then a real
`dvc exp run -S lora.r=...` that must re-run only what depends on the rank."""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from domaintune.pr_metrics import apply_overrides, commit_all, metrics_diff_md

pytestmark = pytest.mark.e2e

SMOKE = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "smoke.yaml").read_text())


def run(cmd, cwd, timeout=1200):
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert proc.returncode == 0, f"{cmd} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout + proc.stderr


def finite_numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from finite_numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from finite_numbers(v)
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield obj


@pytest.fixture(scope="module")
def repo(tmp_path_factory, root):
    dst = tmp_path_factory.mktemp("clone") / "repo"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True)
    for rel in filter(None, files.stdout.split("\0")):
        if rel.startswith("metrics/"):
            continue  # a fresh run must produce its own metrics
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dst / rel)
    apply_overrides(dst / "params.yaml", SMOKE)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "smoke"]):
        subprocess.run(cmd, cwd=dst, check=True)
    run([sys.executable, "-m", "dvc", "repro"], dst, timeout=1800)  # ~10 min alone; a limit, not a target
    return dst


def test_repro_builds_a_loadable_merged_model(repo):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = repo / "models" / "specialist"
    assert (path / "model.safetensors").exists() and not list(path.glob("*.bin"))
    model = AutoModelForCausalLM.from_pretrained(path)
    tok = AutoTokenizer.from_pretrained(path)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Hello"}], tokenize=False, add_generation_prompt=True)
    enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]
    adapter = json.loads((repo / "models/adapters/instruct/adapter_config.json").read_text())
    assert adapter["r"] == 4
    # stage 2 is a full fine-tune of the top layers: only their tensors are kept
    from safetensors import safe_open
    with safe_open(repo / "models/adapters/specialist/delta.safetensors", "pt") as f:
        assert f.keys() and all(k.startswith("model.layers.") for k in f.keys())


def test_every_metrics_file_holds_finite_numbers(repo):
    names = ["data", "train_instruct", "train_specialist", "intent", "retention", "latency", "tools", "travel"]
    for name in names:
        metrics = json.loads((repo / "metrics" / f"{name}.json").read_text())
        numbers = list(finite_numbers(metrics))
        assert numbers, name
        assert all(math.isfinite(x) for x in numbers), name
    intent = json.loads((repo / "metrics/intent.json").read_text())
    assert {"accuracy", "macro_f1", "json_valid_rate", "ece", "per_intent", "per_language", "base", "instruct",
            "scored", "scored_gain"} <= intent.keys()
    # base and stage 1 ran eval.reference_tasks: label scoring, not free generation
    assert intent["base"].keys() <= {"scored", "scored_lm"} and "accuracy" in intent["instruct"]["scored"]
    assert intent["scored"]["json_valid_rate"] == 1.0  # label scoring always answers in the schema
    # the baselines and the served chain, on the same rows, beside the model
    assert {"tfidf", "keywords"} <= intent["baselines"].keys() and 0 <= intent["chain"]["accuracy"] <= 1
    assert math.isclose(intent["scored_minus_tfidf"], intent["scored"]["accuracy"] - intent["baselines"]["tfidf"][
        "accuracy"])
    assert (repo / "models/tfidf/tfidf_weights.safetensors").exists()
    # label scoring read the intent head fitted on the intent training rows; the LM head alone is kept beside it
    fit = json.loads((repo / "models/intent_head/specialist/fit.json").read_text())
    assert fit["enabled"] and fit["rows"] > 0 and (repo / "models/intent_head/specialist/head.safetensors").exists()
    assert intent["scored"]["head"] is True and 0 <= intent["scored_lm"]["accuracy"] <= 1
    # the TF-IDF blend's weight was chosen on the calibration rows among every candidate; a blended head
    # carries its classifier, and evaluate reports the head alone beside the blend
    assert [t["weight"] for t in fit["text_weights"]] == [0.0, 0.5, 1.0, 2.0, 4.0] and fit["calibration_rows"] > 0
    blended = fit["text_weight"] > 0
    assert (repo / "models/intent_head/specialist/tfidf/tfidf_weights.safetensors").exists() == blended
    assert ("scored_head" in intent) == blended and intent["scored"].get("text_weight", 0.0) == fit["text_weight"]
    # the temperature fitted on the calibration split is the one the test rows were scored with
    calibration = intent["calibration"]
    assert calibration["fitted"] and calibration["rows"] >= 12 and calibration["temperature"] > 0
    assert intent["scored"]["temperature"] == calibration["temperature"]
    assert calibration["nll"]["after"] <= calibration["nll"]["before"] + 1e-9
    assert {"with_default_intent", "calibration_split"} <= intent["chain"].keys()
    latency = json.loads((repo / "metrics/latency.json").read_text())
    assert latency["classify_mode"] == "label_scoring"
    assert latency["classify_p50_ms"] < latency["generate_classify_p50_ms"]  # one pass against a decode loop
    # timed as served: the configuration is named, and the micro-batches were timed too
    from domaintune.modeling.cpu_inference import resolve
    # serve.inference: auto is bf16 on a CPU with AMX, fp32 on one without
    # and with the temperature the calibrate stage fitted (serve.calibration)
    assert latency["served"] == {"inference": resolve("auto"), "compile": False, "batch_max": 8,
                                 "temperature": intent["calibration"]["temperature"], "intent_head": True}
    assert latency["classify_queries"] == 16 and latency["classify_batched_per_s"] > 0
    for plot in ("confusion", "confusion_scored", "reliability_generate", "reliability_scored"):
        assert (repo / "plots" / f"{plot}.csv").read_text().count("\n") >= 2, plot
    data = json.loads((repo / "metrics/data.json").read_text())
    assert {"examples", "mix", "duplicates_removed", "tokens"} <= data.keys()
    assert data["tokens"]["p50"] <= data["tokens"]["p95"] <= data["tokens"]["max"]
    retention = json.loads((repo / "metrics/retention.json").read_text())
    assert {"base", "final", "retention", "perplexity", "ci95", "probes"} <= retention.keys()
    assert retention["examples"] == 12 and retention["ci95"][0] <= retention["retention"] <= retention["ci95"][1]
    assert retention["perplexity"]["base"] > 1 and retention["perplexity"]["tokens"] > 0
    tools = json.loads((repo / "metrics/tools.json").read_text())
    assert {"call_valid_rate", "name_accuracy", "args_accuracy", "no_call_accuracy"} <= tools.keys()
    assert "base" not in tools  # not in eval.reference_tasks
    travel = json.loads((repo / "metrics/travel.json").read_text())
    assert {"budget_consistent_rate", "named_places_mean", "followup_rate", "seed"} <= travel.keys()
    timings = {name: json.loads((repo / f"evals/{name}.json").read_text())["seconds"]
               for name in ("base", "instruct", "specialist")}
    assert "travel" in timings["specialist"] and "travel" not in timings["base"] and "choices" in timings["base"]
    # stage 1 ran eval.instruct_tasks: no multiple-choice items, so no retention figure of its own
    assert "choices" not in timings["instruct"] and "instruct" not in retention and "instruct" in retention["probes"]
    assert travel["examples"] == 2 and travel["seed"]["requests"] == 5
    shown = run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], repo)
    for name in ("intent", "retention", "latency", "tools", "travel"):
        assert f"metrics/{name}.json" in shown


def test_agents_train_and_report_under_their_names(repo):
    """Both agents of params.yaml ran as their own stages on smoke params: a chat agent (text phase,
    then chat SFT, from the specialist) and an embedding agent (contrastive, from the bundled MiniLM)."""
    persona = json.loads((repo / "metrics/agents/persona.json").read_text())
    retrieval = json.loads((repo / "metrics/agents/retrieval.json").read_text())
    for m in (persona, retrieval):
        assert m["enabled"] is True and all(math.isfinite(x) for x in finite_numbers(m))
    assert persona["training"]["text"]["steps"] == 2 and persona["training"]["chat"]["steps"] == 2
    assert persona["base"]["perplexity_heldout_passages"] > 1 and 0 <= persona["agent"]["style_share"] <= 1
    assert persona["retention"]["examples"] == 12 and persona["tools"]["examples"] == 2
    assert persona["data"]["dropped"]["twain/huckleberry_finn.txt"]["headings"] == 10
    assert (repo / "models/agents/persona/model.safetensors").exists()
    assert retrieval["training"]["steps"] == 2 and retrieval["base"]["index_passages"] == 1842
    assert 0 < retrieval["base"]["recall@5"] <= 1 and "mrr@10" in retrieval["trained"]
    assert (repo / "models/agents/retrieval/model.safetensors").exists()
    # the retrieval agent in use: the specialist's travel answers with its passages, beside those without
    grounding = json.loads((repo / "metrics/grounding.json").read_text())
    travel = json.loads((repo / "metrics/travel.json").read_text())
    assert grounding["enabled"] is True and grounding["agent"] == "retrieval" and grounding["top_k"] == 3
    assert grounding["without"]["seed"] == travel["seed"] and grounding["with"]["examples"] == travel["examples"] == 2
    assert 0 <= grounding["passages_on_destination"] <= 1 and grounding["with"]["seed"]["requests"] == 5
    retrieved = json.loads((repo / "evals/grounding.json").read_text())["retrieved"]
    assert len(retrieved) == 7 and all(len(r["passages"]) == 3 for r in retrieved)
    shown = run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], repo)
    assert all(f"metrics/{m}.json" in shown for m in ("agents/persona", "agents/retrieval", "grounding"))
    # a change to one agent's params touches that agent's stages and nothing else
    params = (repo / "params.yaml").read_text()
    apply_overrides(repo / "params.yaml", {"agents.retrieval.train.learning_rate": 1.0e-4})
    try:
        status = run([sys.executable, "-m", "dvc", "status"], repo)
    finally:
        (repo / "params.yaml").write_text(params)
    changed = sorted(line.rstrip(":") for line in status.splitlines() if line and not line[0].isspace())
    assert changed == ["agent_data@retrieval", "agent_evaluate@retrieval", "agent_train@retrieval"], status


def test_report_shows_three_models_side_by_side(repo):
    report = (repo / "reports/comparison.md").read_text()
    lines = report.splitlines()
    # a table per general question with all three; travel requests only the final model was asked
    assert lines.count("| base | stage 1 | final |") == 6 and lines.count("| final |") == 5
    assert "| intent accuracy (free generation) |" in report
    for question in ("Japan honeymoon", "Kerala backwaters", "capital of Australia", "156 x 23", "haiku"):
        assert question in report


def test_data_stages_rebuild_byte_identical(repo):
    """Same params, same bytes: forcing every data stage again changes no output."""
    import hashlib

    def digests():
        return {p.relative_to(repo): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted((repo / "data" / "processed").rglob("*")) if p.is_file()}

    before = digests()
    assert len(before) >= 13
    out = run([sys.executable, "-m", "dvc", "repro", "-f", "-s", "build@general", "build@travel",
               "build@intents", "build@tools", "mix"], repo)
    assert "Running stage 'mix'" in out
    assert digests() == before


def test_nothing_to_do_after_repro(repo):
    out = run([sys.executable, "-m", "dvc", "status"], repo)
    assert "changed" not in out and "modified" not in out, out


def sha256(path):
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_teammate_restores_from_remote_instead_of_retraining(repo, tmp_path):
    """Push outputs and run cache to a shared remote; a fresh clone pulls them, `dvc repro` has nothing
    to do, and even with dvc.lock gone every stage comes back from the run cache, nothing retrained."""
    remote = tmp_path / "remote"
    run([sys.executable, "-m", "dvc", "remote", "add", "-d", "shared", str(remote)], repo)
    commit_all(repo, "results")
    run([sys.executable, "-m", "domaintune.run_cache", "push"], repo)
    clone = tmp_path / "teammate"
    subprocess.run(["git", "clone", "-q", str(repo), str(clone)], check=True)
    run([sys.executable, "-m", "domaintune.run_cache", "pull"], clone)
    for f in ("models/specialist/model.safetensors", "models/adapters/specialist/delta.safetensors",
              "data/processed/splits/test.jsonl"):
        assert sha256(clone / f) == sha256(repo / f), f
    assert "Data and pipelines are up to date" in run([sys.executable, "-m", "dvc", "repro"], clone)
    # Without the lock file DVC cannot know the outputs are current: the run cache does.
    (clone / "dvc.lock").unlink()
    out = run([sys.executable, "-m", "dvc", "repro"], clone)
    ran = [line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")]
    # report's output is `cache: false` (a file kept in git), which opts a stage out of the run cache
    assert ran == ["report"] and out.count("skipping run") >= 13, out[-3000:]
    assert sha256(clone / "models/specialist/model.safetensors") == sha256(repo / "models/specialist/model.safetensors")


def test_eval_param_reruns_only_evaluation_and_metrics_diff_shows_it(repo):
    """Two commits with different params; `dvc metrics diff --md` between them is the PR table."""
    before = commit_all(repo, "before")
    apply_overrides(repo / "params.yaml", {"eval.choices_examples": 8})
    out = run([sys.executable, "-m", "dvc", "repro"], repo)
    ran = sorted(line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage"))
    # and the persona's evaluation, whose retention is scored on the base's items (not the retrieval agent's)
    assert ran == ["agent_evaluate@persona", "evaluate@base", "evaluate@instruct", "evaluate@specialist", "report",
                   "summarize"], ran
    after = commit_all(repo, "fewer retention items")
    table = metrics_diff_md(repo, before, after)
    assert table.startswith("| Path") and "| Metric" in table and "| Change" in table, table
    row = next(line for line in table.splitlines() if "metrics/retention.json" in line and "| examples " in line)
    assert "| 12 " in row and "| 8 " in row and "| -4 " in row, row
    run([sys.executable, "-m", "dvc", "plots", "diff", before, after, "-o", "plots-diff"], repo)
    assert (repo / "plots-diff" / "index.html").exists()


def test_queued_grid_lists_every_combination(repo):
    run([sys.executable, "-m", "dvc", "exp", "run", "--queue", "-S", "lora.r=4,8",
         "-S", "train.specialist.learning_rate=1e-4,2e-4"], repo)
    status = run([sys.executable, "-m", "dvc", "queue", "status"], repo)
    assert status.count("Queued") == 4, status
    run([sys.executable, "-m", "dvc", "queue", "remove", "--queued"], repo)


def test_exp_run_changes_rank_and_launch_and_reruns_only_training(repo):
    """`dvc exp run` with a new rank, trained as 2 DDP processes through `accelerate launch`."""
    out = run([sys.executable, "-m", "dvc", "exp", "run", "-S", "lora.r=8", "-S", "train.launch.strategy=ddp",
               "-S", "train.launch.num_processes=2"], repo)
    for skipped in ("prepare_base", "build@general", "build@intents", "mix", "evaluate@base"):
        assert f"Running stage '{skipped}'" not in out, out[-3000:]
    for rerun in ("train@instruct", "merge@instruct", "evaluate@instruct", "train@specialist",
                  "evaluate@specialist"):
        assert f"Running stage '{rerun}'" in out, out[-3000:]
    adapter = json.loads((repo / "models/adapters/instruct/adapter_config.json").read_text())
    assert adapter["r"] == 8
    for phase in ("instruct", "specialist"):  # LoRA weights or the fully trained layers: equal on both ranks
        metrics = json.loads((repo / f"metrics/train_{phase}.json").read_text())
        assert metrics["world_size"] == 2 and len({r["lora_sha256"] for r in metrics["ranks"]}) == 1
