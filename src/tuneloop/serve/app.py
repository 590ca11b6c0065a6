"""The OpenAI-compatible HTTP app: ``create_app(backend, ...)`` returns a FastAPI app.

Routes: ``POST /v1/chat/completions`` (JSON or server-sent events), ``GET /v1/models``,
``GET /health``, ``GET /metrics``. Every error, including request validation, has
OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``; bad input is a
4xx, never a 500. Each response carries ``x-request-id``, which is also the id of the
request's trace in the trace store.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tuneloop.runtime.backends.errors import BackendError, GrammarError
from tuneloop.runtime.events import new_id
from tuneloop.serve import completions as cc
from tuneloop.serve.metrics import ServeMetrics
from tuneloop.serve.protocol import (
    APIError,
    ChatCompletionRequest,
    chunk_body,
    completion_body,
    completion_id,
    usage,
)
from tuneloop.serve.scheduler import GenerationTimeout, QueueFullError

log = logging.getLogger("tuneloop.serve")
_REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
_OPEN_PATHS = frozenset({"/health"})


class _Gateway:
    """ASGI middleware: request id, bearer auth, request metrics. Pure ASGI (not
    BaseHTTPMiddleware) so streaming and client-disconnect detection are untouched."""

    def __init__(self, app, *, api_key: str | None, metrics: ServeMetrics):
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1").lower()
        request_id = given if _REQUEST_ID.match(given) else new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        path = scope["path"]
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        if self.api_key is not None and path not in _OPEN_PATHS and not self._authorized(headers):
            response = _error_response(APIError(
                401, "Incorrect or missing API key: send it as 'Authorization: Bearer <key>'.",
                type="authentication_error", code="invalid_api_key",
            ))  # fmt: skip
            await response(scope, receive, send_wrapper)
        else:
            await self.app(scope, receive, send_wrapper)
        route = (
            path
            if path in ("/v1/chat/completions", "/v1/models", "/health", "/metrics")
            else "other"
        )
        self.metrics.requests.labels(route, str(status["code"])).inc()

    def _authorized(self, headers: dict) -> bool:
        value = headers.get(b"authorization", b"")
        scheme, _, token = value.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), self.api_key)


def _error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def _validation_error(exc: RequestValidationError) -> APIError:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(x) for x in first.get("loc", ()) if x != "body"]
    where = ".".join(loc)
    message = f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    if len(errors) > 1:
        message += f" ({len(errors)} errors)"
    return APIError(400, message, param=where or None, code="invalid_request")


def _map_error(exc: BaseException) -> APIError:
    """Generation-time failures as HTTP errors."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, QueueFullError):
        return APIError(429, f"The server is at capacity ({exc}); retry shortly.",
                        type="rate_limit_error", code="queue_full", headers={"Retry-After": "1"})  # fmt: skip
    if isinstance(exc, GrammarError):
        return APIError(400, str(exc), param="response_format", code="invalid_schema")
    if isinstance(exc, GenerationTimeout | TimeoutError):
        return APIError(504, "The request timed out while generating.", type="timeout",
                        code="timeout")  # fmt: skip
    if isinstance(exc, BackendError):
        status = exc.status_code if exc.status_code and 400 <= exc.status_code < 500 else 502
        return APIError(status, f"upstream: {exc}", type=exc.error_type or "upstream_error",
                        code=exc.code)  # fmt: skip
    log.exception("generation failed", exc_info=exc)
    return APIError(500, "internal error while generating", type="server_error")


