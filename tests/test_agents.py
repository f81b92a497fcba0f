"""Agents beside the travel specialist: the registry in params.yaml, the persona's corpus and data,
the retrieval pairs, the style classifier, the embedder (real all-MiniLM-L6-v2) and serving them."""

from __future__ import annotations

import json
import math

import httpx2 as httpx
import pytest
import yaml

from domaintune.cli import InputError
from domaintune.data.persona import build_persona, chunk, decode
from domaintune.data.retrieval import QUESTIONS, build_retrieval
from domaintune.params import ParamsError, load_params


@pytest.fixture(scope="module")
def params(root):
    return load_params(root / "params.yaml")


@pytest.fixture(scope="module")
def embedder_dir(tmp_path_factory, params):
    from domaintune.modeling.embedder import prepare_embedder

    out = tmp_path_factory.mktemp("embedder") / "embedder"
    prepare_embedder(params.embedder, out)
    return out


@pytest.fixture(scope="module")
def processed(tmp_path_factory, root, params):
    """data/processed/{tools,general}.jsonl as the build stages write them (the persona reads both)."""
    from domaintune.data.general import build_alpaca
    from domaintune.data.tools import build_tools
    from domaintune.io import write_jsonl

    out = tmp_path_factory.mktemp("processed")
    d = params.data
    tools = d.tools.model_copy(update={k: str(root / getattr(d.tools, k)) for k in ("schema_file", "catalog")})
    general = d.general.model_copy(update={k: str(root / getattr(d.general, k))
                                           for k in ("alpaca_path", "probes_file")})
    write_jsonl(out / "tools.jsonl", build_tools(tools, params.seed)[0])
    write_jsonl(out / "general.jsonl", build_alpaca(general, params.seed)[0])
    return out


def _with_agents(root, tmp_path, agents: dict):
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["agents"] = agents
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_registry_validates_each_agent_by_kind(root, tmp_path, params):
    assert {n: a.kind for n, a in params.agents.items()} == {"persona": "chat", "retrieval": "embedding"}
    # a phase takes train.specialist's settings and changes only what the agent sets
    text = params.agent_phase("persona", "text")
    assert text.learning_rate == params.agents["persona"].text["learning_rate"]
    assert text.batch_size == params.train.specialist.batch_size
    bad = yaml.safe_load((root / "params.yaml").read_text())["agents"]
    bad["retrieval"]["train"]["batch_sise"] = 8
    with pytest.raises(ParamsError, match=r"agents\.retrieval\.embedding\.train\.batch_sise: unknown key"):
        load_params(_with_agents(root, tmp_path, bad))
    bad = yaml.safe_load((root / "params.yaml").read_text())["agents"]
    bad["persona"]["kind"] = "seq2seq"
    with pytest.raises(ParamsError, match=r"agents\.persona"):
        load_params(_with_agents(root, tmp_path, bad))


def test_agent_phase_names_the_bad_override(root, tmp_path):
    agents = yaml.safe_load((root / "params.yaml").read_text())["agents"]
    agents["persona"]["chat"]["learning_rate"] = 5
    p = load_params(_with_agents(root, tmp_path, agents))
    with pytest.raises(ParamsError, match=r"agents\.persona\.chat.*learning_rate"):
        p.agent_phase("persona", "chat")


def test_corpus_chunks_drop_headings_and_count_what_is_dropped(root):
    text = decode(root / "data/raw/persona/twain/huckleberry_finn.txt", "cp1252")
    passages, dropped = chunk(text, "huck", 200, 500)
    assert dropped["headings"] == 10  # one per vendored chapter
    assert all(200 <= p["words"] <= 500 for p in passages)
    assert not any("CHAPTER" in p["text"] for p in passages)
    assert "\u201c" not in "".join(p["text"] for p in passages)  # typographic quotes made ASCII
    first = passages[0]
    # offsets point back into the decoded source
    from domaintune.data.persona import ASCII

    assert text[first["start"]:first["end"]].translate(ASCII).split() == first["text"].split()


