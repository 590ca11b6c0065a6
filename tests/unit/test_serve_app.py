"""The server over the tiny random model, through the official ``openai`` client on loopback."""

from __future__ import annotations

import json
import time

import httpx
import jsonschema
import openai
import pytest

from tests.helpers.serve import local_server, make_lora_adapter

MSG = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    """``(url, trace_db_path)``: tiny model + one LoRA adapter named ``tiny-lora``."""
    from tuneloop.tracing import TraceSink

    tmp = tmp_path_factory.mktemp("serve")
    adapter = make_lora_adapter(tiny_model_dir, tmp / "adapter")
    db = tmp / "traces.db"
    with local_server(tiny_model_dir, adapters={"tiny-lora": adapter},
                      trace_sink=TraceSink(db)) as (url, _):  # fmt: skip
        yield url, db


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server[0] + "/v1", api_key="unused", max_retries=0)


def test_plain_completion(client):
    r = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=6)
    choice = r.choices[0]
    assert choice.message.role == "assistant" and isinstance(choice.message.content, str)
    assert choice.finish_reason in ("stop", "length")
    assert r.usage.completion_tokens <= 6 and r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_stream_reassembles_to_the_greedy_completion(client):
    full = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=12)
    chunks = list(client.chat.completions.create(
        model="tiny", messages=MSG, max_tokens=12, stream=True,
        stream_options={"include_usage": True},
    ))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == full.choices[0].message.content
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == [full.choices[0].finish_reason]
    assert (
        chunks[-1].choices == []
        and chunks[-1].usage.completion_tokens == full.usage.completion_tokens
    )


def test_max_completion_tokens_n_and_seeded_sampling(client):
    r = client.chat.completions.create(model="tiny", messages=MSG, max_completion_tokens=3, n=2,
                                       temperature=1.0, top_p=0.9, seed=7)  # fmt: skip
    assert [c.index for c in r.choices] == [0, 1]
    assert r.usage.completion_tokens <= 6
    again = client.chat.completions.create(model="tiny", messages=MSG, max_completion_tokens=3, n=2,
                                           temperature=1.0, top_p=0.9, seed=7)  # fmt: skip
    assert [c.message.content for c in again.choices] == [c.message.content for c in r.choices]


def test_stop_string_is_cut(client):
    full = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=12).choices[0]
    text = full.message.content
    stop = text[3:5] if len(text) > 5 else None
    if not stop or not stop.strip():
        pytest.skip("greedy output too short to pick a stop string")
    r = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=12, stop=[stop])
    assert r.choices[0].message.content == text[: text.find(stop)]
    assert r.choices[0].finish_reason == "stop"


def test_response_format_json_schema_validates(client):
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8},
              "population": {"type": "integer"}}, "required": ["city", "population"],
              "additionalProperties": False}  # fmt: skip
    r = client.chat.completions.create(
        model="tiny", messages=MSG, max_tokens=60,
        response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}},
    )  # fmt: skip
    assert r.choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(r.choices[0].message.content), schema)


def test_models_list_and_adapter_selection(client, server, tiny_model_dir):
    assert [m.id for m in client.models.list().data] == ["tiny", "tiny-lora"]
    base = client.chat.completions.create(model="tiny", messages=MSG, max_tokens=10)
    tuned = client.chat.completions.create(model="tiny-lora", messages=MSG, max_tokens=10)
    assert tuned.model == "tiny-lora"
    assert tuned.choices[0].message.content != base.choices[0].message.content
    # the adapter row gives what peft gives for that adapter on its own
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tuneloop.runtime.backends.local import LocalEngine
    from tuneloop.runtime.types import GenerationConfig

    adapter_dir = server[1].parent / "adapter"
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                                           str(adapter_dir)).eval()  # fmt: skip
    engine = LocalEngine(peft_model, AutoTokenizer.from_pretrained(tiny_model_dir))
    assert (
        engine.generate(MSG, GenerationConfig(max_new_tokens=10)).text
        == tuned.choices[0].message.content
    )


def _post(url, body, **kw):
    return httpx.post(url + "/v1/chat/completions", json=body, timeout=60, **kw)


