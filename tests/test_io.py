import pytest

from domaintune.io import atomic_path, read_jsonl, write_jsonl


def test_interrupted_write_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "model"
    with pytest.raises(RuntimeError):
        with atomic_path(target, is_dir=True) as tmp:
            (tmp / "weights.safetensors").write_text("half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_successful_write_replaces_old_output(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "stale").write_text("x")
    with atomic_path(target, is_dir=True) as tmp:
        (tmp / "fresh").write_text("y")
    assert sorted(p.name for p in target.iterdir()) == ["fresh"]


def test_jsonl_round_trip_and_bad_line(tmp_path):
    f = tmp_path / "a.jsonl"
    assert write_jsonl(f, [{"b": 1, "a": "é"}, {"c": None}]) == 2
    assert f.read_text(encoding="utf-8").splitlines()[0] == '{"a": "é", "b": 1}'
    assert read_jsonl(f) == [{"a": "é", "b": 1}, {"c": None}]
    f.write_text('{"a": 1}\n{oops\n')
    with pytest.raises(ValueError, match=r"a.jsonl:2: not valid JSON"):
        read_jsonl(f)
