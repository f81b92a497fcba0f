"""Continual learning on a tiny model: skill A, then skill B on top, A held by replay; rollback."""

import hashlib
import json
import random

import pytest

from domaintune.params import ContinualParams, LoraParams, PhaseParams

WORDS = ("river stone cloud maple amber cedar harbor violet lantern meadow copper willow orchid summit "
         "pebble falcon glacier saffron thistle canyon").split()
PHASE = dict(learning_rate=1e-2, epochs=4, max_steps=-1, batch_size=4, grad_accum=1, max_length=64,
             warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, scheduler="constant", precision="fp32",
             save_steps=0, log_steps=5)
LORA = dict(r=8, alpha=16, dropout=0.0, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                          "up_proj", "down_proj"], top_layers=0)
BOUND = 0.2  # the largest drop in skill A accuracy a replayed round may cause (the gate below)


def skill(prefix: str, answer: str, n: int, seed: int) -> list[dict]:
    """'<prefix> w1 w2' -> answer: a rule a tiny model learns and applies to unseen word pairs."""
    rng = random.Random(seed)
    return [{"id": f"{prefix}-{i}", "task": "general", "lang": "en", "split": "train",
             "messages": [{"role": "user", "content": f"{prefix} {rng.choice(WORDS)} {rng.choice(WORDS)}"},
                          {"role": "assistant", "content": answer}]} for i in range(n)]


def digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def rounds(tmp_path_factory, tiny_model):
    from domaintune.continual import rounds as continual

    tmp = tmp_path_factory.mktemp("continual")
    for name, rows in (("a", skill("alpha", "yes", 40, 1)), ("b", skill("beta", "no", 40, 2))):
        (tmp / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    phase, lora = PhaseParams(**PHASE), LoraParams(**LORA)
    out = {}
    for name, replay in (("replay", 0.5), ("no_replay", 0.0)):
        reg = tmp / name
        cfg = ContinualParams(registry=str(reg), replay_share=replay, holdout_fraction=0.2, max_drop=BOUND)
        continual.init_registry(reg, tiny_model, [], [])
        out[name] = (reg, continual.train_round(reg, tmp / "a.jsonl", cfg, phase, lora, 7),
                     continual.train_round(reg, tmp / "b.jsonl", cfg, phase, lora, 7))
    return out


def test_round_one_learns_skill_a(rounds):
    _, a, _ = rounds["replay"]
    assert a["status"] == "accepted" and a["parent"] == "gen-000"
    assert a["before"]["new"] == 0.0 and a["after"]["new"] >= 0.75  # held-out rows of A, never trained


def test_replay_holds_skill_a_within_the_bound_while_b_is_learned(rounds):
    from domaintune.continual import rounds as continual

    reg, a, b = rounds["replay"]
    assert b["replayed_rows"] > 0 and b["earlier_heldout_rows"] == a["heldout_rows"]
    assert b["before"]["earlier"] == a["after"]["new"]  # A measured on the same rows, same model
    assert b["after"]["new"] >= 0.75
    assert b["earlier_drop"] <= BOUND and b["status"] == "accepted"
    assert continual.current(reg) == "gen-002"
    assert (reg / "gen-001" / "adapter" / "adapter_model.safetensors").exists()  # the previous adapter is kept


def test_without_replay_a_is_forgotten_and_the_gate_refuses_the_round(rounds):
    from domaintune.continual import rounds as continual

    reg, a, b = rounds["no_replay"]
    assert b["replayed_rows"] == 0 and b["after"]["new"] >= 0.75
    assert b["earlier_drop"] > BOUND and b["status"] == "rejected"
    assert continual.current(reg) == "gen-001"  # the forgetting model was not made current


def test_rollback_restores_the_previous_generation_byte_for_byte(rounds):
    from domaintune.continual import rounds as continual

    reg, _, _ = rounds["replay"]
    before = digest(reg / "gen-001" / "model")
    assert continual.rollback(reg) == "gen-001"
    assert continual.current_model(reg) == reg / "gen-001" / "model"
    assert digest(continual.current_model(reg)) == before
    assert [h["status"] for h in continual.history(reg)] == ["accepted", "accepted", "rolled_back"]
    assert continual.rollback(reg) == "gen-000"
    with pytest.raises(continual.RegistryError, match="nothing to roll back"):
        continual.rollback(reg)
