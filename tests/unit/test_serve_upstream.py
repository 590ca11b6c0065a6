"""Upstream mode: tuneloop in front of another OpenAI-compatible server (a second tuneloop
server over the tiny model or a FakeModel), adding tool-call checks, schema repair, traces."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.helpers.serve import chat_model_server, local_server
from tuneloop.runtime.backends.fake import FakeModel
from tuneloop.runtime.backends.openai_http import OpenAIChatModel

MSG = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def upstream(tiny_model_dir):
    with local_server(tiny_model_dir) as (url, _):
        yield url


@pytest.fixture(scope="module")
def front(upstream, tmp_path_factory):
    from tuneloop.tracing import TraceSink

    db = tmp_path_factory.mktemp("front") / "traces.db"
    with chat_model_server(OpenAIChatModel(upstream, "tiny"), trace_sink=TraceSink(db)) as (url, _):
        yield url, db


def _client(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def test_same_text_through_tuneloop_as_direct(upstream, front):
    direct = _client(upstream).chat.completions.create(model="tiny", messages=MSG, max_tokens=8)
    through = _client(front[0]).chat.completions.create(model="tiny", messages=MSG, max_tokens=8)
    assert through.choices[0].message.content == direct.choices[0].message.content
    assert through.usage.completion_tokens == direct.usage.completion_tokens
    chunks = list(_client(front[0]).chat.completions.create(
        model="tiny", messages=MSG, max_tokens=8, stream=True, stream_options={"include_usage": True}))  # fmt: skip
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == direct.choices[0].message.content
    assert chunks[-1].usage.completion_tokens == direct.usage.completion_tokens


def test_schema_is_enforced_upstream_and_validated_in_front(front):
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    r = _client(front[0]).chat.completions.create(model="tiny", messages=MSG, max_tokens=30, response_format={
        "type": "json_schema", "json_schema": {"name": "ok", "schema": schema}})  # fmt: skip
    assert isinstance(json.loads(r.choices[0].message.content)["ok"], bool)


def test_upstream_errors_keep_their_status(front):
    long = [{"role": "user", "content": "Paris " * 2000}]
    r = httpx.post(
        front[0] + "/v1/chat/completions", json={"model": "tiny", "messages": long}, timeout=60
    )
    assert r.status_code == 413
    assert r.json()["error"]["message"].startswith("upstream:")
    r = httpx.post(front[0] + "/v1/chat/completions", json={"model": "other", "messages": MSG})
    assert r.status_code == 404


def test_front_records_the_trace(front):
    from tuneloop.tracing import TraceStore

    raw = _client(front[0]).chat.completions.with_raw_response.create(
        model="tiny", messages=MSG, max_tokens=2
    )
    rid = raw.headers["x-request-id"]
    deadline = time.monotonic() + 10
    while True:
        try:
            kinds = [e.kind for e in TraceStore(front[1]).run_events(rid)]
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"


def test_structured_tool_calls_from_upstream_are_checked():
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]  # fmt: skip
    good = '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>'
    bad = '<tool_call>{"name": "get_weather", "arguments": {"city": 3}}</tool_call>'
    with chat_model_server(FakeModel([good, bad])) as (up, _):
        with chat_model_server(OpenAIChatModel(up, "fake")) as (url, _):
            c = _client(url)
            r = c.chat.completions.create(model="fake", messages=MSG, tools=tools)
            assert r.choices[0].message.tool_calls[0].function.name == "get_weather"
            # invalid arguments: no tool_calls from the front either, and it counts the failure
            r = c.chat.completions.create(model="fake", messages=MSG, tools=tools)
            assert r.choices[0].message.tool_calls is None
            assert "tuneloop_tool_parse_failures_total 1.0" in httpx.get(url + "/metrics").text
