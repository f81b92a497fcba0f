"""The serving API, against a real uvicorn server on 127.0.0.1 with the real SmolLM2-135M model,
called through plain HTTP and through the official ``openai`` client."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx  # the HTTP client the openai package ships with
import pytest

from domaintune.classifiers.keywords import KeywordClassifier, KeywordFileError
from domaintune.params import ClassifierTier, KeywordTier, ModelTier, ServeParams
from domaintune.serving.openai_schema import split_tool_calls
from domaintune.serving.router import FallbackRouter, Tier

NAME = "domaintune-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real uvicorn server in a thread (a real TCP socket on 127.0.0.1)."""

    def __init__(self, app):
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def engine(real_model):
    from domaintune.serving.engine import ModelEngine

    return ModelEngine(real_model)


def _cfg(real_model, root, classifier="/nonexistent/tfidf", **kw) -> ServeParams:
    tiers = [ModelTier(kind="model", threshold=0.0), ModelTier(kind="second_model"),
             ClassifierTier(kind="classifier", model_dir=str(classifier)),
             KeywordTier(kind="keywords", file=str(root / "data/raw/serving/intent_keywords.yaml"))]
    # the base model has neither the specialist's temperature nor its intent head
    return ServeParams(model_dir=str(real_model), model_name=NAME, tiers=tiers,
                       **{"calibration": None, "intent_head": None, **kw})


@pytest.fixture(scope="module")
def tfidf_dir(root, tmp_path_factory):
    """The TF-IDF classifier as the baselines stage fits and saves it, on the real intent data."""
    from domaintune.data.intents import build_intents
    from domaintune.evaluation.baselines import train_tfidf
    from domaintune.params import load_params

    p = load_params(root / "params.yaml")
    cfg = p.data.intents.model_copy(update={"utterances": str(root / p.data.intents.utterances),
                                            "templates_dir": str(root / p.data.intents.templates_dir)})
    out = tmp_path_factory.mktemp("tfidf") / "tfidf"
    train_tfidf(build_intents(cfg, p.seed)[0], p.eval.baselines.tfidf_c, p.seed).save(out)
    return out


@pytest.fixture(scope="module")
def server(engine, real_model, root, tfidf_dir):
    from domaintune.serving.app import create_app
    from domaintune.serving.tiers import build_router

    cfg = _cfg(real_model, root, tfidf_dir, max_pending=3, queue_timeout_s=60, max_message_chars=2000,
               max_new_tokens=64)
    with Server(create_app(cfg, engine, build_router(cfg, engine))) as s:
        yield s


@pytest.fixture(scope="module")
def weather(root) -> dict:
    return json.loads((root / "data/raw/tools/get_weather.json").read_text())


def test_openai_client_chat_is_greedy_and_counts_tokens(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    ask = dict(model=NAME, messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=24)
    first, again = client.chat.completions.create(**ask), client.chat.completions.create(**ask)
    answer = first.choices[0].message.content
    assert "Paris" in answer
    assert again.choices[0].message.content == answer
    assert 0 < first.usage.completion_tokens <= 24 and first.usage.prompt_tokens > 10
    assert first.choices[0].finish_reason in ("stop", "length")
    assert [m.id for m in client.models.list().data] == [NAME]


def test_streamed_answer_is_the_whole_answer_in_pieces(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    ask = dict(model=NAME, messages=[{"role": "user", "content": "Name three colours."}], max_tokens=32)
    whole = client.chat.completions.create(**ask)
    chunks = list(client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1  # streamed, not one block
    assert "".join(pieces).strip() == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == whole.choices[0].finish_reason
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_tool_conversation_round_trips_through_the_client(server, weather, engine):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key="unused")
    messages = [
        {"role": "user", "content": "Will it rain in Paris tomorrow?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": json.dumps({"location": "Paris", "date": "2026-05-02"})}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"condition": "rain", "temp_max_c": 14})},
    ]
    out = client.chat.completions.create(model=NAME, messages=messages, tools=[weather], max_tokens=32)
    assert out.choices[0].message.content or out.choices[0].message.tool_calls
    streamed = list(client.chat.completions.create(model=NAME, messages=messages, tools=[weather], max_tokens=32,
                                                   stream=True))
    assert streamed[-1].choices[0].finish_reason in ("stop", "length", "tool_calls")
    # what the model saw: the schema in the system turn, the call and the result in the template's format
    prompt = engine.prompt([{"role": "user", "content": "hi"}], [weather])
    assert "<tools>" in prompt and '"get_weather"' in prompt


