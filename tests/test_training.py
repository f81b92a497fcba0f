"""Training mechanics on a tiny randomly initialized model of the real architecture (fast)."""

import json
import signal
import subprocess
import sys
import time

import pytest

from domaintune.params import LoraParams, PhaseParams

PHASE = dict(learning_rate=1e-3, epochs=1, max_steps=8, batch_size=2, grad_accum=1, max_length=128,
             warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, scheduler="constant", precision="fp32",
             save_steps=2, log_steps=1)
LORA = dict(r=4, alpha=8, dropout=0.0, target_modules=["q_proj", "v_proj"], top_layers=0)

# Runs train_adapter in a child process; each step sleeps so the test can kill it midway.
CHILD = """
import json, sys, time
import transformers
from domaintune.params import LoraParams, PhaseParams
from domaintune.training.sft import train_adapter
slow = float(sys.argv[2])
step = transformers.Trainer.training_step
def training_step(self, *a, **k):
    time.sleep(slow)
    return step(self, *a, **k)
transformers.Trainer.training_step = training_step
cfg = json.loads(sys.argv[1])
m = train_adapter(cfg["base"], cfg["train"], cfg["val"], cfg["out"], PhaseParams(**cfg["phase"]),
                  LoraParams(**cfg["lora"]), 7, cfg["ckpt"], cfg["live"])
print("METRICS" + json.dumps(m))
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tokenizer):
    from transformers import AutoConfig, AutoModelForCausalLM

    from domaintune.modeling.base import embedded_gguf
    from domaintune.params import load_params

    root = tmp_path_factory.mktemp("tiny")
    gguf = embedded_gguf(load_params().model)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config.update(dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=16))
    AutoModelForCausalLM.from_config(config).save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    rows = [{"id": f"r{i}", "task": "general", "lang": "en", "split": "train",
             "messages": [{"role": "user", "content": f"Say the number {i}."},
                          {"role": "assistant", "content": f"The number is {i}."}]} for i in range(24)]
    for name, part in (("train", rows[:20]), ("val", rows[20:])):
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))
    return root


def child(tiny, root, slow):
    cfg = {"base": str(tiny / "base"), "train": str(tiny / "train.jsonl"), "val": str(tiny / "val.jsonl"),
           "out": str(tiny / "adapter"), "phase": PHASE, "lora": LORA, "ckpt": str(tiny / "ckpt"),
           "live": str(tiny / "live")}
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg), str(slow)], cwd=root,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def test_killed_training_resumes_from_its_last_checkpoint(tiny, root):
    first = child(tiny, root, slow=0.5)
    deadline = time.time() + 300
    # kill as soon as the step-4 checkpoint folder appears: possibly mid-save, the hard case
    while not list((tiny / "ckpt").glob("checkpoint-4")) and time.time() < deadline:
        assert first.poll() is None, first.stdout.read()
        time.sleep(0.1)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert not (tiny / "adapter").exists()  # killed before the end: no adapter that looks complete

    second = child(tiny, root, slow=0.0)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out[-3000:]
    metrics = json.loads(out.split("METRICS", 1)[1])
    assert metrics["resumed_from_step"] in (2, 4) and metrics["steps"] == PHASE["max_steps"]
    assert (tiny / "adapter" / "adapter_model.safetensors").exists()
    # DVCLive's loss curve continues across the restart instead of starting over
    rows = (tiny / "live" / "plots" / "metrics" / "loss.tsv").read_text().splitlines()
    assert rows[0].split("\t") == ["step", "loss"]
    steps = [int(r.split("\t")[0]) for r in rows[1:]]
    assert len(steps) >= PHASE["max_steps"] and steps == sorted(set(steps))


def test_phase_lora_overrides_apply_to_one_phase_only(root):
    from domaintune.params import load_params

    p = load_params(root / "params.yaml")
    spec = p.train.specialist.model_copy(
        update={"lora": p.train.specialist.lora.model_copy(update={"r": 4, "target_modules": ["q_proj"]})})
    p = p.model_copy(update={"train": p.train.model_copy(update={"specialist": spec})})
    assert p.lora_for("specialist").r == 4 and p.lora_for("specialist").target_modules == ["q_proj"]
    assert p.lora_for("specialist").alpha == p.lora.alpha
    assert p.lora_for("instruct") == p.lora
    assert PhaseParams(**PHASE).lora.r is None and LoraParams(**LORA).r == 4


def test_auto_sizing_follows_the_training_set_size():
    from domaintune.training.auto_size import auto_max_length, resolve

    phase = PhaseParams(**{**PHASE, "epochs": "auto", "batch_size": "auto", "max_length": "auto",
                           "warmup_ratio": "auto"})
    lora = LoraParams(**{**LORA, "r": "auto", "alpha": "auto"})
    small_p, small_l, small = resolve(phase, lora, 300, 700, on_gpu=False)
    big_p, big_l, big = resolve(phase, lora, 20000, 700, on_gpu=True)
    assert small_l.r < big_l.r and small_p.epochs > big_p.epochs      # small sets: lower rank, more epochs
    assert (small_l.alpha, big_l.alpha) == (2 * small_l.r, 2 * big_l.r)
    assert (small["warmup_steps"], big["warmup_steps"]) == (30, 50)   # min(0.1 x examples, 50)
    assert small_p.max_length == 700 and small_p.batch_size < big_p.batch_size
    assert set(small) == {"lora_r", "lora_alpha", "epochs", "batch_size", "max_length", "warmup_steps"}
    fixed_p, fixed_l, none = resolve(PhaseParams(**PHASE), LoraParams(**LORA), 300, 700, on_gpu=False)
    assert none == {} and fixed_p == PhaseParams(**PHASE) and fixed_l == LoraParams(**LORA)
    assert auto_max_length([100] * 99 + [5000]) == 128 and auto_max_length([100] * 10 + [300]) == 320


def test_auto_params_train_and_are_recorded(tiny, tmp_path):
    from domaintune.training.sft import train_adapter

    phase = PhaseParams(**{**PHASE, "max_steps": 2, "save_steps": 0, "max_length": "auto", "warmup_ratio": "auto"})
    lora = LoraParams(**{**LORA, "r": "auto"})
    m = train_adapter(tiny / "base", tiny / "train.jsonl", tiny / "val.jsonl", tmp_path / "a", phase, lora, 7,
                      tmp_path / "ckpt")
    assert m["auto"]["lora_r"] == 8 == m["lora_r"] and m["auto"]["warmup_steps"] == 2
    assert 10 < m["auto"]["max_length"] < 128 and m["too_long_removed"] == 0
    config = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert config["r"] == 8


@pytest.mark.parametrize("floor,patience,stops_at", [(0.5, 1, 2), (0.5, 2, 4), (0.0, 1, None)])
def test_forgetting_guard_stops_and_restores_the_last_good_adapter(tiny, tmp_path, root, floor, patience, stops_at):
    from safetensors.torch import load_file

    from domaintune.data.general import build_probes
    from domaintune.training.sft import train_adapter

    probes = build_probes(root / "data/raw/general/probes.yaml", 4, 7, guard=6)
    guard_rows = [r for r in probes if r["split"] == "train"]
    assert len(guard_rows) == 6
    (tmp_path / "guard.jsonl").write_text("".join(json.dumps(r) + "\n" for r in guard_rows))
    guard = {"every_steps": 2, "general_probes": 6, "min_general": floor, "max_drop": 1.0, "max_new_tokens": 4,
             "patience": patience}
    phase = PhaseParams(**{**PHASE, "save_steps": 0, "learning_rate": 5e-2, "guard": guard})
    m = train_adapter(tiny / "base", tiny / "train.jsonl", tiny / "val.jsonl", tmp_path / "a", phase,
                      LoraParams(**LORA), 7, tmp_path / "ckpt", tmp_path / "live", guard_path=tmp_path / "guard.jsonl")
    g = m["guard"]
    assert g["base"]["general"] == 0.0  # a random model knows no capitals
    lora_b = [v for k, v in load_file(tmp_path / "a" / "adapter_model.safetensors").items() if "lora_B" in k]
    if stops_at:  # below the floor at `patience` checks in a row: stop, save the adapter of step 0
        assert g["stopped_at_step"] == stops_at and g["restored_step"] == 0 and m["steps"] == stops_at
        assert all(float(v.abs().max()) == 0.0 for v in lora_b)
    else:
        assert g["stopped_at_step"] is None and m["steps"] == PHASE["max_steps"]
        assert [c["step"] for c in g["checks"]] == [2, 4, 6, 8]
        assert any(float(v.abs().max()) > 0.0 for v in lora_b)
    assert (tmp_path / "live" / "plots" / "metrics" / "guard" / "general.tsv").exists()
