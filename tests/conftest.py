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
