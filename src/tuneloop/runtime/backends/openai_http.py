"""A :class:`~tuneloop.runtime.types.ChatModel` over any OpenAI-compatible HTTP server.

vLLM, llama.cpp's ``llama-server`` and tuneloop's own server all speak
``POST /v1/chat/completions``; this client maps :class:`GenerationConfig` onto that
request and the response (or its server-sent-event stream) back onto
:class:`GenerationOutput`. Every failure, HTTP or network, is a :class:`BackendError`
that names the URL, and every request has a timeout, so a dead server never hangs
a caller.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx

from tuneloop.runtime.backends.errors import BackendError
from tuneloop.runtime.types import (
    FinishReason,
    GenerationConfig,
    GenerationOutput,
    Message,
    StreamChunk,
)

_FINISH_REASONS: dict[str | None, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # the pre-tools OpenAI name
    None: "stop",
}


class OpenAIChatModel:
    """Chat completions from an OpenAI-compatible server.

    ``base_url`` may be given with or without the ``/v1`` suffix. ``extra_body`` is
    merged into every request (server-specific options such as vLLM's ``top_k``).
    Pass ``client`` to reuse an ``httpx.Client`` (or to inject a transport in tests);
    the timeout is still applied to each request.
    """

    supports_json_schema = True
    """``config.json_schema`` is sent as an OpenAI ``response_format`` (strict json_schema;
    ``schema_format="llamacpp"``: llama-cpp-python's ``json_object`` + ``schema``); whether
    it is enforced is up to the server (vLLM and llama.cpp's server do)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout: float = 60.0,
        client: httpx.Client | None = None,
        extra_body: dict[str, Any] | None = None,
        schema_format: Literal["json_schema", "llamacpp"] = "json_schema",
    ) -> None:
        self.name = model
        self.schema_format = schema_format
        self.base_url = normalize_base_url(base_url)
        self.timeout = timeout
        self.extra_body = dict(extra_body or {})
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout)

    def generate(
        self, messages: list[Message], config: GenerationConfig | None = None
    ) -> GenerationOutput:
        """Complete one conversation with a single (non-streamed) request."""
        url = f"{self.base_url}/chat/completions"
        start = time.perf_counter()
        data = self._request("POST", url, json=self._body(messages, config))
        try:
            choice = data["choices"][0]
        except (KeyError, IndexError, TypeError) as exc:
            raise BackendError(
                f"{url} returned a response without choices: {data!r:.300}", url=url
            ) from exc
        message = choice.get("message") or {}
        return _output(
            message.get("content") or "",
            choice.get("finish_reason"),
            message.get("tool_calls") or None,
            data.get("usage"),
            start,
            model=data.get("model") or self.name,
        )

    def stream(
        self, messages: list[Message], config: GenerationConfig | None = None
    ) -> Iterator[StreamChunk]:
        """Complete one conversation over SSE; the last chunk carries the whole output."""
        url = f"{self.base_url}/chat/completions"
        body = self._body(messages, config)
        body.update(stream=True, stream_options={"include_usage": True})
        start = time.perf_counter()
        first_token_s: float | None = None
        parts: list[str] = []
        calls: dict[int, dict[str, Any]] = {}
        finish: str | None = None
        usage: dict[str, Any] | None = None
        model = self.name
        try:
            with self._client.stream(
                "POST", url, json=body, headers=self._headers, timeout=self.timeout
            ) as response:
                if response.is_error:
                    response.read()
                    _raise_for_status(response, url)
                for event in _sse_events(response.iter_lines(), url):
                    model = event.get("model") or model
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        delta = choice.get("delta") or {}
                        if delta.get("content"):
                            if first_token_s is None:
                                first_token_s = time.perf_counter() - start
                            parts.append(delta["content"])
                            yield StreamChunk(text=delta["content"])
                        for call in delta.get("tool_calls") or []:
                            _merge_tool_call(calls, call)
                        finish = choice.get("finish_reason") or finish
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url, self.timeout) from exc
        tool_calls = [calls[i] for i in sorted(calls)] or None
        output = _output("".join(parts), finish, tool_calls, usage, start, model=model)
        output.time_to_first_token_s = first_token_s
        yield StreamChunk(finish_reason=output.finish_reason, output=output)

    def list_models(self) -> list[str]:
        """The ids of the models the server offers (``GET /v1/models``)."""
        url = f"{self.base_url}/models"
        data = self._request("GET", url)
        return [m["id"] for m in data.get("data") or [] if isinstance(m, dict) and "id" in m]

    def close(self) -> None:
        """Close the HTTP client, unless it was passed in by the caller."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> OpenAIChatModel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _body(self, messages: list[Message], config: GenerationConfig | None) -> dict[str, Any]:
        config = config or GenerationConfig()
        body: dict[str, Any] = {
            "model": self.name,
            "messages": messages,
            "max_tokens": config.max_new_tokens,
            "temperature": config.temperature,
            "top_p": config.top_p,
        }
        if config.stop:
            body["stop"] = config.stop
        if config.seed is not None:
            body["seed"] = config.seed
        if config.tools:
            body["tools"] = config.tools
            if config.tool_choice in ("none", "required"):
                body["tool_choice"] = config.tool_choice
            elif config.tool_choice != "auto":
                body["tool_choice"] = {"type": "function", "function": {"name": config.tool_choice}}
        if config.json_schema is not None and self.schema_format == "llamacpp":
            # llama-cpp-python's server takes the schema on a json_object response format.
            body["response_format"] = {"type": "json_object", "schema": config.json_schema}
        elif config.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "output", "schema": config.json_schema, "strict": True},
            }
        return {**body, **self.extra_body}

    def _request(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        """Send one request and return its JSON body; every failure is a BackendError."""
        try:
            response = self._client.request(
                method, url, headers=self._headers, timeout=self.timeout, **kwargs
            )
        except httpx.HTTPError as exc:
            raise _transport_error(exc, url, self.timeout) from exc
        _raise_for_status(response, url)
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(
                f"{url} returned a body that is not JSON: {response.text[:200]!r}", url=url
            ) from exc


def normalize_base_url(base_url: str) -> str:
    """``http://host:8000``, ``.../v1`` and ``.../v1/`` all become ``http://host:8000/v1``."""
    url = base_url.strip().rstrip("/")
    return url if url.endswith("/v1") else f"{url}/v1"