def _assert_error(response, status, code=None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code
    return error


@pytest.mark.parametrize("body", [
    {"model": "tiny", "messages": []},
    {"model": "tiny"},
    {"model": "tiny", "messages": [{"role": "robot", "content": "hi"}]},
    {"model": "tiny", "messages": MSG, "max_tokens": 0},
    {"model": "tiny", "messages": MSG, "temperature": -1},
    {"model": "tiny", "messages": MSG, "tool_choice": "required"},
    {"model": "tiny", "messages": MSG, "response_format": {"type": "json_schema"}},
    {"model": "tiny", "messages": MSG, "response_format": {"type": "json_schema",
                                                            "json_schema": {"schema": {"type": 5}}}},
    {"model": "tiny", "messages": MSG, "tools": [{"type": "function", "function": {"name": "f"}}],
     "tool_choice": {"type": "function", "function": {"name": "g"}}},
])  # fmt: skip
def test_bad_requests_are_400_in_openai_shape(server, body):
    error = _assert_error(_post(server[0], body), 400)
    assert error["type"] == "invalid_request_error"


def test_malformed_json_body_is_400(server):
    r = httpx.post(server[0] + "/v1/chat/completions", content=b"{not json",
                   headers={"content-type": "application/json"})  # fmt: skip
    _assert_error(r, 400)


def test_unknown_model_is_404(server, client):
    _assert_error(_post(server[0], {"model": "gpt-9", "messages": MSG}), 404, "model_not_found")
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-9", messages=MSG)
    _assert_error(httpx.get(server[0] + "/v1/models/gpt-9"), 404)


def test_prompt_over_the_context_window_is_413(server):
    long = [{"role": "user", "content": "Paris " * 2000}]  # tiny model: 1024 positions
    _assert_error(
        _post(server[0], {"model": "tiny", "messages": long}), 413, "context_length_exceeded"
    )


def test_health_metrics_and_request_id_trace(server, client):
    url, db = server
    assert httpx.get(url + "/health").json()["status"] == "ok"
    raw = client.chat.completions.with_raw_response.create(model="tiny", messages=MSG, max_tokens=2)
    request_id = raw.headers["x-request-id"]
    assert len(request_id) == 32
    metrics = httpx.get(url + "/metrics").text
    assert 'tuneloop_requests_total{route="/v1/chat/completions",status="200"}' in metrics
    assert "tuneloop_time_to_first_token_seconds_count" in metrics
    assert "tuneloop_completion_tokens_total" in metrics
    from tuneloop.tracing import TraceStore

    deadline = time.monotonic() + 10
    while True:  # traces are written off the request path
        try:
            TraceStore(db).get_trace(request_id)
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    kinds = [e.kind for e in TraceStore(db).run_events(request_id)]
    assert kinds[0] == "run_started" and "model_call" in kinds and kinds[-1] == "run_finished"


def test_a_given_request_id_is_kept(server):
    rid = "0123456789abcdef0123456789abcdef"
    r = _post(
        server[0],
        {"model": "tiny", "messages": MSG, "max_tokens": 1},
        headers={"x-request-id": rid},
    )
    assert r.headers["x-request-id"] == rid


def test_api_key_is_required_when_set(tiny_model_dir):
    with local_server(tiny_model_dir, api_key="sk-secret-key") as (url, _):
        body = {"model": "tiny", "messages": MSG, "max_tokens": 1}
        _assert_error(_post(url, body), 401, "invalid_api_key")
        _assert_error(_post(url, body, headers={"Authorization": "Bearer wrong"}), 401)
        assert httpx.get(url + "/health").status_code == 200
        good = openai.OpenAI(base_url=url + "/v1", api_key="sk-secret-key", max_retries=0)
        assert good.chat.completions.create(model="tiny", messages=MSG, max_tokens=1).choices
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key="nope", max_retries=0).models.list()


def test_full_queue_is_429_with_retry_after(tiny_model_dir):
    with local_server(tiny_model_dir, max_queue=0) as (url, _):
        r = _post(url, {"model": "tiny", "messages": MSG, "max_tokens": 1})
        _assert_error(r, 429, "queue_full")
        assert r.headers["retry-after"] == "1"
        r = _post(url, {"model": "tiny", "messages": MSG, "max_tokens": 1, "stream": True})
        _assert_error(r, 429, "queue_full")
        metrics = httpx.get(url + "/metrics").text
        assert 'tuneloop_requests_total{route="/v1/chat/completions",status="429"} 2.0' in metrics


def test_cli_refuses_a_public_bind_without_a_key(monkeypatch):
    from typer.testing import CliRunner

    from tuneloop.cli import app

    monkeypatch.delenv("TUNELOOP_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--model", "unused"])
    assert result.exit_code != 0
    assert "--api-key" in result.output


def test_a_disconnected_stream_cancels_its_generation(tiny_model_dir):
    with local_server(tiny_model_dir) as (url, app):
        scheduler = app.state.backend.scheduler
        scheduler.eos_token_ids = set()  # never stops on its own before max_tokens
        body = {"model": "tiny", "messages": MSG, "max_tokens": 900, "stream": True}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=60) as r:
            for line in r.iter_lines():
                if not line.startswith("data: {"):
                    continue
                delta = json.loads(line[6:])["choices"][0]["delta"]
                if delta.get("content"):
                    break  # got a token: close the connection mid-generation
        deadline = time.monotonic() + 30
        while scheduler.active and time.monotonic() < deadline:
            time.sleep(0.05)
        assert scheduler.active == 0
        metrics = httpx.get(url + "/metrics").text
        assert "tuneloop_completion_tokens_total 0.0" in metrics  # it never finished