def test_a_file_in_the_wrong_encoding_stops_with_its_name(root, tmp_path):
    bad = tmp_path / "huck.txt"
    bad.write_bytes((root / "data/raw/persona/twain/huckleberry_finn.txt").read_bytes()[:5000])
    with pytest.raises(InputError, match=r"huck\.txt: not valid utf-8 at byte \d+"):
        decode(bad, "utf-8")
    assert "don't" in decode(bad, "cp1252").translate({0x2019: "'"})


def test_persona_data_is_deterministic_held_out_and_voiced(root, params, processed):
    cfg = params.agents["persona"].data
    files, stats = build_persona(cfg, root / "data/raw/persona", processed, params.seed)
    again, _ = build_persona(cfg, root / "data/raw/persona", processed, params.seed)
    assert json.dumps(files, sort_keys=True) == json.dumps(again, sort_keys=True)
    test_texts = {r["text"] for r in files["text_test"]}
    assert len(files["text_test"]) == cfg.test_passages and len(files["text_train"]) == cfg.train_passages
    assert not test_texts & {r["text"] for r in files["text_train"] + files["text_val"]}
    assert not test_texts & {r["text"] for r in files["style_fit"]}  # perplexity passages are never fitted on
    trained_prompts = {m["content"] for r in files["chat_train"] + files["chat_val"] for m in r["messages"]}
    assert not {r["prompt"] for r in files["style_prompts"]} & trained_prompts
    # re-voiced tool answers keep the tool result's facts (what the tool metrics check)
    from domaintune.evaluation.tools import grounded

    voiced = [r for r in files["chat_train"] + files["chat_val"] if r.get("meta", {}).get("call")]
    assert len(voiced) == stats["tool_voiced"] > 0
    for r in voiced:
        tool = next(m["content"] for m in r["messages"] if m["role"] == "tool")
        assert grounded(r["messages"][-1]["content"], tool), r["messages"][-1]["content"]


def test_retrieval_pairs_hold_out_destinations_and_templates(params):
    rows, stats = build_retrieval(params.agents["retrieval"].data, params.seed)
    held = set(stats["heldout"]["destinations"])
    ids = {p["id"] for p in rows["corpus"]}
    assert held and all(t["dest"] in held and set(t["relevant"]) <= ids for t in rows["test"])
    train_text = " ".join(r["query"] + " " + r["positive"] + " " + r["negative"] for r in rows["train"])
    assert not any(f"({d})" in train_text for d in held)  # no held-out passage, positive or negative
    train_queries, test_queries = {r["query"] for r in rows["train"]}, {t["query"] for t in rows["test"]}
    assert not train_queries & test_queries
    assert set(stats["test_by_facet"]) == set(QUESTIONS) and all(stats["test_by_facet"].values())
    again, _ = build_retrieval(params.agents["retrieval"].data, params.seed)
    assert again == rows


def test_retrieval_metrics_on_the_real_embedder(embedder_dir, params):
    from domaintune.evaluation.retrieval import query_latency, score_retrieval
    from domaintune.modeling.embedder import load_embedder
    from domaintune.modeling.grounding import PassageIndex

    rows, _ = build_retrieval(params.agents["retrieval"].data, params.seed)
    keep = {"Spain", "Japan", "Nepal"}
    corpus = [p for p in rows["corpus"] if p["dest"] in keep]
    test = [t for t in rows["test"] if t["dest"] in keep]
    index = PassageIndex(load_embedder(embedder_dir), corpus)
    m = score_retrieval(index, test, [1, 5], 10)
    assert 0 < m["recall@1"] <= m["recall@5"] <= 1 and m["recall@1"] <= m["mrr@10"] <= 1
    # a question whose only relevant passage is removed from the index can never be found
    broken = [{**t, "relevant": ["nowhere#0"]} for t in test]
    assert score_retrieval(index, broken, [5], 10)["recall@5"] == 0
    lat = query_latency(index, [t["query"] for t in test][:3])
    assert lat["queries"] == 3 and lat["p50_ms"] > 0