def test_model_tool_calls_become_openai_tool_calls(weather):
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Rome", "date": "2026-05-02"}}\n</tool_call>'
    content, calls, invalid = split_tool_calls(text, [weather])
    assert content is None and not invalid
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"location": "Rome", "date": "2026-05-02"}
    # an undeclared function or a broken call is an invalid output, returned as text
    for bad in (text.replace("get_weather", "book_flight"), "<tool_call>{not json</tool_call>"):
        content, calls, invalid = split_tool_calls(bad, [weather])
        assert invalid and calls is None and content == bad
    assert split_tool_calls(text, None) == (text, None, False)  # no tools declared: plain text


@pytest.mark.parametrize(("body", "status", "param"), [
    (b"{not json", 400, None),
    ({"model": NAME, "messages": "hello"}, 400, "messages"),
    ({"model": NAME, "messages": []}, 400, "messages"),
    ({"model": NAME, "messages": [{"role": "user", "content": "  "}]}, 400, "messages[0].content"),
    ({"model": NAME, "messages": [{"role": "user", "content": "x" * 2001}]}, 400, "messages[0].content"),
    ({"model": NAME, "messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages.0.role"),
    ({"model": NAME, "messages": [{"role": "user", "content": "hi"}], "max_tokens": "many"}, 400, "max_tokens"),
    ({"model": NAME, "messages": [{"role": "user", "content": "hi"}], "n": 3}, 400, "n"),
    ({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}, 404, "model"),
    ({"model": NAME, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]},
     400, "messages"),
    ({"model": NAME, "messages": [{"role": "assistant", "content": None, "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": "{oops"}}]}, {"role": "tool", "content": "1"}]},
     400, "messages[0].tool_calls[0].function.arguments"),
])
def test_bad_chat_requests_get_a_4xx_with_a_json_error(server, body, status, param):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = httpx.post(server.url + "/v1/chat/completions", content=data, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param
    assert r.json()["error"]["message"]


def test_bad_classify_requests_and_oversized_bodies(server):
    for body, status in (({"text": ""}, 400), ({"text": 5}, 400), ({"txt": "hi"}, 400), ({"text": "x" * 2001}, 400)):
        r = httpx.post(server.url + "/v1/classify", json=body)
        assert r.status_code == status and "error" in r.json(), r.text
    r = httpx.post(server.url + "/v1/classify", content=b'{"text": "' + b"x" * 20_000_000 + b'"}',
                   headers={"content-type": "application/json"})
    assert r.status_code == 413 and "at most" in r.json()["error"]["message"]
    assert httpx.get(server.url + "/health").json()["status"] == "ok"  # still up


def test_classify_names_the_tier_and_metrics_count_it(server):
    r = httpx.post(server.url + "/v1/classify", json={"text": "Where can I eat good sushi in Rome tonight?"}).json()
    assert r["tier"] == "model" and r["primary_intent"] in r["all_intents"] and 0 < r["confidence"] <= 1
    assert r["skipped"] == []
    metrics = httpx.get(server.url + "/metrics").text
    assert 'domaintune_classifications_total{tier="model"}' in metrics
    assert 'domaintune_request_seconds_bucket{le="0.25",path="/v1/classify",status="200"}' in metrics
    health = httpx.get(server.url + "/health").json()
    assert [(t["name"], t["available"]) for t in health["tiers"]] == [
        ("model", True), ("second_model", False), ("classifier", True), ("keywords", True)]


def test_overload_gets_503_at_once_and_every_request_is_answered(server):
    """max_pending 3: of 8 simultaneous chats, the ones past the bound are refused immediately;
    none hangs, none is lost, and the server answers afterwards."""
    body = {"model": NAME, "messages": [{"role": "user", "content": "Tell me about Lisbon."}], "max_tokens": 48}

    def call(_):
        t = time.perf_counter()
        r = httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120)
        return r.status_code, r.json(), time.perf_counter() - t

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(8)))
    codes = sorted(c for c, _, _ in results)
    assert set(codes) <= {200, 503} and codes.count(200) >= 3 and 503 in codes, codes
    refused = [(b, s) for c, b, s in results if c == 503]
    assert all(b["error"]["code"] == "overloaded" for b, _ in refused)
    slowest_ok = max(s for c, _, s in results if c == 200)
    assert all(s < slowest_ok for _, s in refused)  # refused without waiting for the model
    assert httpx.post(server.url + "/v1/chat/completions", json=body, timeout=120).status_code == 200
    assert 'domaintune_rejected_total{reason="overloaded"}' in httpx.get(server.url + "/metrics").text


