"""Write a merged Llama-architecture model as GGUF, for llama.cpp, Ollama and LM Studio.

llama.cpp's own converter (``convert_hf_to_gguf.py``) is not on PyPI and pulls in its whole
repository; its writer, ``gguf`` (gguf-py, pinned in requirements.txt), is. So the model-side
half is here, for the one architecture the pipeline ships (Llama: SmolLM2, Llama 3.x): the
metadata keys, the tensor names (gguf's own name map), the Q/K row permutation llama.cpp's
rotary kernels expect, and the byte-level BPE tokenizer with its chat template. Quantization
(Q8_0) is gguf-py's. Anything else is refused with the architecture's name rather than written
wrong; :func:`verify` reads a file back through transformers' GGUF loader and compares it with
the safetensors model it came from.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import gguf
import numpy as np
from safetensors import safe_open

log = logging.getLogger(__name__)

FILE_TYPES = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
              "f32": gguf.LlamaFileType.ALL_F32}
SUPPORTED = {"LlamaForCausalLM"}


class ExportError(ValueError):
    """The model cannot be exported (architecture, files): the message says which and why."""


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF's rotary layout (halves) to llama.cpp's (interleaved pairs), per head: as llama.cpp's
    converter does for q_proj (n_head) and k_proj (n_head_kv); transformers' loader undoes it."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _tokenizer(writer: gguf.GGUFWriter, model_dir: Path, n_vocab: int) -> None:
    spec = json.loads((model_dir / "tokenizer.json").read_text())
    if spec["model"]["type"] != "BPE":
        raise ExportError(f"{model_dir}/tokenizer.json: a {spec['model']['type']} tokenizer; only byte-level BPE "
                          "(gpt2-style, as SmolLM2 and Llama 3 use) is exported")
    tokens = {i: t for t, i in spec["model"]["vocab"].items()}
    control = set()
    for added in spec.get("added_tokens", []):
        tokens[added["id"]] = added["content"]
        if added.get("special"):
            control.add(added["id"])
    missing = [i for i in range(n_vocab) if i not in tokens]
    if missing:
        raise ExportError(f"{model_dir}/tokenizer.json: no token for ids {missing[:5]} (vocab_size {n_vocab})")
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm" if "smollm" in str(spec.get("pre_tokenizer", "")).lower() else "default")
    writer.add_token_list([tokens[i] for i in range(n_vocab)])
    writer.add_token_types([gguf.TokenType.CONTROL if i in control else gguf.TokenType.NORMAL
                            for i in range(n_vocab)])
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=n_vocab)  # merges, bos/eos/pad ids, template
    if not special.merges:
        raise ExportError(f"{model_dir}/tokenizer.json: no BPE merges found")
    if special.chat_template is None:
        template = model_dir / "chat_template.jinja"  # transformers 5 saves it beside tokenizer_config.json
        if not template.is_file():
            raise ExportError(f"{model_dir}: no chat template; a GGUF without one makes local runtimes guess")
        special.chat_template = template.read_text()
    special.add_to_gguf(writer)


def export_gguf(model_dir: str | Path, out: str | Path, file_type: str, name: str = "domaintune") -> Path:
    """``model_dir`` (a saved causal LM: config.json, model.safetensors, tokenizer.json) as one GGUF
    file of ``file_type`` (f16, q8_0 or f32). Written to a temporary name, renamed when complete."""
    from transformers import AutoConfig

    model_dir, out = Path(model_dir), Path(out)
    if file_type not in FILE_TYPES:
        raise ExportError(f"export type {file_type!r}: use one of {sorted(FILE_TYPES)}")
    cfg = AutoConfig.from_pretrained(model_dir)
    arch = (cfg.architectures or ["?"])[0]
    if arch not in SUPPORTED:
        raise ExportError(f"{model_dir}: architecture {arch}; GGUF export supports {sorted(SUPPORTED)}")
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        raise ExportError(f"{weights}: missing (export reads a merged model saved as one safetensors file)")
    n_head, n_kv, n_layer = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.num_hidden_layers
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // n_head
    rope = (getattr(cfg, "rope_parameters", None) or {})
    if rope.get("rope_type", "default") != "default":
        raise ExportError(f"{model_dir}: rope scaling {rope.get('rope_type')!r} is not exported")
    rope_theta = rope.get("rope_theta") or getattr(cfg, "rope_theta", 10000.0)

    tmp = out.with_name(out.name + ".tmp")
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(tmp, "llama")
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_block_count(n_layer)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    writer.add_rope_freq_base(float(rope_theta))
    writer.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_rope_dimension_count(head_dim)
    writer.add_file_type(FILE_TYPES[file_type])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _tokenizer(writer, model_dir, cfg.vocab_size)

    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, n_layer)
    with safe_open(weights, "np") as f:
        for key in f.keys():
            if key == "lm_head.weight" and cfg.tie_word_embeddings:
                continue  # tied: llama.cpp reuses token_embd
            new = names.get_name(key, try_suffixes=(".weight", ".bias"))
            if new is None:
                raise ExportError(f"{weights}: tensor {key} has no GGUF name")
            data = f.get_tensor(key).astype(np.float32)
            if key.endswith("q_proj.weight"):
                data = _permute(data, n_head)
            elif key.endswith("k_proj.weight"):
                data = _permute(data, n_kv)
            if data.ndim == 1 or file_type == "f32":  # norms stay f32, as llama.cpp writes them
                writer.add_tensor(new, data)
            elif file_type == "f16":
                writer.add_tensor(new, data.astype(np.float16))
            else:
                qtype = gguf.GGMLQuantizationType.Q8_0
                writer.add_tensor(new, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file(progress=False)
    writer.close()
    tmp.replace(out)
    log.info("%s: %.1f MB (%s)", out, out.stat().st_size / 2**20, file_type)
    return out


def modelfile(gguf_name: str, system: str) -> str:
    """An Ollama Modelfile for a ChatML model (SmolLM2's template): ``ollama create NAME -f Modelfile``.
    Ollama renders Go templates, not the GGUF's Jinja one, so the template is restated here;
    ``system`` is what the Jinja template puts in when a conversation brings no system message."""
    return "\n".join([
        f"FROM ./{gguf_name}",
        'TEMPLATE """{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}'
        '{{- range .Messages }}{{- if ne .Role "system" }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n'
        '{{ end }}{{ end }}<|im_start|>assistant\n"""',
        f'SYSTEM """{system}"""',
        'PARAMETER stop "<|im_end|>"',
        "PARAMETER temperature 0",
    ]) + "\n"