def test_embedder_training_moves_the_weights_and_saves_safetensors(embedder_dir, params, tmp_path):
    import numpy as np

    from domaintune.modeling.embedder import load_embedder
    from domaintune.training.embedder import train_embedder

    rows, _ = build_retrieval(params.agents["retrieval"].data, params.seed)
    cfg = params.agents["retrieval"].train.model_copy(update={"max_steps": 2, "batch_size": 8})
    out = tmp_path / "trained"
    metrics = train_embedder(embedder_dir, rows["train"][:32], cfg, params.seed, out)
    assert metrics["steps"] == 2 and (out / "model.safetensors").exists() and not list(out.rglob("*.bin"))
    q = ["How do I get around Japan?"]
    before, after = load_embedder(embedder_dir).encode(q), load_embedder(out).encode(q)
    assert not np.allclose(before, after)


def test_style_classifier_tells_the_corpus_from_plain_answers(root, params, processed):
    from domaintune.evaluation.style import fit_style, style_scores

    files, _ = build_persona(params.agents["persona"].data, root / "data/raw/persona", processed, params.seed)
    clf = fit_style(files["style_fit"], 10.0, params.seed)
    corpus = style_scores(clf, [r["text"] for r in files["text_test"]])  # never fitted on
    from domaintune.io import read_jsonl

    plain = [r["messages"][-1]["content"] for r in read_jsonl(processed / "general.jsonl") if r["split"] == "test"]
    plain_scores = style_scores(clf, plain)
    assert sum(s >= 0.5 for s in corpus) / len(corpus) >= 0.9
    assert sum(s >= 0.5 for s in plain_scores) / len(plain_scores) <= 0.1
    with pytest.raises(ValueError, match="both classes"):
        fit_style([r for r in files["style_fit"] if r["label"] == 1], 10.0, 0)


