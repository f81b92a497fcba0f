import subprocess
import sys

import pytest
import yaml

from domaintune.params import ParamsError, load_params


def write_params(path, **edits):
    raw = yaml.safe_load(open("params.yaml"))
    for dotted, value in edits.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node[p]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    path.write_text(yaml.safe_dump(raw))
    return path


def test_shipped_params_are_valid(root):
    p = load_params(root / "params.yaml")
    assert p.model.source == "embedded"
    assert p.model.trust_remote_code is False


def test_negative_rank_names_the_key(in_repo_copy):
    path = write_params(in_repo_copy / "params.yaml", **{"lora.r": -1})
    with pytest.raises(ParamsError, match=r"lora\.r: Input should be greater than 0 \(got -1\)"):
        load_params(path)


def test_unknown_model_source_lists_allowed_values(in_repo_copy):
    path = write_params(in_repo_copy / "params.yaml", **{"model.source": "no such model"})
    with pytest.raises(ParamsError) as e:
        load_params(path)
    assert "model.source" in str(e.value)
    assert "'embedded'" in str(e.value) and "local model directory" in str(e.value) and "hub id" in str(e.value)


def test_missing_and_unknown_keys_are_named(in_repo_copy):
    path = write_params(in_repo_copy / "params.yaml", **{"train.instruct.learning_rate": None, "lora.rank": 8})
    with pytest.raises(ParamsError) as e:
        load_params(path)
    assert "train.instruct.learning_rate: missing" in str(e.value)
    assert "lora.rank: unknown key" in str(e.value)


def test_domain_shares_must_add_up(in_repo_copy):
    path = write_params(in_repo_copy / "params.yaml", **{"mix.domain_shares": {"intent": 0.9, "travel": 0.5}})
    with pytest.raises(ParamsError, match="mix.domain_shares: shares must add up to 1"):
        load_params(path)


def test_hub_id_and_local_dir_are_accepted(in_repo_copy):
    (in_repo_copy / "mymodel").mkdir()
    for source in ("meta-llama/Llama-3.2-3B-Instruct", str(in_repo_copy / "mymodel")):
        path = write_params(in_repo_copy / "params.yaml", **{"model.source": source})
        assert load_params(path).model.source == source


def test_stage_stops_before_loading_anything(in_repo_copy, root):
    write_params(in_repo_copy / "params.yaml", **{"model.source": "bogus"})
    env_path = str(root)
    proc = subprocess.run([sys.executable, "-m", "stages.prepare_base"], capture_output=True, text=True,
                          env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 2
    assert "model.source" in proc.stderr and "bogus" in proc.stderr
    assert not (in_repo_copy / "models").exists()


def test_unreachable_hub_model_fails_fast_with_a_way_out(in_repo_copy, root):
    write_params(in_repo_copy / "params.yaml", **{"model.source": "domaintune-tests/no-such-model"})
    proc = subprocess.run([sys.executable, "-m", "stages.prepare_base"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin", "HOME": str(in_repo_copy)},
                          timeout=120)
    assert proc.returncode == 2
    assert "could not fetch 'domaintune-tests/no-such-model'" in proc.stderr
    assert "--local-dir" in proc.stderr and "set model.source to that directory" in proc.stderr
    assert not (in_repo_copy / "models").exists()


def test_serve_unsure_must_name_a_tier_of_the_chain(root):
    from domaintune.params import ServeParams

    with pytest.raises(ValueError, match="unsure: 'classifier' is not one of the tiers' kinds"):
        ServeParams(unsure="classifier")  # the default chain: model, keywords
    assert ServeParams(unsure="keywords").unsure == "keywords"
