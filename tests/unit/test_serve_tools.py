"""Tool calls over HTTP with a scripted FakeModel: round trip, fail-closed parsing, streaming."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.helpers.serve import chat_model_server
from tuneloop.runtime.backends.fake import FakeModel

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]},
}}]  # fmt: skip
ASK = [{"role": "user", "content": "Weather in Paris?"}]
CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'


def _weather_model(messages, config):
    """Calls the tool until it sees a tool result, then answers from it."""
    if messages[-1]["role"] == "tool":
        return f"It is {json.loads(messages[-1]['content'])['sky']} in Paris."
    return CALL


@pytest.fixture
def client():
    model = FakeModel(_weather_model, repeat_last=True)
    with chat_model_server(model) as (url, _):
        yield openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0), url, model


def test_tool_call_round_trip(client):
    c, _, model = client
    first = c.chat.completions.create(model="fake", messages=ASK, tools=TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id.startswith("call_")
    followup = [*ASK, choice.message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"sky": "sunny"})}]  # fmt: skip
    final = c.chat.completions.create(model="fake", messages=followup, tools=TOOLS)
    assert final.choices[0].finish_reason == "stop"
    assert final.choices[0].message.content == "It is sunny in Paris."
    sent = model.calls[-1][0]
    assert sent[1]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris"}
    assert sent[2]["role"] == "tool"


def test_tool_call_streams_as_one_delta(client):
    c, _, _ = client
    chunks = list(c.chat.completions.create(model="fake", messages=ASK, tools=TOOLS, stream=True))
    calls = [tc for ch in chunks for tc in (ch.choices[0].delta.tool_calls or [])]
    assert [tc.function.name for tc in calls] == ["get_weather"]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_choice_none_does_not_parse_calls(client):
    c, _, model = client
    r = c.chat.completions.create(model="fake", messages=ASK, tools=TOOLS, tool_choice="none")
    assert r.choices[0].message.tool_calls is None
    assert model.calls[-1][1].tools is None  # tools are not offered to the model


@pytest.mark.parametrize("bad", [
    '<tool_call>{"name": "get_weather", "arguments": {"city": </tool_call>',  # broken JSON
    '<tool_call>{"name": "launch_rockets", "arguments": {}}</tool_call>',  # unknown tool
    '<tool_call>{"name": "get_weather", "arguments": {"town": 1}}</tool_call>',  # bad arguments
])  # fmt: skip
def test_malformed_tool_call_fails_closed(bad):
    with chat_model_server(FakeModel(bad, repeat_last=True)) as (url, _):
        c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        r = c.chat.completions.create(model="fake", messages=ASK, tools=TOOLS)
        assert r.choices[0].message.tool_calls is None
        assert r.choices[0].finish_reason == "stop"
        assert r.choices[0].message.content == bad
        metrics = httpx.get(url + "/metrics").text
        assert "tuneloop_tool_parse_failures_total 1.0" in metrics


def test_named_tool_choice_rejects_another_tool():
    tools = [
        *TOOLS,
        {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}},
    ]
    with chat_model_server(FakeModel(CALL, repeat_last=True)) as (url, _):
        c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        r = c.chat.completions.create(model="fake", messages=ASK, tools=tools,
                                      tool_choice={"type": "function", "function": {"name": "other"}})  # fmt: skip
        assert r.choices[0].message.tool_calls is None


def test_schema_repair_on_a_backend_that_does_not_constrain():
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    model = FakeModel(["not json", '{"n": "three"}', '{"n": 3}'])
    with chat_model_server(model) as (url, _):
        c = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        r = c.chat.completions.create(model="fake", messages=ASK, response_format={
            "type": "json_schema", "json_schema": {"name": "n", "schema": schema}})  # fmt: skip
        assert json.loads(r.choices[0].message.content) == {"n": 3}
        assert "tuneloop_schema_repairs_total 2.0" in httpx.get(url + "/metrics").text


def test_schema_that_never_validates_is_an_error_not_a_fake_answer():
    model = FakeModel("still not json", repeat_last=True)
    with chat_model_server(model) as (url, _):
        r = httpx.post(url + "/v1/chat/completions", json={
            "model": "fake", "messages": ASK, "response_format": {"type": "json_object"}})  # fmt: skip
        assert r.status_code == 502
        assert r.json()["error"]["code"] == "invalid_model_output"