def test_server_lists_agents_routes_by_model_embeds_and_grounds(tiny_model, embedder_dir, real_model, root, params):
    from domaintune.modeling.embedder import load_embedder
    from domaintune.modeling.grounding import PassageIndex, ground
    from domaintune.params import ServeParams
    from domaintune.serving.agents import Embedder, Grounder
    from domaintune.serving.app import create_app
    from domaintune.serving.engine import ModelEngine
    from domaintune.serving.tiers import build_router
    from tests.test_serving import Server

    cfg = ServeParams(model_dir=str(tiny_model), model_name="specialist", tiers=[
        {"kind": "keywords", "file": str(root / "data/raw/serving/intent_keywords.yaml")}], max_new_tokens=8,
        grounding=True)
    engine = ModelEngine(tiny_model)
    persona = ModelEngine(real_model)
    model = load_embedder(embedder_dir)
    rows, _ = build_retrieval(params.agents["retrieval"].data, params.seed)
    index = PassageIndex(model, [p for p in rows["corpus"] if p["dest"] in {"Japan", "Nepal", "Spain"}])
    app = create_app(cfg, engine, build_router(cfg, engine), {"persona": persona},
                     {"retrieval": Embedder("retrieval", model, model.get_embedding_dimension())},
                     grounder=Grounder(index, 2))
    with Server(app) as s, httpx.Client(base_url=s.url, timeout=60) as c:
        # serve.grounding: the specialist's chat is answered from the prompt with the top passages in it
        trip = [{"role": "system", "content": "You plan trips."},
                {"role": "user", "content": "Where should we stay in Kyoto?"}]
        r = c.post("/v1/chat/completions", json={"model": "specialist", "messages": trip, "max_tokens": 8})
        ids = r.headers["X-Grounding-Passages"].split(",")
        by_id = {p["id"]: p for p in index.passages}
        assert len(ids) == 2 and all(by_id[i]["dest"] == "Japan" for i in ids)
        grounded = ground(trip, [by_id[i] for i in ids])
        assert grounded[0]["content"].startswith("You plan trips.\n\n")
        assert by_id[ids[0]]["text"] in grounded[0]["content"]
        expect = engine.complete(engine.prompt(grounded, None), 8, 0.0, 1.0, None).text.strip()
        assert r.json()["choices"][0]["message"]["content"] == expect
        streamed = c.post("/v1/chat/completions", json={"model": "specialist", "messages": trip, "stream": True})
        assert streamed.headers["X-Grounding-Passages"] == r.headers["X-Grounding-Passages"]
        tool = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
        for other in ({"model": "persona"}, {"model": "specialist", "tools": [tool]}):  # only the specialist's chats
            r = c.post("/v1/chat/completions", json={"messages": trip, "max_tokens": 4, **other})
            assert r.status_code == 200 and "X-Grounding-Passages" not in r.headers, other
        listed = {m["id"]: m["kind"] for m in c.get("/v1/models").json()["data"]}
        assert listed == {"specialist": "chat", "persona": "chat", "retrieval": "embedding"}
        ask = {"messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 8}
        got = c.post("/v1/chat/completions", json={**ask, "model": "persona"}).json()
        # the persona answers with its own weights: the real model's greedy answer, not the tiny one's
        prompt = persona.prompt(ask["messages"], None)
        assert got["model"] == "persona"
        assert got["choices"][0]["message"]["content"] == persona.complete(prompt, 8, 0.0, 1.0, None).text.strip()
        wrong = c.post("/v1/chat/completions", json={**ask, "model": "retrieval"})
        assert wrong.status_code == 404 and "/v1/embeddings" in wrong.json()["error"]["message"]
        texts = ["How do I get around Japan?", "Is Nepal safe for tourists?"]
        emb = c.post("/v1/embeddings", json={"model": "retrieval", "input": texts}).json()
        vecs = [d["embedding"] for d in emb["data"]]
        assert [d["index"] for d in emb["data"]] == [0, 1] and emb["usage"]["prompt_tokens"] > 0
        assert all(len(v) == 384 and math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-4) for v in vecs)
        expected = model.encode(texts, normalize_embeddings=True)
        assert max(abs(a - b) for v, e in zip(vecs, expected, strict=True) for a, b in zip(v, e, strict=True)) < 1e-5
        assert c.post("/v1/embeddings", json={"model": "persona", "input": "x"}).status_code == 404
        assert c.post("/v1/embeddings", json={"model": "retrieval", "input": [""]}).status_code == 400
        health = c.get("/health").json()
        assert health["agents"] == ["persona", "retrieval"] and health["grounding"] is True


def test_serve_agents_refuses_an_unknown_or_untrained_agent(params, monkeypatch, tmp_path):
    from domaintune.params import ServeParams
    from domaintune.serving.agents import load_agents
    from domaintune.serving.engine import ModelNotFound

    monkeypatch.chdir(tmp_path)  # no models/agents here
    with pytest.raises(ModelNotFound, match="'nope' is not in params.yaml agents"):
        load_agents(ServeParams(agents=["nope"]), params.agents)
    with pytest.raises(ModelNotFound, match=r"agent 'retrieval' not trained; run `dvc repro agent_train@retrieval`"):
        load_agents(ServeParams(agents=["retrieval"]), params.agents)


