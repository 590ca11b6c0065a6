"""One chat completion, from validated request to OpenAI response: the reliability layer.

For each request: pick the model or adapter, check the prompt against the context
window, map the request onto :class:`GenerationConfig`, generate (``n`` choices in
parallel), then

- tool calls are parsed with :mod:`tuneloop.runtime.toolcalls` and checked against
  the offered tools (name, argument schema); a malformed or invalid call fails
  closed: the text comes back as plain content, no ``tool_calls``, and the
  ``tuneloop_tool_parse_failures`` counter goes up;
- a ``response_format`` schema is enforced by the grammar locally, and on other
  backends validated and repaired within a budget (``validate_and_repair``);
- the request becomes one trace (run id = the ``x-request-id`` header).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from jsonschema import Draft202012Validator

from tuneloop.runtime import events as ev
from tuneloop.runtime.structured import OutputSchema, RepairBudget, SchemaFileError
from tuneloop.runtime.toolcalls import parse_output
from tuneloop.runtime.types import GenerationConfig, GenerationOutput
from tuneloop.serve.protocol import APIError, ChatCompletionRequest


@dataclass
class ServeOptions:
    """Limits of the serving layer (the CLI flags)."""

    request_timeout_s: float = 600.0
    """A request still generating after this long is stopped (HTTP 504)."""
    default_max_tokens: int = 512
    """Tokens generated when a request sets neither ``max_tokens`` nor
    ``max_completion_tokens`` (always capped by the context window)."""
    repair: RepairBudget = field(default_factory=lambda: RepairBudget(max_repairs=2))
    """Re-asks for an output that fails the response schema (non-constrained backends)."""


@dataclass
class Prepared:
    """A request resolved against the backend, ready to generate."""

    request: ChatCompletionRequest
    request_id: str
    messages: list[dict]
    config: GenerationConfig
    adapter: str | None
    model_name: str
    schema: OutputSchema | None
    tools_active: bool
    prompt_tokens: int | None
    events: list = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def emit(self, event) -> None:
        event.run_id = self.request_id
        self.events.append(event)


def prepare(
    backend, req: ChatCompletionRequest, request_id: str, options: ServeOptions
) -> Prepared:
    """Validate what pydantic cannot (model name, schema, context size) and build the config."""
    if req.model not in backend.names:
        raise APIError(404, f"The model {req.model!r} does not exist; this server has "
                       f"{', '.join(backend.names)}", param="model", code="model_not_found")  # fmt: skip
    adapter = None if req.model == backend.names[0] else req.model
    messages = [m.to_runtime() for m in req.messages]
    choice = req.tool_choice_name
    tools = [t.model_dump(exclude_none=True) for t in req.tools] if req.tools else None
    if choice not in ("auto", "none", "required") and choice not in {
        t["function"]["name"] for t in tools or []
    }:
        raise APIError(400, f"tool_choice names {choice!r}, which is not among the tools",
                       param="tool_choice")  # fmt: skip
    if choice == "required" and not tools:
        raise APIError(400, "tool_choice 'required' needs tools", param="tool_choice")
    tools_active = bool(tools) and choice != "none"
    schema = _response_schema(req)
    prompt_tokens = None
    window = backend.context_window
    try:
        prompt_tokens = backend.count_prompt(messages, tools if tools_active else None)
    except Exception as exc:  # a template that cannot render these messages
        raise APIError(400, f"cannot render the messages: {exc}", param="messages") from exc
    wanted = req.max_completion_tokens or req.max_tokens or options.default_max_tokens
    if window and prompt_tokens is not None:
        if prompt_tokens >= window:
            raise APIError(413, f"This model's context window is {window} tokens; the prompt has "
                           f"{prompt_tokens}.", param="messages", code="context_length_exceeded")  # fmt: skip
        wanted = min(wanted, window - prompt_tokens)
    config = GenerationConfig(
        max_new_tokens=wanted, temperature=req.temperature or 0.0, top_p=req.top_p or 1.0,
        stop=req.stop_list, seed=req.seed, tools=tools if tools_active else None,
        tool_choice=choice if tools_active else "auto",
        json_schema=schema.json_schema if schema is not None else None,
    )  # fmt: skip
    return Prepared(req, request_id, messages, config, adapter, req.model, schema, tools_active,
                    prompt_tokens)  # fmt: skip


def _response_schema(req: ChatCompletionRequest) -> OutputSchema | None:
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return OutputSchema({"type": "object"}, name="json_object")
    if fmt.json_schema is None or fmt.json_schema.schema_ is None:
        raise APIError(400, "response_format json_schema needs json_schema.schema",
                       param="response_format")  # fmt: skip
    try:
        return OutputSchema(fmt.json_schema.schema_, name=fmt.json_schema.name)
    except SchemaFileError as exc:
        raise APIError(400, str(exc), param="response_format") from exc


def check_tool_calls(p: Prepared, output: GenerationOutput) -> tuple[dict, str, bool]:
    """``(message, finish_reason, parse_failed)`` for one output; fails closed."""
    if not p.tools_active:
        return {"role": "assistant", "content": output.text}, output.finish_reason, False
    parsed = parse_output(output.text, output.tool_calls, tools_offered=True)
    specs = {t["function"]["name"]: t["function"] for t in p.config.tools}
    problems: list[tuple[str, str | None, str, str]] = []  # reason, tool, raw, error
    for error in parsed.errors:
        problems.append(("parse_error", None, error.raw, error.error))
    for call in parsed.calls:
        spec = specs.get(call.name)
        if spec is None:
            problems.append(("unknown_tool", call.name, call.raw, f"no tool named {call.name!r}"))
        elif p.config.tool_choice not in ("auto", "required") and call.name != p.config.tool_choice:
            problems.append(("not_allowed", call.name, call.raw, "tool_choice names another tool"))
        elif not isinstance(call.arguments, dict):
            problems.append(
                ("invalid_arguments", call.name, call.raw, "arguments are not an object")
            )
        else:
            errs = list(
                Draft202012Validator(spec.get("parameters") or {}).iter_errors(call.arguments)
            )
            if errs:
                problems.append(("invalid_arguments", call.name, call.raw, errs[0].message))
    for reason, tool, raw, error in problems:
        p.emit(ev.ToolCallRejected(reason=reason, tool=tool, raw=raw, error=error))
    if parsed.fabricated:
        p.emit(ev.FabricatedToolResponse(raw=parsed.fabricated))
    if problems or not parsed.calls:
        content = output.text if problems else parsed.content
        return {"role": "assistant", "content": content}, output.finish_reason, bool(problems)
    calls = [{"id": c.id, "type": "function",
              "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
             for c in parsed.calls]  # fmt: skip
    return (
        {"role": "assistant", "content": parsed.content or None, "tool_calls": calls},
        "tool_calls",
        False,
    )


async def enforce_schema(
    p: Prepared, backend, output: GenerationOutput, metrics, budget: RepairBudget
) -> GenerationOutput:
    """Validate against the response schema; repair on backends that do not constrain."""
    if p.schema is None:
        return output
    value, errors = p.schema.validate(output.text)
    p.emit(ev.ValidationResult(passed=not errors, errors=errors))
    if not errors or not getattr(backend, "repairs_schema", False):
        return output  # valid, or constrained locally and cut off by max_tokens
    from tuneloop.runtime.structured import StructuredOutputError, validate_and_repair

    def call_model(messages, config, purpose):
        metrics.schema_repairs.inc()
        return backend.model.generate(messages, config)

    collected: list = []
    try:
        result = await asyncio.to_thread(
            validate_and_repair, output, p.messages, p.schema, call_model=call_model,
            config=p.config, budget=budget, constrain_repairs=backend.supports_json_schema,
            emit=collected.append,
        )  # fmt: skip
    except StructuredOutputError as exc:
        for e in collected[1:]:
            p.emit(e)
        raise APIError(
            502,
            f"the model's output did not match the response schema: {exc}",
            type="server_error",
            code="invalid_model_output",
        ) from exc
    for e in collected[1:]:
        p.emit(e)
    last = result.attempts[-1]
    return output.model_copy(update={
        "text": result.text, "finish_reason": last.finish_reason,
        "prompt_tokens": sum(a.prompt_tokens for a in result.attempts),
        "completion_tokens": sum(a.completion_tokens for a in result.attempts),
    })  # fmt: skip


def trace_start(p: Prepared) -> None:
    tools = p.config.tools or []
    p.emit(ev.RunStarted(
        model=p.model_name, tools=[t["function"]["name"] for t in tools], tool_specs=tools,
        tools_hash=ev.stable_hash(tools) if tools else None, messages=p.messages,
        output_schema_hash=p.schema.hash if p.schema else None,
    ))  # fmt: skip


def trace_call(p: Prepared, index: int, output: GenerationOutput, constrained: bool) -> None:
    p.emit(ev.ModelCall(
        step=index, model=p.model_name, prompt_hash=ev.stable_hash([p.messages, p.config.tools]),
        prompt_tokens=output.prompt_tokens, completion_tokens=output.completion_tokens,
        latency_s=output.latency_s, time_to_first_token_s=output.time_to_first_token_s,
        finish_reason=output.finish_reason, constrained=constrained, output=output.text,
        tool_calls=output.tool_calls,
    ))  # fmt: skip


def trace_finish(
    p: Prepared, outputs: list[GenerationOutput], error: Exception | None, answer=None
):
    p.emit(ev.RunFinished(
        status="error" if error else "ok", error=str(error)[:500] if error else None,
        error_type=type(error).__name__ if error else None, steps=len(outputs),
        prompt_tokens=sum(o.prompt_tokens for o in outputs),
        completion_tokens=sum(o.completion_tokens for o in outputs),
        latency_s=time.perf_counter() - p.started, answer=answer,
    ))  # fmt: skip


async def merge_choices(streams: list[AsyncIterator[tuple]]) -> AsyncIterator[tuple[int, tuple]]:
    """Interleave ``n`` choice streams as ``(index, item)``; cancel them all on exit."""
    if len(streams) == 1:
        async for item in streams[0]:
            yield 0, item
        return
    queue: asyncio.Queue = asyncio.Queue()

    async def pump(i, s):
        try:
            async for item in s:
                await queue.put((i, item))
        except BaseException as exc:
            await queue.put((i, ("error", exc)))
            return
        await queue.put((i, ("end", None)))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        open_ = len(streams)
        while open_:
            i, item = await queue.get()
            if item[0] == "end":
                open_ -= 1
                continue
            if item[0] == "error":
                raise item[1]
            yield i, item
    finally:
        for t in tasks:
            t.cancel()
