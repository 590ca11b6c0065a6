"""OpenAIChatModel against a real HTTP server on 127.0.0.1 (tests/helpers/openai_stub.py)."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests.helpers.openai_stub import OpenAIStub
from tuneloop.runtime.backends import BackendError, OpenAIChatModel
from tuneloop.runtime.backends.openai_http import normalize_base_url
from tuneloop.runtime.types import ChatModel, GenerationConfig

KEY = "sk-test"
USER = [{"role": "user", "content": "Say hello to the tests"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
WEATHER_CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
}


@pytest.fixture
def stub():
    with OpenAIStub("Hello tests, this is the stub.", api_key=KEY) as server:
        yield server


@pytest.fixture
def model(stub):
    with OpenAIChatModel(stub.url, "stub-model", api_key=KEY, timeout=5.0) as m:
        yield m


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "given",
    [
        "http://h:8000",
        "http://h:8000/",
        "http://h:8000/v1",
        "http://h:8000/v1/",
        " http://h:8000/v1 ",
    ],
)
def test_base_url_is_normalized(given):
    assert normalize_base_url(given) == "http://h:8000/v1"


def test_is_a_chat_model(model):
    assert isinstance(model, ChatModel)
    assert model.name == "stub-model"


def test_plain_completion_with_usage(model):
    """Prompt 'Say hello to the tests' is 5 words; the reply is 6 words."""
    out = model.generate(USER)
    assert out.text == "Hello tests, this is the stub."
    assert out.finish_reason == "stop"
    assert (out.prompt_tokens, out.completion_tokens) == (5, 6)
    assert out.model == "stub-model"
    assert out.latency_s > 0
    assert out.tool_calls is None


def test_request_body_maps_the_generation_config(model, stub):
    config = GenerationConfig(
        max_new_tokens=42, temperature=0.7, top_p=0.9, stop=["###"], seed=3, tools=[WEATHER_TOOL]
    )
    model.generate(USER, config)
    body = stub.requests[-1].body
    assert stub.requests[-1].path == "/v1/chat/completions"
    assert body["model"] == "stub-model"
    assert body["messages"] == USER
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (42, 0.7, 0.9)
    assert (body["stop"], body["seed"], body["tools"]) == (["###"], 3, [WEATHER_TOOL])
    assert "stream" not in body


def test_unset_options_are_left_out_of_the_body(model, stub):
    model.generate(USER)
    body = stub.requests[-1].body
    assert not {"stop", "seed", "tools"} & body.keys()
    assert body["max_tokens"] == 256 and body["temperature"] == 0.0


def test_extra_body_is_merged(stub):
    with OpenAIChatModel(
        stub.url + "/v1/", "stub-model", api_key=KEY, extra_body={"top_k": 5}
    ) as m:
        m.generate(USER)
    assert stub.requests[-1].body["top_k"] == 5


def test_server_side_limits_map_to_finish_reasons(model):
    assert model.generate(USER, GenerationConfig(max_new_tokens=2)).finish_reason == "length"
    out = model.generate(USER, GenerationConfig(stop=[","]))
    assert (out.text, out.finish_reason) == ("Hello tests", "stop")


def test_stream_reassembles_the_same_text(model, stub):
    whole = model.generate(USER)
    chunks = list(model.stream(USER))
    assert len(chunks) > 3
    assert "".join(c.text for c in chunks) == whole.text
    assert all(c.output is None for c in chunks[:-1])
    final = chunks[-1].output
    assert chunks[-1].finish_reason == "stop"
    assert final.text == whole.text
    assert (final.prompt_tokens, final.completion_tokens) == (5, 6)  # from the usage chunk
    assert final.time_to_first_token_s is not None
    assert 0 < final.time_to_first_token_s <= final.latency_s
    body = stub.requests[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_stream_with_length_limit(model):
    chunks = list(model.stream(USER, GenerationConfig(max_new_tokens=2)))
    assert "".join(c.text for c in chunks) == "Hello tests,"
    assert chunks[-1].finish_reason == "length"


def test_tool_calls_are_parsed(model, stub):
    stub.tool_calls = [WEATHER_CALL]
    out = model.generate(USER, GenerationConfig(tools=[WEATHER_TOOL]))
    assert out.text == ""  # content was null
    assert out.finish_reason == "tool_calls"
    assert out.tool_calls == [WEATHER_CALL]


def test_streamed_tool_calls_are_reassembled(model, stub):
    second = {
        **WEATHER_CALL,
        "id": "call_2",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    stub.tool_calls = [WEATHER_CALL, second]
    final = list(model.stream(USER, GenerationConfig(tools=[WEATHER_TOOL])))[-1].output
    assert final.tool_calls == [WEATHER_CALL, second]
    assert final.finish_reason == "tool_calls"
    assert final.text == ""


def test_error_includes_status_and_server_message(model):
    with pytest.raises(BackendError) as info:
        model.generate(USER, GenerationConfig(temperature=5.0))
    error = info.value
    assert "HTTP 400" in str(error)
    assert "Expected a value <= 2, but got 5.0 instead" in str(error)
    assert "/v1/chat/completions" in str(error)
    assert (error.status_code, error.error_type, error.code) == (
        400,
        "invalid_request_error",
        "decimal_above_max_value",
    )


def test_stream_error_includes_status_and_server_message(model):
    with pytest.raises(BackendError, match=r"HTTP 400.*got 5.0 instead"):
        list(model.stream(USER, GenerationConfig(temperature=5.0)))


def test_error_mid_stream_raises(model, stub):
    stub.stream_error = {"message": "engine died", "type": "internal_error", "code": 500}
    chunks = model.stream(USER)
    assert next(chunks).text == "Hello "
    with pytest.raises(BackendError, match="engine died") as info:
        list(chunks)
    assert info.value.status_code is None and info.value.code == "500"


def test_unknown_model_is_a_404(stub):
    with OpenAIChatModel(stub.url, "no-such-model", api_key=KEY) as m:
        with pytest.raises(BackendError, match="HTTP 404.*no-such-model"):
            m.generate(USER)


def test_bearer_auth_header_is_sent(model, stub):
    model.generate(USER)
    assert stub.requests[-1].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("key", ["sk-wrong", None])
def test_wrong_or_missing_key_is_a_401(stub, key):
    with OpenAIChatModel(stub.url, "stub-model", api_key=key) as m:
        with pytest.raises(BackendError, match="HTTP 401.*Incorrect API key") as info:
            m.generate(USER)
    assert info.value.code == "invalid_api_key"
    assert ("authorization" in stub.requests[-1].headers) == (key is not None)


def test_list_models(model, stub):
    assert model.list_models() == ["stub-model"]
    assert stub.requests[-1].method == "GET" and stub.requests[-1].path == "/v1/models"


def test_connection_refused_is_a_backend_error_quickly():
    url = f"http://127.0.0.1:{_unused_port()}"
    start = time.perf_counter()
    with OpenAIChatModel(url, "m", timeout=5.0) as m:
        with pytest.raises(BackendError, match=r"cannot connect to http://127\.0\.0\.1:\d+/v1"):
            m.generate(USER)
        with pytest.raises(BackendError, match="cannot connect"):
            list(m.stream(USER))
    assert time.perf_counter() - start < 3


@pytest.mark.parametrize("streamed", [False, True])
def test_timeout_is_a_backend_error(stub, streamed):
    stub.delay_s = 5.0
    start = time.perf_counter()
    with OpenAIChatModel(stub.url, "stub-model", api_key=KEY, timeout=0.2) as m:
        with pytest.raises(BackendError, match=r"timed out after 0\.2 s") as info:
            list(m.stream(USER)) if streamed else m.generate(USER)
    assert time.perf_counter() - start < 3
    assert info.value.url.endswith("/v1/chat/completions")


def test_a_passed_in_client_is_used_and_not_closed(stub):
    client = httpx.Client()
    with OpenAIChatModel(stub.url, "stub-model", api_key=KEY, client=client) as m:
        assert m.generate(USER).text
    assert not client.is_closed
    client.close()