def test_grounding_adds_passages_to_the_system_prompt():
    from domaintune.modeling.grounding import HEADER, ground, query_of

    passages = [{"id": "a", "text": "Gion, Kyoto (Japan): old streets."}, {"id": "b", "text": "JR Pass."}]
    chat = [{"role": "user", "content": "Plan Japan"}, {"role": "assistant", "content": "How long?"},
            {"role": "user", "content": "5 days"}]
    added = ground(chat, passages)
    assert added[0] == {"role": "system", "content": f"{HEADER}\n- Gion, Kyoto (Japan): old streets.\n- JR Pass."}
    assert added[1:] == chat and query_of(chat) == "5 days\nPlan Japan"  # newest first: truncation drops the oldest
    with_system = ground([{"role": "system", "content": "Be brief."}, *chat], passages[:1])
    assert with_system[0]["content"].startswith("Be brief.\n\n" + HEADER) and len(with_system) == 4


def test_grounding_must_name_a_trained_embedding_agent(root, tmp_path, params, monkeypatch):
    from domaintune.params import ServeParams
    from domaintune.serving.agents import load_grounder
    from domaintune.serving.engine import ModelNotFound

    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["grounding"]["agent"] = "persona"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match=r"grounding.agent: 'persona' is not an embedding agent"):
        load_params(tmp_path / "params.yaml")
    assert load_grounder(ServeParams(), params.grounding, params.agents) is None  # serve.grounding off
    monkeypatch.chdir(tmp_path)  # no data/agents or models/agents here
    with pytest.raises(ModelNotFound, match=r"data/agents/retrieval/corpus.jsonl is missing; run `dvc repro agent_"):
        load_grounder(ServeParams(grounding=True), params.grounding, params.agents)


def test_grounding_reuses_the_served_embedder(embedder_dir, params, tmp_path, monkeypatch):
    """With the retrieval agent also in serve.agents, grounding searches with that model, under its lock."""
    from domaintune.io import write_jsonl
    from domaintune.modeling.embedder import load_embedder
    from domaintune.params import ServeParams
    from domaintune.serving.agents import Embedder, load_grounder

    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "data/agents/retrieval/corpus.jsonl",
                [{"id": "a", "dest": "Japan", "text": "Gion, Kyoto (Japan): old wooden streets."},
                 {"id": "b", "dest": "Nepal", "text": "Thamel, Kathmandu (Nepal): backpacker hub."}])
    (tmp_path / "models/agents/retrieval").mkdir(parents=True)
    (tmp_path / "models/agents/retrieval/modules.json").write_text("[]")  # not loadable: only a reuse passes
    model = load_embedder(embedder_dir)
    served = Embedder("retrieval", model, model.get_embedding_dimension())
    grounder = load_grounder(ServeParams(grounding=True), params.grounding, params.agents, {"retrieval": served})
    assert grounder.index.model is model and grounder.lock is served.lock
    assert grounder([{"role": "user", "content": "Where to stay in Kyoto?"}])[1][0] == "a"


def test_a_disabled_agent_writes_stubs_and_an_unknown_one_is_named(in_repo_copy, monkeypatch):
    import sys

    from domaintune.pr_metrics import apply_overrides
    from stages import agent_data, agent_evaluate, agent_train, ground

    apply_overrides(in_repo_copy / "params.yaml", {"agents.persona.enabled": False})
    for stage in (agent_data, agent_train, agent_evaluate):
        monkeypatch.setattr(sys, "argv", ["stage", "persona"])
        stage.main()
    assert json.loads((in_repo_copy / "metrics/agents/persona.json").read_text()) == {"enabled": False}
    assert json.loads((in_repo_copy / "data/agents/persona/stats.json").read_text()) == {"enabled": False}
    assert (in_repo_copy / "models/agents/persona/disabled.json").exists()
    apply_overrides(in_repo_copy / "params.yaml", {"agents.retrieval.enabled": False})
    ground.main()  # nothing to ground on: a stub, with no model loaded
    assert json.loads((in_repo_copy / "metrics/grounding.json").read_text()) == {"enabled": False,
                                                                                  "agent": "retrieval"}
    monkeypatch.setattr(sys, "argv", ["stage", "travel2"])
    with pytest.raises(InputError, match=r"agents\.travel2: no such agent \(have: persona, retrieval\)"):
        agent_data.main()
