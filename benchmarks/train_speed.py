"""Benchmark: the pipeline's training against a plain LoRA script, same rows, same run.

Target (issue 4): at least 3x the plain script's trained tokens/s, with a final eval loss no
worse. The plain script is the usual kind: fp32, every row padded to ``max_length``, no
packing, ``Trainer`` defaults, LoRA on every layer, loss on every token. The pipeline is
``train_adapter`` with the phase's params (padding-free batches, loss on assistant tokens,
LoRA on the top layers, bf16 where the hardware has it). Both adapters are then scored by
one function: mean loss on the assistant tokens of the same held-out rows. Each run is a
child process, so peak memory (max RSS) is its own. The guard is off in both: this measures
training, not probing.

    dvc repro mix                          # the base model and the stage-2 splits
    python benchmarks/train_speed.py       # [--phase specialist] [--rows 32] [--val-rows 24]

"Share of peak" divides the model FLOP/s (4 x linear-layer parameters per token: forward,
plus backward to the activations; LoRA computes no weight gradients of the base) by a
matmul rate measured here in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
TARGET_SPEEDUP = 3.0
# the pipeline as configured (padding-free), and with padding-free off (rows grouped by length and
# padded to the longest in the batch), to show what padding-free adds on its own
KINDS = ("plain", "pipeline", "pipeline_padded")


def matmul_tflops(dtype_name: str, n: int = 2048, reps: int = 10) -> float:
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e12


def linear_params(model) -> int:
    import torch

    return sum(m.in_features * m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear))


def plain_script(base: Path, rows: list[dict], out: Path, phase, lora, seed: int) -> dict:
    """What a one-off train.py usually does: pad everything to max_length, fp32, defaults."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from domaintune.records import to_chat

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                             target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
    texts = [tok.apply_chat_template(to_chat(r["messages"]), tools=r.get("tools") or None, tokenize=False)
             for r in rows]
    enc = tok(texts, padding="max_length", max_length=phase.max_length, truncation=True, add_special_tokens=False)
    labels = [[t if m else -100 for t, m in zip(ids, am, strict=True)]
              for ids, am in zip(enc["input_ids"], enc["attention_mask"], strict=True)]
    ds = Dataset.from_dict({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], "labels": labels})
    args = TrainingArguments(output_dir=str(out / "tmp"), per_device_train_batch_size=phase.batch_size,
                             learning_rate=phase.learning_rate, num_train_epochs=1, report_to="none",
                             save_strategy="no", seed=seed, use_cpu=not torch.cuda.is_available())
    trainer = Trainer(model=model, args=args, train_dataset=ds)
    start = time.perf_counter()
    trainer.train()
    runtime = time.perf_counter() - start
    model.save_pretrained(out / "adapter")
    real = sum(map(sum, enc["attention_mask"]))
    return {"runtime_s": runtime, "tokens": real, "processed_tokens": len(rows) * phase.max_length,
            "linear_params": linear_params(model), "precision": "fp32"}


def pipeline(base: Path, rows: list[dict], val: list[dict], out: Path, phase, lora, seed: int,
             padding_free: bool = True) -> dict:
    from transformers import AutoModelForCausalLM

    from domaintune.io import write_jsonl
    from domaintune.training.sft import train_adapter

    write_jsonl(out / "train.jsonl", rows)
    write_jsonl(out / "val.jsonl", val[:4])  # train_adapter's own eval pass is not what is compared
    phase = phase.model_copy(update={"save_steps": 0, "epochs": 1, "max_steps": -1, "padding_free": padding_free,
                                     "eval_steps": 0,
                                     "guard": phase.guard.model_copy(update={"every_steps": 0})})
    m = train_adapter(base, out / "train.jsonl", out / "val.jsonl", out / "adapter", phase, lora, seed, out / "ckpt")
    tokens = m["tokens_per_s"] * m["runtime_s"]
    model = AutoModelForCausalLM.from_pretrained(base)
    # padded: batches padded to their longest row, which train_adapter does not count
    return {"runtime_s": m["runtime_s"], "tokens": round(tokens),
            "processed_tokens": round(tokens) if padding_free else None,
            "linear_params": linear_params(model), "precision": m["precision"],
            "too_long_removed": m["too_long_removed"]}


