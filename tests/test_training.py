"""Training mechanics on a tiny randomly initialized model of the real architecture (fast)."""

import json
import math
import signal
import subprocess
import sys
import time

import pytest

from domaintune.params import LoraParams, PhaseParams

PHASE = dict(learning_rate=1e-3, epochs=1, max_steps=8, batch_size=2, grad_accum=1, max_length=128,
             warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, scheduler="constant", precision="fp32",
             save_steps=2, log_steps=1, eval_steps=4)
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
import os
os.write(1, ("\\nMETRICS" + json.dumps(m) + "\\n").encode())  # one write: the two ranks' reports never interleave
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model):
    import shutil

    root = tmp_path_factory.mktemp("tiny")
    shutil.copytree(tiny_model, root / "base")
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
    assert steps == list(range(1, PHASE["max_steps"] + 1))  # by global step; none twice, none lost
    evals = (tiny / "live" / "plots" / "metrics" / "eval" / "loss.tsv").read_text().splitlines()[1:]
    assert [int(r.split("\t")[0]) for r in evals] == [4, 8]  # validation loss every eval_steps, by global step


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


def test_padding_free_batches_train_exactly_like_padded_ones(tiny, tmp_path):
    """Rows concatenated into one sequence must not attend to each other: same losses as padding."""
    from domaintune.training.sft import train_adapter

    losses = {}
    for free in (True, False):
        phase = PhaseParams(**{**PHASE, "max_steps": 3, "save_steps": 0, "batch_size": 4, "padding_free": free})
        m = train_adapter(tiny / "base", tiny / "train.jsonl", tiny / "val.jsonl", tmp_path / f"a{free}", phase,
                          LoraParams(**LORA), 7, tmp_path / f"ckpt{free}")
        assert m["padding_free"] is free
        losses[free] = (m["train_loss"], m["eval_loss"])
    assert losses[True] == pytest.approx(losses[False], rel=1e-4)


def test_qlora_trains_on_4bit_weights_and_merges_into_full_precision(tiny, tmp_path):
    import torch
    from bitsandbytes.nn import Linear4bit
    from safetensors.torch import load_file

    from domaintune.modeling.merge import merge_adapter
    from domaintune.training.model_loading import load_for_training
    from domaintune.training.sft import train_adapter

    quantized = load_for_training(tiny / "base", "4bit", bf16=False, gradient_checkpointing=True)
    assert isinstance(quantized.model.layers[0].self_attn.q_proj, Linear4bit)
    assert quantized.config.quantization_config.bnb_4bit_quant_type == "nf4"
    assert quantized.config.quantization_config.bnb_4bit_use_double_quant is True

    phase = PhaseParams(**{**PHASE, "max_steps": 3, "save_steps": 0, "learning_rate": 1e-2,
                           "quantization": "4bit", "gradient_checkpointing": True})
    m = train_adapter(tiny / "base", tiny / "train.jsonl", tiny / "val.jsonl", tmp_path / "a", phase,
                      LoraParams(**LORA), 7, tmp_path / "ckpt")
    assert m["quantization"] == "4bit" and m["steps"] == 3 and math.isfinite(m["train_loss"])

    merge_adapter(tiny / "base", tmp_path / "a", tmp_path / "merged")
    config = json.loads((tmp_path / "merged" / "config.json").read_text())
    assert "quantization_config" not in config
    base = load_file(tiny / "base" / "model.safetensors")
    merged = load_file(tmp_path / "merged" / "model.safetensors")
    adapter = load_file(tmp_path / "a" / "adapter_model.safetensors")
    key = "model.layers.0.self_attn.q_proj"
    a, b = (adapter[f"base_model.model.{key}.lora_{x}.weight"].float() for x in "AB")
    assert merged[f"{key}.weight"].dtype == torch.float32
    assert float(b.abs().max()) > 0  # the adapter trained
    # merged = full-precision base + scale * B @ A, not a re-quantized base
    expected = base[f"{key}.weight"] + (LORA["alpha"] / LORA["r"]) * b @ a
    assert torch.allclose(merged[f"{key}.weight"], expected, atol=1e-6)


