"""End to end: the real `dvc repro` on a copy of the repo with smoke-sized params, then a real
`dvc exp run -S lora.r=...` that must re-run only what depends on the rank."""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import yaml

pytestmark = pytest.mark.e2e

SMOKE = {
    "data.general.max_examples": 60, "data.general.probes": 12,
    "data.travel.examples": 20, "data.tools.examples": 20,
    "data.intents.examples_per_intent": 4, "data.intents.test_examples_per_intent": 2,
    "mix.instruct_examples": 16, "mix.specialist_examples": 32,
    "lora.r": 4,
    "train.instruct.max_steps": 2, "train.instruct.batch_size": 4,
    "train.specialist.max_steps": 2, "train.specialist.batch_size": 4,
    "eval.intent_examples": 6, "eval.probe_examples": 6, "eval.batch_size": 8,
    "eval.max_new_tokens": 8, "eval.latency_queries": 2,
}


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
    params = yaml.safe_load((dst / "params.yaml").read_text())
    for dotted, value in SMOKE.items():
        node = params
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "smoke"]):
        subprocess.run(cmd, cwd=dst, check=True)
    run([sys.executable, "-m", "dvc", "repro"], dst)
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
    adapter = json.loads((repo / "models/adapters/specialist/adapter_config.json").read_text())
    assert adapter["r"] == 4


def test_every_metrics_file_holds_finite_numbers(repo):
    names = ["data", "train_instruct", "train_specialist", "intent", "retention", "latency"]
    for name in names:
        metrics = json.loads((repo / "metrics" / f"{name}.json").read_text())
        numbers = list(finite_numbers(metrics))
        assert numbers, name
        assert all(math.isfinite(x) for x in numbers), name
    intent = json.loads((repo / "metrics/intent.json").read_text())
    assert {"accuracy", "macro_f1", "json_valid_rate", "ece", "per_intent", "per_language", "base", "instruct",
            "scored"} <= intent.keys()
    assert intent["scored"]["json_valid_rate"] == 1.0  # label scoring always answers in the schema
    latency = json.loads((repo / "metrics/latency.json").read_text())
    assert latency["classify_mode"] == "label_scoring"
    assert latency["classify_p50_ms"] < latency["generate_classify_p50_ms"]  # one pass against a decode loop
    for plot in ("confusion", "confusion_scored", "reliability_generate", "reliability_scored"):
        assert (repo / "plots" / f"{plot}.csv").read_text().count("\n") >= 2, plot
    data = json.loads((repo / "metrics/data.json").read_text())
    assert {"examples", "mix", "duplicates_removed", "tokens"} <= data.keys()
    assert data["tokens"]["p50"] <= data["tokens"]["p95"] <= data["tokens"]["max"]
    retention = json.loads((repo / "metrics/retention.json").read_text())
    assert {"base", "final", "retention"} <= retention.keys()
    shown = run([sys.executable, "-m", "dvc", "metrics", "show", "--json"], repo)
    for name in ("intent", "retention", "latency"):
        assert f"metrics/{name}.json" in shown


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


def test_exp_run_changes_rank_and_launch_and_reruns_only_training(repo):
    """`dvc exp run` with a new rank, trained as 2 DDP processes through `accelerate launch`."""
    out = run([sys.executable, "-m", "dvc", "exp", "run", "-S", "lora.r=8", "-S", "train.launch.strategy=ddp",
               "-S", "train.launch.num_processes=2"], repo)
    for skipped in ("prepare_base", "build@general", "build@intents", "mix", "evaluate@base"):
        assert f"Running stage '{skipped}'" not in out, out[-3000:]
    for rerun in ("train@instruct", "merge@instruct", "evaluate@instruct", "train@specialist",
                  "evaluate@specialist"):
        assert f"Running stage '{rerun}'" in out, out[-3000:]
    for phase in ("instruct", "specialist"):
        adapter = json.loads((repo / f"models/adapters/{phase}/adapter_config.json").read_text())
        assert adapter["r"] == 8
        metrics = json.loads((repo / f"metrics/train_{phase}.json").read_text())
        assert metrics["world_size"] == 2 and len({r["lora_sha256"] for r in metrics["ranks"]}) == 1
