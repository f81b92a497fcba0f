import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tokenizer():
    """The real SmolLM2 tokenizer, prepared exactly as prepare_base prepares it."""
    from transformers import AutoTokenizer

    from domaintune.modeling.base import embedded_gguf, finalize_tokenizer
    from domaintune.params import load_params

    params = load_params(ROOT / "params.yaml").model
    gguf = embedded_gguf(params)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    original = tok.chat_template
    finalize_tokenizer(tok, "embedded")
    tok.original_chat_template = original
    return tok


@pytest.fixture
def in_repo_copy(tmp_path, monkeypatch):
    """Run in a copy of the repo's params and raw data, so stages see relative paths."""
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(ROOT / "data" / "raw", tmp_path / "data" / "raw")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tokenizer) -> Path:
    """A tiny randomly initialized model of the real architecture (SmolLM2's config, 2 small layers)
    with the real tokenizer: the training code runs for real in seconds."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from domaintune.modeling.base import embedded_gguf
    from domaintune.params import load_params

    path = tmp_path_factory.mktemp("tiny_model") / "model"
    gguf = embedded_gguf(load_params(ROOT / "params.yaml").model)
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config.update(dict(num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=16))
    torch.manual_seed(0)  # the same tiny model every run
    AutoModelForCausalLM.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def real_model(tmp_path_factory) -> Path:
    """The real SmolLM2-135M-Instruct, converted from the embedded GGUF as prepare_base does (~20 s)."""
    from domaintune.modeling.base import prepare_base
    from domaintune.params import load_params

    path = tmp_path_factory.mktemp("real_model") / "base"
    prepare_base(load_params(ROOT / "params.yaml").model, path)
    return path