def create_app(backend, *, api_key: str | None = None, options: cc.ServeOptions | None = None,
               trace_sink=None, metrics: ServeMetrics | None = None) -> FastAPI:  # fmt: skip
    """The server app over ``backend`` (:class:`~tuneloop.serve.backends.LocalBackend` or
    :class:`~tuneloop.serve.backends.ChatModelBackend`). ``api_key``: every route but
    ``/health`` needs ``Authorization: Bearer <api_key>``. ``trace_sink``: an event sink
    (e.g. :class:`~tuneloop.tracing.TraceSink`) that receives each request as a run."""
    options = options or cc.ServeOptions()
    metrics = metrics or ServeMetrics()

    @asynccontextmanager
    async def lifespan(app):
        yield
        await backend.close()  # drains queued and running generations first
        if trace_sink is not None and hasattr(trace_sink, "close"):
            await asyncio.to_thread(trace_sink.close)

    app = FastAPI(title="tuneloop", version="1", lifespan=lifespan)
    app.state.metrics = metrics
    app.state.backend = backend

    @app.exception_handler(APIError)
    async def _api_error(request, exc: APIError):
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        return _error_response(_validation_error(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, exc: StarletteHTTPException):
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return _error_response(APIError(exc.status_code, str(exc.detail), type=kind))

    @app.exception_handler(Exception)
    async def _crash(request, exc: Exception):
        return _error_response(_map_error(exc))

    @app.get("/health")
    async def health() -> dict:
        scheduler = getattr(backend, "scheduler", None)
        extra = {"waiting": scheduler.waiting, "active": scheduler.active} if scheduler else {}
        return {"status": "ok", "models": backend.names, **extra}

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"object": "list", "data": [_model_card(n, backend) for n in backend.names]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str) -> dict:
        if model_id not in backend.names:
            raise APIError(404, f"The model {model_id!r} does not exist", param="model",
                           code="model_not_found")  # fmt: skip
        return _model_card(model_id, backend)

    handler = ChatHandler(backend, options, metrics, trace_sink)

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        return await handler.handle(body, request)

    app.add_middleware(_Gateway, api_key=api_key, metrics=metrics)
    return app


def _model_card(name: str, backend) -> dict:
    parent = None if name == backend.names[0] else backend.names[0]
    return {"id": name, "object": "model", "created": 0, "owned_by": "tuneloop", "parent": parent}