def _output(
    text: str,
    finish: str | None,
    tool_calls: list | None,
    usage: dict | None,
    start: float,
    model: str,
) -> GenerationOutput:
    usage = usage or {}
    return GenerationOutput(
        text=text,
        finish_reason=_finish_reason(finish, tool_calls),
        prompt_tokens=usage.get("prompt_tokens") or 0,
        completion_tokens=usage.get("completion_tokens") or 0,
        latency_s=time.perf_counter() - start,
        model=model,
        tool_calls=tool_calls,
    )


def _finish_reason(reason: str | None, tool_calls: list | None) -> FinishReason:
    # Some servers (older llama.cpp) say "stop" even when the answer is a tool call.
    if tool_calls and reason in (None, "stop"):
        return "tool_calls"
    return _FINISH_REASONS.get(reason, "error")  # content_filter, abort, ...


def _merge_tool_call(calls: dict[int, dict[str, Any]], delta: dict[str, Any]) -> None:
    """Fold one streamed tool-call fragment into the call at its ``index``."""
    call = calls.setdefault(
        delta.get("index", 0),
        {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
    )
    call["id"] = delta.get("id") or call["id"]
    call["type"] = delta.get("type") or call["type"]
    function = delta.get("function") or {}
    call["function"]["name"] += function.get("name") or ""
    call["function"]["arguments"] += function.get("arguments") or ""


def _sse_events(lines: Iterator[str], url: str) -> Iterator[dict[str, Any]]:
    """The JSON payloads of ``data:`` lines, up to ``data: [DONE]``."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # blank separators, ": keep-alive" comments, "event:" lines
        payload = line[len("data:") :].strip()
        if payload == "[DONE]":
            return
        try:
            event = json.loads(payload)
        except json.JSONDecodeError as exc:
            raise BackendError(
                f"{url} sent an event that is not JSON: {payload[:200]!r}", url=url
            ) from exc
        if isinstance(event, dict) and "error" in event:
            raise BackendError.from_body(
                event, url, None, "the server reported an error mid-stream"
            )
        yield event


def _raise_for_status(response: httpx.Response, url: str) -> None:
    if response.is_error:
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = response.text[:500].strip() or response.reason_phrase
        raise BackendError.from_body(body, url, response.status_code, detail)


def _transport_error(exc: httpx.HTTPError, url: str, timeout: float) -> BackendError:
    if isinstance(exc, httpx.TimeoutException):
        message = f"request to {url} timed out after {timeout:g} s ({type(exc).__name__})"
    elif isinstance(exc, httpx.ConnectError):
        message = f"cannot connect to {url}: {exc} (is the server running?)"
    else:
        message = f"request to {url} failed: {type(exc).__name__}: {exc}"
    return BackendError(message, url=url)
