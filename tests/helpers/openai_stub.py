"""A small OpenAI-compatible server on 127.0.0.1, for tests of HTTP clients.

It speaks just enough of the protocol to exercise a client end to end over a real
socket: ``POST /v1/chat/completions`` (JSON, or SSE when ``stream`` is true, with the
usage in a last chunk when ``stream_options.include_usage`` is set), tool calls,
OpenAI-shaped errors, bearer auth and ``GET /v1/models``::

    with OpenAIStub(reply="Hi there.", api_key="sk-test") as stub:
        model = OpenAIChatModel(stub.url, "stub-model", api_key="sk-test")
        assert model.generate([{"role": "user", "content": "Hi"}]).text == "Hi there."
        assert stub.requests[-1].body["max_tokens"] == 256

Like a real server it applies ``stop`` (cut at the first stop string) and
``max_tokens`` (counted as whitespace-separated words, finish reason ``length``).
It rejects a ``temperature`` above 2 with HTTP 400 and an unknown model with 404,
as OpenAI does. The attributes (``reply``, ``tool_calls``, ``delay_s``,
``stream_error``) may be changed between requests.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class StubRequest:
    """One request the stub received."""

    method: str
    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    body: dict[str, Any] = field(default_factory=dict)


class OpenAIStub:
    """A threaded OpenAI-compatible HTTP server on an ephemeral loopback port."""

    def __init__(
        self,
        reply: str | Callable[[dict[str, Any]], str] = "Hello from the stub server.",
        *,
        api_key: str | None = None,
        models: tuple[str, ...] = ("stub-model",),
        tool_calls: list[dict[str, Any]] | None = None,
    ) -> None:
        self.reply = reply
        """The answer text, or a function of the request body that returns it."""
        self.api_key = api_key
        """When set, requests without ``Authorization: Bearer <api_key>`` get HTTP 401."""
        self.models = models
        """Model ids the server knows; others get HTTP 404."""
        self.tool_calls = tool_calls
        """When set, answer with these tool calls (content null) instead of text."""
        self.delay_s = 0.0
        """Seconds to wait before answering (for timeout tests)."""
        self.stream_error: dict[str, Any] | None = None
        """When set, a stream sends one word and then ``data: {"error": stream_error}``."""
        self.requests: list[StubRequest] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.stub = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (no ``/v1``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> OpenAIStub:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIStub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- protocol ------------------------------------------------------------------

    def _answer(self, body: dict[str, Any]) -> tuple[str, str, list[dict] | None]:
        """(text, finish_reason, tool_calls) for a valid chat request."""
        if self.tool_calls:
            return "", "tool_calls", self.tool_calls
        text = self.reply(body) if callable(self.reply) else self.reply
        stops = body.get("stop") or []
        cuts = [
            i
            for i in (text.find(s) for s in ([stops] if isinstance(stops, str) else stops))
            if i >= 0
        ]
        if cuts:
            text = text[: min(cuts)]
        words = list(re.finditer(r"\S+", text))
        limit = body.get("max_tokens")
        if limit is not None and len(words) > limit:
            return text[: words[limit - 1].end()], "length", None
        return text, "stop", None

    def _validate(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
        if not isinstance(body.get("messages"), list):
            return 400, _error("'messages' is a required property", "messages", None)
        if body.get("model") not in self.models:
            return 404, _error(
                f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                None,
                "model_not_found",
            )
        temperature = body.get("temperature", 1)
        if temperature > 2:
            return 400, _error(
                "Invalid 'temperature': decimal above maximum value. "
                f"Expected a value <= 2, but got {temperature} instead.",
                "temperature",
                "decimal_above_max_value",
            )
        return None

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        text, finish, tool_calls = self._answer(body)
        message: dict[str, Any] = {"role": "assistant", "content": text if not tool_calls else None}
        if tool_calls:
            message["tool_calls"] = tool_calls
        return {
            "id": f"chatcmpl-stub-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            ],
            "usage": _usage(body, text, tool_calls),
        }

    def _chunks(self, body: dict[str, Any]) -> Iterator[dict[str, Any] | str]:
        """The SSE events of a streamed completion (dicts are JSON; ``"[DONE]"`` ends)."""
        text, finish, tool_calls = self._answer(body)
        head = {"id": f"chatcmpl-stub-{len(self.requests)}", "object": "chat.completion.chunk"}
        head.update(created=int(time.time()), model=body["model"])

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return {**head, "choices": [choice]}

        yield chunk({"role": "assistant", "content": ""})
        for n, piece in enumerate(re.split(r"(?<=\s)(?=\S)", text)):
            if piece:
                yield chunk({"content": piece})
            if self.stream_error is not None and n == 0:
                yield {"error": self.stream_error}
                return
        for index, call in enumerate(tool_calls or []):
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2  # split the arguments, as real servers do
            first = {"name": call["function"]["name"], "arguments": arguments[:half]}
            yield chunk({"tool_calls": [{"index": index, **call, "function": first}]})
            rest = {"index": index, "function": {"arguments": arguments[half:]}}
            yield chunk({"tool_calls": [rest]})
        yield chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            yield {**head, "choices": [], "usage": _usage(body, text, tool_calls)}
        yield "[DONE]"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and chunked transfer for streams
    timeout = 10  # idle keep-alive connections close on their own

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # keep test output clean

    @property
    def stub(self) -> OpenAIStub:
        return self.server.stub  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        if not self._accept({}):
            return
        if self.path.rstrip("/") != "/v1/models":
            return self._json(404, _error(f"Unknown path {self.path}", None, None))
        models = [
            {"id": m, "object": "model", "created": 0, "owned_by": "stub"} for m in self.stub.models
        ]
        self._json(200, {"object": "list", "data": models})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return self._json(400, _error("We could not parse the JSON body.", None, None))
        if not self._accept(body):
            return
        if self.path.rstrip("/") != "/v1/chat/completions":
            return self._json(404, _error(f"Unknown path {self.path}", None, None))
        problem = self.stub._validate(body)
        if problem:
            return self._json(*problem)
        if self.stub.delay_s:
            self.stub._stopping.wait(self.stub.delay_s)
        if body.get("stream"):
            return self._stream(body)
        self._json(200, self.stub._completion(body))

    def _accept(self, body: dict[str, Any]) -> bool:
        """Record the request; answer 401 and return False when the key is wrong."""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.stub.requests.append(StubRequest(self.command, self.path, headers, body))
        key = self.stub.api_key
        if key and headers.get("authorization") != f"Bearer {key}":
            given = headers.get("authorization", "").removeprefix("Bearer ")
            message = f"Incorrect API key provided: {given or '(none)'}."
            self._json(401, _error(message, None, "invalid_api_key"))
            return False
        return True

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, body: dict[str, Any]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for event in self.stub._chunks(body):
            payload = event if isinstance(event, str) else json.dumps(event)
            data = f"data: {payload}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


def _error(message: str, param: str | None, code: str | None) -> dict[str, Any]:
    """OpenAI's error body."""
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }


def _usage(body: dict[str, Any], text: str, tool_calls: list[dict] | None) -> dict[str, int]:
    """Token counts approximated by whitespace-separated words."""
    prompt = sum(len(str(m.get("content") or "").split()) for m in body["messages"])
    completion = len(text.split()) + sum(
        len(c["function"]["arguments"].split()) for c in tool_calls or []
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