def _sse(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


class ChatHandler:
    """Runs chat completions on a backend: ``n`` choices, timeouts, client disconnects,
    tool-call and schema checks (:mod:`.completions`), metrics and the request's trace."""

    def __init__(self, backend, options: cc.ServeOptions, metrics: ServeMetrics, trace_sink=None):
        self.backend = backend
        self.options = options
        self.metrics = metrics
        self.trace_sink = trace_sink

    async def handle(self, body: ChatCompletionRequest, request: Request):
        """Answer one ``POST /v1/chat/completions``: JSON, live SSE, or a replayed SSE."""
        p = cc.prepare(self.backend, body, request.state.request_id, self.options)
        cc.trace_start(p)
        live = (
            body.stream
            and not p.tools_active
            and not (p.schema is not None and getattr(self.backend, "repairs_schema", False))
        )
        if live:
            return await self._stream_live(p)
        result = await self._complete(p, request)
        if body.stream:
            return StreamingResponse(self._replay(p, result), media_type="text/event-stream")
        return JSONResponse(result)

    def _runs(self, p: cc.Prepared, stream: bool):
        n = p.request.n
        for i in range(n):
            config = p.config
            if n > 1 and config.seed is not None:
                config = config.model_copy(update={"seed": config.seed + i})
            yield self.backend.run(p.messages, config, adapter=p.adapter,
                              timeout_s=self.options.request_timeout_s, stream=stream)  # fmt: skip

    async def _collect(self, p: cc.Prepared) -> list:
        async def one(run):
            output = None
            async for kind, value in run:
                if kind == "done":
                    output = value
            return output

        return await asyncio.gather(*(one(r) for r in self._runs(p, stream=False)))

    async def _complete(self, p: cc.Prepared, request: Request) -> dict:
        outputs, error, answer = [], None, None
        task = asyncio.create_task(self._collect(p))
        try:
            async with asyncio.timeout(self.options.request_timeout_s):
                while not task.done():
                    await asyncio.wait({task}, timeout=0.5)
                    if not task.done() and await request.is_disconnected():
                        task.cancel()
                        raise APIError(499, "client closed the request", code="client_closed")
                outputs = task.result()
            choices = []
            for i, raw in enumerate(outputs):
                self.metrics.observe_output(raw)
                cc.trace_call(p, i, raw, constrained=self._constrained(p))
                out = await cc.enforce_schema(
                    p, self.backend, raw, self.metrics, self.options.repair
                )
                message, finish, failed = cc.check_tool_calls(p, out)
                if failed:
                    self.metrics.tool_parse_failures.inc()
                outputs[i] = out
                choices.append({"index": i, "message": message, "finish_reason": finish,
                                "logprobs": None})  # fmt: skip
            answer = choices[0]["message"].get("content") if choices else None
            return completion_body(
                completion_id(), p.model_name, choices,
                usage(outputs[0].prompt_tokens, sum(o.completion_tokens for o in outputs)),
            )  # fmt: skip
        except BaseException as exc:
            error = exc
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise _map_error(exc) from exc
        finally:
            if not task.done():
                task.cancel()
            self.metrics.e2e.observe(time.perf_counter() - p.started)
            self._record(p, outputs, error, answer)

    async def _stream_live(self, p: cc.Prepared) -> StreamingResponse:
        merged = cc.merge_choices(list(self._runs(p, stream=True)))
        try:  # errors before the first token (queue full, bad grammar) are HTTP errors
            async with asyncio.timeout(self.options.request_timeout_s):
                first = await anext(merged, None)
        except BaseException as exc:
            await merged.aclose()
            self._record(p, [], exc, None)
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise _map_error(exc) from exc
        return StreamingResponse(self._sse_live(p, first, merged), media_type="text/event-stream")

    async def _sse_live(self, p: cc.Prepared, first, merged):
        cid, created = completion_id(), int(time.time())
        outputs: dict[int, object] = {}
        error, started_roles = None, set()

        def chunk(i, delta, finish=None):
            return _sse(chunk_body(cid, p.model_name, created,
                                   [{"index": i, "delta": delta, "finish_reason": finish,
                                     "logprobs": None}]))  # fmt: skip

        try:
            async with asyncio.timeout(self.options.request_timeout_s):
                item = first
                while item is not None:
                    i, (kind, value) = item
                    if i not in started_roles:
                        started_roles.add(i)
                        yield chunk(i, {"role": "assistant", "content": ""})
                    if kind == "text":
                        yield chunk(i, {"content": value})
                    else:
                        outputs[i] = value
                        self.metrics.observe_output(value)
                        cc.trace_call(p, i, value, constrained=self._constrained(p))
                        if p.schema is not None:
                            _, errs = p.schema.validate(value.text)
                            p.emit(cc.ev.ValidationResult(passed=not errs, errors=errs))
                        yield chunk(i, {}, value.finish_reason)
                    item = await anext(merged, None)
            if p.request.stream_options and p.request.stream_options.include_usage:
                outs = list(outputs.values())
                u = usage(
                    outs[0].prompt_tokens if outs else 0, sum(o.completion_tokens for o in outs)
                )
                yield _sse(chunk_body(cid, p.model_name, created, [], u))
        except BaseException as exc:
            error = exc
            if not isinstance(exc, asyncio.CancelledError | GeneratorExit):
                yield _sse(_map_error(exc).body())
        finally:
            await merged.aclose()
            self.metrics.e2e.observe(time.perf_counter() - p.started)
            outs = [outputs[k] for k in sorted(outputs)]
            self._record(p, outs, error, outs[0].text if outs and not error else None)
        if error is None:
            yield "data: [DONE]\n\n"

    async def _replay(self, p: cc.Prepared, result: dict):
        """A finished (buffered) completion as a stream: tool calls and repaired schemas
        are only known once the whole output is."""
        cid, created = result["id"], result["created"]
        for choice in result["choices"]:
            msg, i = choice["message"], choice["index"]
            delta = {"role": "assistant", "content": msg.get("content")}
            if msg.get("tool_calls"):
                delta["tool_calls"] = [{**c, "index": k} for k, c in enumerate(msg["tool_calls"])]
            yield _sse(chunk_body(cid, p.model_name, created,
                                  [{"index": i, "delta": delta, "finish_reason": None}]))  # fmt: skip
            yield _sse(chunk_body(cid, p.model_name, created,
                                  [{"index": i, "delta": {}, "finish_reason": choice["finish_reason"]}]))  # fmt: skip
        if p.request.stream_options and p.request.stream_options.include_usage:
            yield _sse(chunk_body(cid, p.model_name, created, [], result["usage"]))
        yield "data: [DONE]\n\n"

    def _constrained(self, p: cc.Prepared) -> bool:
        forced = p.config.tools and p.config.tool_choice not in ("auto", "none")
        return bool(self.backend.supports_json_schema and (p.schema is not None or forced))

    def _record(self, p: cc.Prepared, outputs, error, answer) -> None:
        if self.trace_sink is None:
            return
        cc.trace_finish(p, outputs, error, answer)
        events = list(p.events)

        def write():
            try:
                for event in events:
                    self.trace_sink.emit(event)
            except Exception:  # a broken trace store must not break serving
                log.exception("could not write the trace of request %s", p.request_id)

        asyncio.get_running_loop().run_in_executor(None, write)