def verify(model_dir: str | Path, gguf_path: str | Path, prompts: list[str], max_new_tokens: int = 24) -> dict:
    """Read the GGUF back through transformers' GGUF loader (dequantized) and compare it with the
    safetensors model on ``prompts`` (chat-formatted): the largest next-token logit difference,
    how often the top token agrees over every prompt position, and whether greedy answers match."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    back = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok_back = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    max_diff, agree, positions, same_answers, same_tokens = 0.0, 0, 0, 0, 0
    samples = []
    for p in prompts:
        text = tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        same_tokens += int(tok_back(text, add_special_tokens=False)["input_ids"] == ids[0].tolist())
        with torch.inference_mode():
            a, b = ref(ids).logits[0], back(ids).logits[0]
            max_diff = max(max_diff, float((a - b).abs().max()))
            agree += int((a.argmax(-1) == b.argmax(-1)).sum())
            positions += ids.shape[1]
            kw = dict(max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            ga, gb = ref.generate(ids, **kw)[0, ids.shape[1]:], back.generate(ids, **kw)[0, ids.shape[1]:]
        same_answers += int(torch.equal(ga, gb))
        samples.append({"prompt": p, "safetensors": tok.decode(ga, skip_special_tokens=True),
                        "gguf": tok.decode(gb, skip_special_tokens=True)})
    n = len(prompts)
    return {"max_abs_logit_diff": max_diff, "top1_agreement": agree / positions,
            "greedy_answers_equal": same_answers / n, "tokenizer_equal": same_tokens / n, "prompts": n,
            "size_mb": gguf_path.stat().st_size / 2**20, "samples": samples}