def test_ddp_launch_trains_on_two_cpu_processes_and_saves_one_adapter(tiny, tmp_path, root):
    """The real `accelerate launch` with configs/accelerate/ddp.yaml: 2 processes over gloo."""
    from domaintune.params import LaunchParams
    from domaintune.training.launch import launch_command

    script = tmp_path / "child.py"
    script.write_text(CHILD)
    cfg = {"base": str(tiny / "base"), "train": str(tiny / "train.jsonl"), "val": str(tiny / "val.jsonl"),
           "out": str(tmp_path / "adapter"), "phase": {**PHASE, "save_steps": 4}, "lora": LORA,
           "ckpt": str(tmp_path / "ckpt"), "live": str(tmp_path / "live")}
    cmd = launch_command(LaunchParams(strategy="ddp", num_processes=2), [str(script), json.dumps(cfg), "0"])
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=600,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    # raw_decode: the other rank's progress output may follow the report on its line
    reports = [json.JSONDecoder().raw_decode(line.split("METRICS", 1)[1])[0]
               for line in proc.stdout.splitlines() if "METRICS" in line]
    assert len(reports) == 2  # both processes finished train_adapter
    ranks = reports[0]["ranks"]
    assert reports[0]["world_size"] == 2 and sorted(r["rank"] for r in ranks) == [0, 1]
    assert all(r["steps"] == PHASE["max_steps"] for r in ranks)  # both ranks trained every step
    assert ranks[0]["lora_sha256"] == ranks[1]["lora_sha256"]  # DDP kept their weights in sync
    saved = sorted(p.name for p in (tmp_path / "adapter").iterdir())
    assert "adapter_model.safetensors" in saved and "training_args.bin" not in saved
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".adapter")]  # no second, half-moved copy


def test_full_fine_tune_trains_only_the_top_layers_and_merges_them_over_the_base(tiny, tmp_path):
    import torch
    from safetensors.torch import load_file

    from domaintune.modeling.merge import merge_adapter
    from domaintune.training.sft import train_adapter

    phase = PhaseParams(**{**PHASE, "method": "full", "max_steps": 3, "save_steps": 0, "learning_rate": 1e-3})
    m = train_adapter(tiny / "base", tiny / "train.jsonl", tiny / "val.jsonl", tmp_path / "a", phase,
                      LoraParams(**{**LORA, "top_layers": 1}), 7, tmp_path / "ckpt")
    assert m["method"] == "full" and m["lora_r"] is None and m["steps"] == 3
    delta = load_file(tmp_path / "a" / "delta.safetensors")
    assert delta and all(k.startswith("model.layers.1.") for k in delta)  # the top one of two layers only
    assert m["trainable_params"] == sum(t.numel() for t in delta.values())
    merge_adapter(tiny / "base", tmp_path / "a", tmp_path / "merged")
    base = load_file(tiny / "base" / "model.safetensors")
    merged = load_file(tmp_path / "merged" / "model.safetensors")
    key = "model.layers.1.self_attn.q_proj.weight"
    assert not torch.equal(merged[key], base[key]) and torch.equal(merged[key], delta[key])
    frozen = "model.layers.0.self_attn.q_proj.weight"
    assert torch.equal(merged[frozen], base[frozen])


def test_a_delta_for_another_model_is_refused_at_merge(tiny, tmp_path):
    import torch
    from safetensors.torch import save_file

    from domaintune.modeling.merge import merge_adapter

    (tmp_path / "a").mkdir()
    save_file({"model.layers.7.mlp.up_proj.weight": torch.zeros(2, 2)}, tmp_path / "a" / "delta.safetensors")
    with pytest.raises(ValueError, match="does not have"):
        merge_adapter(tiny / "base", tmp_path / "a", tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_compact_lm_head_projects_only_labelled_positions_with_the_same_loss_and_gradients(tiny, monkeypatch):
    """TRL's fused head on the CPU projects every position; inside compact_lm_head only the labelled
    ones, and the loss and gradients are the same. The switch is restored afterwards."""
    import torch
    import trl.trainer.utils as trl_utils
    from transformers import AutoModelForCausalLM

    from domaintune.training.lm_head import compact_lm_head

    model = AutoModelForCausalLM.from_pretrained(tiny / "base", dtype=torch.float32)
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
    projected = []
    real = trl_utils._ChunkedLogProbFunction.apply

    def counting(hidden, *args):  # the real kernel, with the number of positions it projects noted
        projected.append(hidden.shape[0])
        return real(hidden, *args)

    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply", counting)
    ids = torch.randint(0, 1000, (1, 24), generator=torch.Generator().manual_seed(0))
    labels = ids.clone()
    labels[:, :16] = -100  # a prompt of 16 tokens, an answer of 8

    def loss_and_grad():
        model.zero_grad()
        out = model(input_ids=ids, labels=labels, fused_lm_head=True)
        out.loss.backward()
        return out.loss.item(), model.model.layers[-1].mlp.down_proj.weight.grad.clone()

    switch = trl_utils._use_triton
    every_loss, every_grad = loss_and_grad()
    with compact_lm_head("cpu") as applied:
        compact_loss, compact_grad = loss_and_grad()
    assert applied and trl_utils._use_triton is switch
    assert projected == [23, 8]  # every shifted position, then the 8 that predict an answer token
    assert compact_loss == pytest.approx(every_loss, rel=1e-5)
    assert torch.allclose(compact_grad, every_grad, atol=1e-6)
    with compact_lm_head("cuda") as applied:
        assert not applied and trl_utils._use_triton is switch
