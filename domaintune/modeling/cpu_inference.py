"""Inference-only variants of a loaded model for CPU serving: same weights, cheaper matmuls.

A 135M model classifying a 25-token query is bound by reading its weights (540 MB in fp32), so
halving or quartering their size is what moves single-query latency on a CPU.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Literal

import torch

Variant = Literal["auto", "fp32", "bf16", "int8"]


def resolve(variant: Variant) -> Variant:
    """``auto``: bf16 where the hardware runs it natively (CUDA with bf16, CPUs with AMX), else fp32."""
    if variant != "auto":
        return variant
    from domaintune.training.precision import use_bf16

    return "bf16" if use_bf16("auto") else "fp32"


def for_inference(model: torch.nn.Module, variant: Variant) -> torch.nn.Module:
    """A copy of ``model`` in ``variant``: bf16 weights, or int8 dynamic quantization of every
    ``nn.Linear`` (weights int8, activations quantized per batch; embeddings and norms stay fp32)."""
    variant = resolve(variant)
    if variant == "fp32":
        return model
    if variant == "bf16":
        return copy.deepcopy(model).to(torch.bfloat16).eval()
    if variant == "int8":
        from torch.ao.quantization import quantize_dynamic

        # The tied LM head is an nn.Linear too: it is quantized, the embedding it shares stays fp32.
        return quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8).eval()
    raise ValueError(f"unknown inference variant {variant!r}: use fp32, bf16 or int8")


def compiled(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` compiled by TorchInductor for repeated short forwards (label scoring): shapes are
    dynamic (query and cache lengths vary). Sharing ``model``'s weights, so the eager module stays
    usable (generation keeps it). Compiling takes minutes on a small CPU.

    Weights stay graph inputs (no freezing, no oneDNN weight prepacking), because both make the
    compiled graph uncacheable: Inductor bypasses its FX graph cache for prepacked mkldnn
    tensors, and AOTAutograd's cache refuses frozen graphs. A restart could then never skip
    compilation (:class:`CompileCache`)."""
    import torch._inductor.config as inductor

    inductor.freezing = False  # process-wide settings
    inductor.cpp.weight_prepack = False
    return torch.compile(model, dynamic=True)


class CompileCache:
    """Compiled artifacts kept across restarts, so only the first start with ``serve.compile``
    pays for compilation (minutes on 2 cores).

    Two layers, both torch's own: Inductor's on-disk cache (generated kernels and their built
    shared objects) is pointed at ``<dir>/inductor`` instead of /tmp, and the portable "mega
    cache" (``torch.compiler.save_cache_artifacts``) is written to ``<dir>/<key>.bin`` and
    loaded before compiling. The key covers the weights, the precision, torch's version and the
    machine, so a retrained model or another torch never loads stale kernels.
    """

    def __init__(self, directory: str | Path, model_dir: str | Path, variant: str):
        import hashlib
        import platform

        self.dir = Path(directory)
        h = hashlib.sha256(f"{torch.__version__}|{variant}|{platform.machine()}|{platform.processor()}".encode())
        for name in ("config.json", "model.safetensors"):
            with open(Path(model_dir) / name, "rb") as f:
                while chunk := f.read(1 << 24):
                    h.update(chunk)
        self.file = self.dir / f"{h.hexdigest()[:20]}.bin"

    def load(self) -> bool:
        """Point Inductor at the kept cache and hot-load the saved artifacts; False when none."""
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str((self.dir / "inductor").resolve())
        if not self.file.is_file():
            return False
        torch.compiler.load_cache_artifacts(self.file.read_bytes())
        return True

    def save(self) -> None:
        saved = torch.compiler.save_cache_artifacts()
        if saved is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.file.with_suffix(".tmp")
        tmp.write_bytes(saved[0])
        tmp.replace(self.file)
