"""GGUF export: written with gguf-py, read back through transformers' GGUF loader, compared."""

import json

import pytest

from domaintune.modeling.gguf_export import ExportError, export_gguf, modelfile, verify

PROMPTS = ["What is the capital of France?", "Wo ist die nächste Apotheke?"]


@pytest.mark.parametrize("file_type", ["f16", "q8_0"])
def test_a_gguf_reads_back_as_the_same_model(tiny_model, tmp_path, file_type):
    path = export_gguf(tiny_model, tmp_path / f"m-{file_type}.gguf", file_type)
    assert path.is_file() and not list(tmp_path.glob("*.tmp"))
    check = verify(tiny_model, path, PROMPTS, max_new_tokens=8)
    assert check["tokenizer_equal"] == 1.0  # vocabulary, merges and special tokens survived
    # f16 (and q8_0 on this tiny random model) keeps the next token at every position: the Q/K
    # permutation and the tensor names are right, or the logits would be unrelated
    assert check["top1_agreement"] >= 0.95
    assert check["max_abs_logit_diff"] < (0.05 if file_type == "f16" else 0.5)
    if file_type == "f16":
        assert check["greedy_answers_equal"] == 1.0


def test_q8_0_quantizes_the_matrices_and_keeps_norms_in_f32(tiny_model, tmp_path):
    from gguf import GGUFReader

    reader = GGUFReader(export_gguf(tiny_model, tmp_path / "m.gguf", "q8_0"))
    kinds = {t.name: t.tensor_type.name for t in reader.tensors}
    assert kinds["token_embd.weight"] == "Q8_0" and kinds["blk.0.attn_q.weight"] == "Q8_0"
    assert kinds["blk.0.attn_norm.weight"] == "F32" and kinds["output_norm.weight"] == "F32"
    assert "output.weight" not in kinds  # tied embeddings: llama.cpp reuses token_embd
    assert reader.fields["general.architecture"].contents() == "llama"
    assert "<|im_start|>" in reader.fields["tokenizer.chat_template"].contents()


def test_other_architectures_are_refused_by_name(tiny_model, tmp_path):
    import shutil

    other = tmp_path / "other"
    shutil.copytree(tiny_model, other)
    config = json.loads((other / "config.json").read_text())
    config["architectures"] = ["MistralForCausalLM"]
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ExportError, match="MistralForCausalLM"):
        export_gguf(other, tmp_path / "x.gguf", "f16")
    with pytest.raises(ExportError, match="q4_k"):
        export_gguf(tiny_model, tmp_path / "x.gguf", "q4_k")
    assert not list(tmp_path.glob("x.gguf*"))


def test_modelfile_points_at_the_file_and_stops_at_end_of_turn():
    text = modelfile("m-q8_0.gguf", "You are helpful.")
    assert text.startswith("FROM ./m-q8_0.gguf\n")
    assert 'PARAMETER stop "<|im_end|>"' in text and 'SYSTEM """You are helpful."""' in text
    assert "<|im_start|>assistant" in text