def assistant_loss(base: Path, adapter: Path, val: list[dict]) -> float:
    """Mean loss over the assistant tokens of ``val``: the same yardstick for both adapters."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from domaintune.modeling.chat_format import tokenize_with_mask

    tok = AutoTokenizer.from_pretrained(base)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter).eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for row in val:
            enc = tokenize_with_mask(tok, row["messages"], row.get("tools"))
            ids = torch.tensor([enc["input_ids"]])
            labels = ids.masked_fill(torch.tensor([enc["assistant_masks"]]) == 0, -100)
            n = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=ids, labels=labels).loss) * n
            count += n
    return total / count


def child(kind: str, cfg: dict) -> None:
    from domaintune.io import read_jsonl
    from domaintune.memory import peak_mem_mb
    from domaintune.params import load_params

    p = load_params(ROOT / "params.yaml")
    phase, lora = getattr(p.train, cfg["phase"]), p.lora_for(cfg["phase"])
    base, out = Path(cfg["base"]), Path(cfg["out"])
    rows, val = read_jsonl(cfg["train"])[: cfg["rows"]], read_jsonl(cfg["val"])[: cfg["val_rows"]]
    if kind == "plain":
        result = plain_script(base, rows, out, phase, lora, p.seed)
    else:
        result = pipeline(base, rows, val, out, phase, lora, p.seed, padding_free=kind == "pipeline")
    result["peak_mem_mb"] = peak_mem_mb()
    result["eval_loss"] = assistant_loss(base, out / "adapter", val)
    (out / "result.json").write_text(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--phase", default="specialist", choices=["instruct", "specialist"])
    ap.add_argument("--rows", type=int, default=32, help="training rows (from the phase's train split)")
    ap.add_argument("--val-rows", type=int, default=24, help="held-out rows both adapters are scored on")
    ap.add_argument("--child", choices=KINDS, help=argparse.SUPPRESS)
    ap.add_argument("--config", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child, json.loads(a.config))
        return

    from domaintune.io import read_jsonl
    from domaintune.params import load_params

    p = load_params(ROOT / "params.yaml")
    base = ROOT / ("models/base" if a.phase == "instruct" else "models/instruct")
    splits = ROOT / "data/processed/splits"
    if not base.is_dir() and a.phase == "specialist":
        base = ROOT / "models/base"  # stage 1 not trained yet: the same model shape, the same cost
    train, val = splits / f"{a.phase}_train.jsonl", splits / f"{a.phase}_val.jsonl"
    for need in (base, train, val):
        if not need.exists():
            sys.exit(f"error: {need.relative_to(ROOT)} is missing: run `dvc repro mix` first")
    # Rows the pipeline would drop as too long would be truncated by the plain script: compare on
    # rows both train on whole.
    limit = getattr(p.train, a.phase).max_length
    with tempfile.TemporaryDirectory() as tmp:
        from transformers import AutoTokenizer

        from domaintune.io import write_jsonl
        from domaintune.modeling.chat_format import tokenize_with_mask

        tok = AutoTokenizer.from_pretrained(base)
        fits = [r for r in read_jsonl(train)
                if len(tokenize_with_mask(tok, r["messages"], r.get("tools"))["input_ids"]) <= limit]
        write_jsonl(Path(tmp) / "train.jsonl", fits)
        results = {}
        for kind in KINDS:
            out = Path(tmp) / kind
            out.mkdir()
            cfg = {"phase": a.phase, "base": str(base), "out": str(out), "train": str(Path(tmp) / "train.jsonl"),
                   "val": str(val), "rows": a.rows, "val_rows": a.val_rows}
            subprocess.run([sys.executable, __file__, "--child", kind, "--config", json.dumps(cfg)], check=True,
                           cwd=ROOT, stdout=subprocess.DEVNULL)
            results[kind] = json.loads((out / "result.json").read_text())

    peaks = {"fp32": matmul_tflops("float32"), "bf16": matmul_tflops("bfloat16")}
    print(f"{a.rows} rows of {a.phase}_train (max_length {limit}); eval on {a.val_rows} held-out rows")
    print(f"peak matmul measured here: fp32 {peaks['fp32']:.2f} TFLOP/s, bf16 {peaks['bf16']:.2f} TFLOP/s")
    print(f"{'':16}{'tokens/s':>10}{'runtime s':>11}{'padded %':>10}{'eval loss':>11}{'peak MB':>9}"
          f"{'% of peak':>11}  precision")
    speed = {}
    for kind, r in results.items():
        speed[kind] = r["tokens"] / r["runtime_s"]
        flops = 4 * r["linear_params"] * speed[kind]
        padded = f"{100 * (1 - r['tokens'] / r['processed_tokens']):.1f}" if r["processed_tokens"] else "-"
        print(f"{kind:16}{speed[kind]:10.1f}{r['runtime_s']:11.1f}{padded:>10}{r['eval_loss']:11.4f}"
              f"{r['peak_mem_mb']:9.0f}{100 * flops / 1e12 / peaks[r['precision']]:11.2f}  {r['precision']}")
    ratio = speed["pipeline"] / speed["plain"]
    no_worse = results["pipeline"]["eval_loss"] <= results["plain"]["eval_loss"]
    print(f"speed-up: {ratio:.2f}x (target >= {TARGET_SPEEDUP:.0f}x: {'met' if ratio >= TARGET_SPEEDUP else 'NOT met'})"
          f"; eval loss {'no worse' if no_worse else 'WORSE'} than the plain script")


if __name__ == "__main__":
    main()