def test_api_key_is_required_when_configured(engine, real_model, root, monkeypatch):
    from domaintune.serving.app import create_app
    from domaintune.serving.tiers import build_router

    monkeypatch.setenv("DT_TEST_KEY", "s3cret")
    cfg = _cfg(real_model, root, api_key_env="DT_TEST_KEY")
    with Server(create_app(cfg, engine, build_router(cfg, engine))) as s:
        ask = {"text": "selam naber"}
        assert httpx.post(s.url + "/v1/classify", json=ask).status_code == 401
        for key, status in (("nope", 401), ("s3cret", 200)):
            r = httpx.post(s.url + "/v1/classify", json=ask, headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == status
        assert httpx.get(s.url + "/health").status_code == 200  # probes need no key


# --- the fallback chain, with the real model and the real keyword rules -----------------------


@pytest.fixture(scope="module")
def keywords(root) -> KeywordClassifier:
    return KeywordClassifier.from_file(root / "data/raw/serving/intent_keywords.yaml")


def _chain(engine, keywords, threshold=0.5, timeout_s=2.0, broken=None):
    tiers = [Tier("model", engine.classify, threshold, timeout_s)]
    if broken:
        tiers.append(Tier("second_model", broken, 0.0, 2.0))
    else:
        tiers.append(Tier("second_model", lambda *_: None, available=False, why_unavailable="no model_dir configured"))
    tiers.append(Tier("keywords", lambda t, _: keywords.classify(t), 0.5))
    return FallbackRouter(tiers)


def test_low_confidence_falls_through_to_keywords_then_to_general(engine, keywords):
    chain = _chain(engine, keywords, threshold=1.0)  # no model answer is that sure
    r = chain.route("selam naber")
    assert (r.tier, r.result["primary_intent"]) == ("keywords", "greeting")
    assert [s["reason"] for s in r.skipped] == ["low_confidence", "unavailable"]
    r = chain.route("qwxz vvvv")
    assert (r.tier, r.result["primary_intent"], r.result["confidence"]) == ("default", "general", 0.0)
    assert [s["reason"] for s in r.skipped] == ["low_confidence", "unavailable", "no_answer"]


def test_unsure_rows_take_the_named_tiers_guess_and_say_so(engine, keywords):
    tiers = _chain(engine, keywords, threshold=1.0).tiers
    r = FallbackRouter(tiers, unsure="model").route("qwxz vvvv")  # the model below 1.0, no keyword matches
    assert r.tier == "model" and r.result["low_confidence"] is True
    assert r.result["primary_intent"] == engine.classify("qwxz vvvv", 2.0)["primary_intent"]
    assert [s["reason"] for s in r.skipped] == ["low_confidence", "unavailable", "no_answer"]
    sure = FallbackRouter(tiers, unsure="model").route("selam naber")  # keywords are sure: they answer
    assert sure.tier == "keywords" and "low_confidence" not in sure.result
    with pytest.raises(ValueError, match="not a tier of the chain"):
        FallbackRouter(tiers, unsure="classifier")


def test_a_busy_model_times_out_to_the_next_tier(engine, keywords):
    # the timeout bounds the whole answer, so it must leave room for one label-scoring pass
    # (p99 ~250 ms on a slow 2-core CPU) once the model is free again
    chain = _chain(engine, keywords, threshold=0.0, timeout_s=0.6)
    with engine.slots:  # a long generation holds the model
        t = time.perf_counter()
        r = chain.route("Gibt es ein gutes Restaurant in Kreuzberg?")
        waited = time.perf_counter() - t
    assert r.tier == "keywords" and r.result["primary_intent"] == "restaurant"
    assert r.skipped[0] == {"tier": "model", "reason": "timeout", "detail": "model busy for 0.6 s"}
    assert waited < 1.5
    assert chain.route("Gibt es ein gutes Restaurant in Kreuzberg?").tier == "model"  # free again


@pytest.mark.parametrize(("broken", "reason"), [
    (lambda *_: {"primary_intent": "teleport", "confidence": 0.9, "all_intents": ["teleport"]}, "invalid_output"),
    (lambda *_: {"primary_intent": "weather", "confidence": 7, "all_intents": ["weather"]}, "invalid_output"),
    (lambda *_: 1 / 0, "error"),
])
def test_invalid_or_crashing_tiers_are_skipped_and_reported(engine, keywords, broken, reason):
    r = _chain(engine, keywords, threshold=1.0, broken=broken).route("Какая погода будет завтра?")
    assert r.skipped[1]["tier"] == "second_model" and r.skipped[1]["reason"] == reason
    assert r.tier == "keywords" and r.result["primary_intent"] == "weather"
    assert r.invalid == (["second_model"] if reason == "invalid_output" else [])


@pytest.mark.parametrize(("text", "intent"), [
    ("hey there, good morning!", "greeting"), ("مرحبا", "greeting"), ("Bonjour !", "greeting"),
    ("Где купить проездной на метро?", "transportation"), ("Havalimanından Kadıköy'e nasıl giderim?",
                                                             "airport_transport"),
    ("Y a-t-il une pharmacie à proximité ?", "nearby_locations"), ("أين أجد مطعم جيد؟", "restaurant"),
    ("Welche Souvenirs sollte ich mitbringen?", "shopping"),
])
def test_keyword_rules_cover_six_languages(keywords, text, intent):
    assert keywords.classify(text)["primary_intent"] == intent


def test_malformed_keyword_file_names_the_key(tmp_path):
    bad = tmp_path / "k.yaml"
    bad.write_text("intents:\n  teleport:\n    en: [beam me up]\n")
    with pytest.raises(KeywordFileError, match=r"k.yaml: intents.teleport"):
        KeywordClassifier.from_file(bad)
    bad.write_text("intents:\n  greeting:\n    xx: [hi]\n")
    with pytest.raises(KeywordFileError, match=r"intents.greeting.xx: unknown language"):
        KeywordClassifier.from_file(bad)


# --- the command line ---------------------------------------------------------------------------


def test_cli_classify_and_one_shot_chat(real_model, root):
    run = [sys.executable, "-m", "domaintune.serving", "--model", str(real_model)]
    out = subprocess.run([*run, "classify", "selam naber", "Wo ist die nächste Apotheke?"], cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = [json.loads(x) for x in out.stdout.splitlines()]
    assert [x["primary_intent"] for x in lines][0] == "greeting" and len(lines) == 2
    assert all("tier" in x for x in lines)
    out = subprocess.run([*run, "chat", "What is the capital of France?", "--max-tokens", "16"], cwd=root,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and "Paris" in out.stdout, out.stderr
    missing = subprocess.run([sys.executable, "-m", "domaintune.serving", "--model", str(root / "nope"), "classify",
                              "hi"], cwd=root, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "nope: no model here" in missing.stderr


def test_the_classifier_tier_answers_when_the_model_is_unsure(engine, real_model, root, tfidf_dir):
    from domaintune.serving.tiers import build_router

    cfg = _cfg(real_model, root, tfidf_dir)
    cfg.tiers[0] = ModelTier(kind="model", threshold=1.0)  # no model answer is that sure
    cfg.tiers[2] = ClassifierTier(kind="classifier", model_dir=str(tfidf_dir), threshold=0.0)
    r = build_router(cfg, engine).route("is it gonna rain tmrw in Paris")
    assert r.tier == "classifier" and r.result["primary_intent"] == "weather"
    assert [s["reason"] for s in r.skipped] == ["low_confidence", "unavailable"]
    missing = build_router(_cfg(real_model, root), engine).tiers[2]
    assert not missing.available and "dvc repro baselines" in missing.why_unavailable


# --- many users at once: micro-batched classification beside a streaming chat ------------------


@pytest.fixture(scope="module")
def batched_server(real_model, root):
    from domaintune.serving.app import create_app
    from domaintune.serving.engine import ModelEngine
    from domaintune.serving.tiers import build_router

    # fp32 whatever the CPU: in bf16 (auto on AMX) a padded batch can flip near-tied labels, and this
    # server is compared with one-at-a-time answers of the fp32 engine
    cfg = _cfg(real_model, root, batch_max=8, batch_window_ms=20, max_pending=32, max_new_tokens=96,
               inference="fp32")
    cfg.tiers[0] = ModelTier(kind="model", threshold=0.0, timeout_s=60.0)
    engine = ModelEngine.serving(cfg)
    with Server(create_app(cfg, engine, build_router(cfg, engine))) as s:
        s.engine = engine
        yield s


BURST = ["Where can I eat good sushi in Rome tonight?", "selam naber", "Wie wird das Wetter morgen in Berlin?",
         "Comment aller à l'aéroport ?", "Где ближайшая аптека?", "أين أفضل مكان للتسوق في دبي؟",
         "book a taxi to the airport", "any hidden spots locals like in Lisbon?", "is it gonna rain tmrw",
         "Müzeler pazartesi açık mı?", "what's happening in my town this week", "hi!"]


def test_a_burst_is_scored_in_batches_and_matches_one_at_a_time(batched_server, engine):
    with ThreadPoolExecutor(len(BURST)) as pool:
        got = list(pool.map(lambda t: httpx.post(batched_server.url + "/v1/classify", json={"text": t},
                                                 timeout=120).json(), BURST))
    assert [r["tier"] for r in got] == ["model"] * len(BURST)  # no timeout sent one to a lower tier
    for text, r in zip(BURST, got, strict=True):
        alone = engine.scorer.classify(text)
        assert r["primary_intent"] == alone["primary_intent"], text
        assert r["confidence"] == pytest.approx(alone["confidence"], abs=1e-3)
    health = httpx.get(batched_server.url + "/health").json()
    assert health["batch_max"] == 8 and health["compile"] is False
    assert health["mean_batch"] > 1  # requests shared passes


def test_classifications_are_answered_while_a_chat_streams(batched_server):
    """The single-lane engine answers these only after the chat frees the model: here they come
    back while its tokens are still arriving."""
    body = {"model": NAME, "stream": True, "max_tokens": 96,
            "messages": [{"role": "user", "content": "Write a long story about a trip to Rome."}]}
    chunks: list[tuple[float, str]] = []
    started = threading.Event()

    def read() -> None:
        with httpx.stream("POST", batched_server.url + "/v1/chat/completions", json=body, timeout=120) as r:
            for line in r.iter_lines():
                if line.startswith("data: "):
                    chunks.append((time.perf_counter(), line))
                    started.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert started.wait(60)
    answered = []
    for text in BURST[:4]:
        assert httpx.post(batched_server.url + "/v1/classify", json={"text": text}, timeout=120).json()["tier"] \
            == "model"
        answered.append(time.perf_counter())
    reader.join(120)
    assert chunks[-1][1] == "data: [DONE]" and len(chunks) > 20
    last_token = chunks[-3][0]  # before the finish-reason chunk and [DONE]
    assert max(answered) < last_token, "a classification waited for the chat to end"
    assert batched_server.engine.slots.acquire(timeout=5)  # the chat gave its slot back
    batched_server.engine.release()


def test_served_latency_names_its_configuration(batched_server, engine):
    from domaintune.evaluation.latency import measure_served

    batched = measure_served(batched_server.engine, BURST[:8], rounds=1)
    assert batched["served"]["batch_max"] == 8 and batched["classify_queries"] == 8
    assert batched["classify_p50_ms"] <= batched["classify_p95_ms"] and batched["classify_batched_per_s"] > 0
    single = measure_served(engine, BURST[:4], rounds=1)
    assert single["served"] == {"inference": "fp32", "compile": False, "batch_max": 1, "temperature": 1.0,
                                "intent_head": False}
    assert "classify_batched_per_s" not in single
