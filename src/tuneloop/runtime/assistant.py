"""The assistant loop: generate, parse tool calls, verify, execute, repeat; then validate.

One :meth:`Assistant.run` is one user turn::

    render (+ tool specs, context policy) -> generate -> parse tool calls
      -> reject (parse error, unknown / not allow-listed tool, invalid arguments,
         fabricated tool response): an event, fed back to the model at most
         ``error_feedback`` times per run, then the run fails
      -> execute allow-listed calls (timeout, structured errors), append the results
      -> ... up to ``max_steps`` model calls
    final answer -> output schema? validate, repair within budget

Nothing fails open: a call that does not parse never becomes answer text, an answer
that does not validate is never returned as valid, and every step is an event.
The system prompt and the tool list are fixed when the Assistant is built; tool
output only ever enters the conversation as the content of a ``tool`` message.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tuneloop.runtime.backends.errors import GrammarError
from tuneloop.runtime.context import ContextOverflowError, ContextPolicy, apply_policy
from tuneloop.runtime.events import (
    EventSink,
    FabricatedToolResponse,
    ListSink,
    ModelCall,
    RunFinished,
    RunStarted,
    ToolCallEvent,
    ToolCallRejected,
    new_id,
    stable_hash,
)
from tuneloop.runtime.structured import (
    OutputSchema,
    RepairBudget,
    StructuredOutputError,
    validate_and_repair,
)
from tuneloop.runtime.toolcalls import ParsedCall, parse_output
from tuneloop.runtime.tools import ToolRegistry
from tuneloop.runtime.types import (
    ChatModel,
    GenerationConfig,
    GenerationOutput,
    Message,
    TokenCounter,
)


class AssistantError(Exception):
    """A run that could not produce a valid answer. ``kind`` names why."""

    kind = "error"


class ToolCallError(AssistantError):
    """The model kept producing tool calls that could not be run."""

    kind = "tool_call_error"


class MaxStepsError(AssistantError):
    """The model was still calling tools after ``max_steps`` model calls."""

    kind = "max_steps"


class AssistantConfig(BaseModel):
    """How the loop behaves. Everything here can come from YAML or CLI flags."""

    model_config = ConfigDict(extra="forbid")

    system_prompt: str | None = None
    """Prepended when the conversation has no system message of its own."""
    max_steps: int = Field(5, ge=1)
    """Model calls per run (tool rounds + the final answer), repairs not counted."""
    error_feedback: int = Field(1, ge=0)
    """How many times per run a rejected tool call (or a fabricated tool response) is
    explained to the model so it can retry. 0: the first rejection fails the run."""
    tool_choice: str = "auto"
    """``auto``, ``none``, ``required`` or a tool name, for the first step; after a
    tool has run it becomes ``auto`` (so a required call cannot loop)."""
    tool_timeout_s: float | None = Field(None, gt=0)
    """Override every tool's own timeout."""
    max_tool_output_chars: int = Field(4000, ge=100)
    """Tool output beyond this is cut, with a marker, before the model sees it."""
    constrained_decoding: bool = True
    """Use the backend's grammar support (when it has one) for output schemas and
    required tool calls."""
    constrain_first: bool = True
    """With ``constrained_decoding``: constrain the first answer too. False lets the model
    answer freely and constrains only the repairs, so a failure is seen, repaired and
    traced (what ``tuneloop mine`` turns into SFT fixes and preference pairs)."""
    repair: RepairBudget = Field(default_factory=RepairBudget)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    context: ContextPolicy | None = None
    """Context policy; None applies none (the backend's own limit still applies)."""


@dataclass
class AssistantResult:
    """What a run produced: the answer (or the error), the transcript and every event."""

    run_id: str
    status: Literal["ok", "error"]
    answer: str | None
    """The final answer text (the validated JSON text when there is a schema)."""
    value: Any = None
    """The parsed output when there is a schema (a pydantic instance for a model)."""
    messages: list[Message] = field(default_factory=list)
    """The conversation including tool calls, tool results and the answer."""
    events: list = field(default_factory=list)
    steps: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def tool_calls(self) -> list[ToolCallEvent]:
        return [e for e in self.events if e.kind == "tool_call"]

    def raise_for_status(self) -> AssistantResult:
        if self.error is not None:
            raise self.error
        return self


class Assistant:
    """An assistant over any :class:`~tuneloop.runtime.types.ChatModel`.

    ``tools`` is a :class:`~tuneloop.runtime.tools.ToolRegistry` whose allow-list is
    what the model may run. ``output_schema`` (JSON Schema dict, pydantic model or
    :class:`OutputSchema`) makes the final answer structured. ``sink`` receives every
    event as it happens; the result carries them too. ``counter`` gives exact token
    counts for the context policy (default: the model, when it can count).
    ``summarizer`` fills the context policy's summary slot (default: the model).
    """

    def __init__(
        self,
        model: ChatModel,
        tools: ToolRegistry | None = None,
        config: AssistantConfig | None = None,
        *,
        output_schema: dict | type[BaseModel] | OutputSchema | None = None,
        sink: EventSink | None = None,
        counter: TokenCounter | None = None,
        summarizer: ChatModel | None = None,
    ):
        self.model = model
        self.tools = tools or ToolRegistry()
        self.config = config or AssistantConfig()
        if output_schema is not None and not isinstance(output_schema, OutputSchema):
            output_schema = OutputSchema(output_schema)
        self.output_schema: OutputSchema | None = output_schema
        self.sink = sink
        self.counter = counter if counter is not None else (
            model if isinstance(model, TokenCounter) else None
        )  # fmt: skip
        if self.config.context is not None and self.counter is None:
            raise ValueError(
                f"a context policy needs exact token counts, and model {model.name!r} cannot "
                "count tokens: pass counter= (e.g. a LocalEngine or an HF tokenizer counter)"
            )
        self.summarizer = summarizer or model
        # Fixed at construction: nothing a tool returns can change them.
        self._specs: tuple[dict, ...] = tuple(self.tools.specs())
        self._tools_hash = stable_hash(list(self._specs)) if self._specs else None

    # ----------------------------------------------------------------- public API

    def run(
        self, messages: list[Message] | str, *, retrieved: list[str] | None = None
    ) -> AssistantResult:
        """Answer the conversation's last user turn. Never raises for model behaviour:
        failures come back as ``status="error"`` with a typed ``error``."""
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
        return _Run(self, list(messages), retrieved).execute()

    def can_constrain(self) -> bool:
        return self.config.constrained_decoding and bool(
            getattr(self.model, "supports_json_schema", False)
        )


class _Run:
    """The state of one :meth:`Assistant.run`."""

    def __init__(self, assistant: Assistant, messages: list[Message], retrieved):
        self.a = assistant
        self.cfg = assistant.config
        self.run_id = new_id()
        self.step = 0
        self.local = ListSink()
        self.retrieved = retrieved
        self.started = time.perf_counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        if self.cfg.system_prompt and not (messages and messages[0].get("role") == "system"):
            messages = [{"role": "system", "content": self.cfg.system_prompt}, *messages]
        self.convo: list[Message] = messages

    # ---------------------------------------------------------------- plumbing

    def emit(self, event) -> None:
        event.run_id = self.run_id
        event.step = self.step
        self.local.emit(event)
        if self.a.sink is not None:
            self.a.sink.emit(event)

    def call_model(self, messages: list[Message], config: GenerationConfig, purpose: str):
        grammar_error = None
        try:
            output: GenerationOutput = self.a.model.generate(messages, config)
        except GrammarError as exc:
            # A schema the grammar engine cannot compile (e.g. if/then, not): decode
            # freely; validation and repair still hold the line. Recorded, not hidden.
            grammar_error = str(exc)
            config = config.model_copy(update={"json_schema": None, "tool_choice": "auto"})
            output = self.a.model.generate(messages, config)
        self.prompt_tokens += output.prompt_tokens
        self.completion_tokens += output.completion_tokens
        self.emit(
            ModelCall(
                model=output.model or self.a.model.name,
                purpose=purpose,
                prompt_hash=stable_hash({"messages": messages, "tools": config.tools}),
                prompt_tokens=output.prompt_tokens,
                completion_tokens=output.completion_tokens,
                latency_s=output.latency_s,
                time_to_first_token_s=output.time_to_first_token_s,
                finish_reason=output.finish_reason,
                constrained=bool(
                    config.json_schema
                    or (config.tools and config.tool_choice not in ("auto", "none"))
                )
                and self.a.can_constrain()
                and grammar_error is None,
                grammar_error=grammar_error,
                output=output.text,
                tool_calls=output.tool_calls,
                messages=messages,
            )
        )
        return output

    def summarize(self, dropped: list[Message]) -> str:
        transcript = "\n".join(
            f"{m.get('role')}: {m.get('content') or json.dumps(m.get('tool_calls'))}"
            for m in dropped
        )
        prompt = [
            {"role": "system", "content": "You summarize conversations briefly and factually."},
            {"role": "user", "content": "Summarize this conversation in a few sentences, "
             "keeping names, numbers and decisions:\n\n" + transcript},
        ]  # fmt: skip
        config = GenerationConfig(max_new_tokens=self.cfg.context.summary_tokens)
        output = self.a.summarizer.generate(prompt, config)
        self.prompt_tokens += output.prompt_tokens
        self.completion_tokens += output.completion_tokens
        self.emit(
            ModelCall(
                model=output.model or self.a.summarizer.name, purpose="summary",
                prompt_hash=stable_hash(prompt), prompt_tokens=output.prompt_tokens,
                completion_tokens=output.completion_tokens, latency_s=output.latency_s,
                finish_reason=output.finish_reason, output=output.text, messages=prompt,
            )
        )  # fmt: skip
        return output.text.strip()

    def prepare(self, config: GenerationConfig) -> list[Message]:
        policy = self.cfg.context
        if policy is None:
            if self.retrieved:
                policy = ContextPolicy(tool_output_tokens=None)
            else:
                return list(self.convo)
        counter = self.a.counter
        if counter is None:  # retrieved docs without a policy: count nothing, just place them
            from tuneloop.runtime.backends.fake import FakeModel

            counter = FakeModel([])
        return apply_policy(
            policy,
            self.convo,
            counter=counter,
            tools=config.tools,
            max_new_tokens=config.max_new_tokens,
            retrieved=self.retrieved,
            summarizer=self.summarize if policy.summarize else None,
            emit=self.emit,
        )

    def finish(self, answer: str | None, value: Any = None, error: Exception | None = None):
        latency = time.perf_counter() - self.started
        kind = getattr(error, "kind", None) or (
            "structured_output" if isinstance(error, StructuredOutputError)
            else "context_overflow" if isinstance(error, ContextOverflowError)
            else type(error).__name__ if error is not None else None
        )  # fmt: skip
        self.emit(
            RunFinished(
                status="error" if error else "ok", error=str(error) if error else None,
                error_type=kind, steps=self.step + (0 if error else 1),
                prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
                latency_s=latency, answer=answer,
            )
        )  # fmt: skip
        if answer is not None and error is None:
            self.convo.append({"role": "assistant", "content": answer})
        return AssistantResult(
            run_id=self.run_id,
            status="error" if error else "ok",
            answer=answer if error is None else None,
            value=value,
            messages=self.convo,
            events=list(self.local.events),
            steps=len(
                [e for e in self.local.events if e.kind == "model_call" and e.purpose != "summary"]
            ),
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency_s=latency,
            error=error,
        )

    # ---------------------------------------------------------------- the loop

    def execute(self) -> AssistantResult:
        a, cfg = self.a, self.cfg
        schema = a.output_schema
        self.emit(
            RunStarted(
                model=a.model.name, tools=[s["function"]["name"] for s in a._specs],
                tools_hash=a._tools_hash,
                tool_specs=list(a._specs),
                output_schema_hash=schema.hash if schema else None,
                messages=self.convo,
            )
        )  # fmt: skip
        feedback_left = cfg.error_feedback
        tool_choice = cfg.tool_choice if a._specs else "none"
        for step in range(cfg.max_steps):
            self.step = step
            offer = list(a._specs) if tool_choice != "none" else []
            config = cfg.generation.model_copy(
                update={"tools": offer or None, "tool_choice": tool_choice if offer else "auto"}
            )
            if schema is not None and not offer and a.can_constrain() and cfg.constrain_first:
                config.json_schema = schema.json_schema
            try:
                prompt = self.prepare(config)
                output = self.call_model(
                    prompt,
                    config,
                    "step" if step == 0 or not feedback_used(self) else "error_feedback",
                )
            except ContextOverflowError as exc:
                return self.finish(None, error=exc)
            except Exception as exc:  # backend failures end the run, recorded
                return self.finish(None, error=exc)

            parsed = parse_output(output.text, output.tool_calls, tools_offered=bool(offer))
            problems: list[str] = []
            if parsed.fabricated is not None:
                self.emit(FabricatedToolResponse(raw=parsed.fabricated))
                if not parsed.calls:
                    problems.append(
                        "You wrote a <tool_response> yourself. Tool results come only from "
                        "the system: call the tool with <tool_call> and wait for its result."
                    )
            for err in parsed.errors:
                self.emit(ToolCallRejected(reason="parse_error", raw=err.raw, error=err.error))
                problems.append(f"Your tool call could not be parsed: {err.error}.")
            calls: list[ParsedCall] = []
            for call in parsed.calls:
                problem = self.check_call(call)
                if problem:
                    problems.append(problem)
                else:
                    calls.append(call)
            if (
                offer
                and tool_choice not in ("auto", "none")
                and not parsed.has_calls
                and not problems
            ):
                need = "a tool call" if tool_choice == "required" else f"a call to {tool_choice!r}"
                self.emit(ToolCallRejected(reason="parse_error", raw=output.text,
                                           error=f"tool_choice={tool_choice!r} requires {need}"))  # fmt: skip
                problems.append(f"You must answer with {need} in a <tool_call> block.")

            if problems:
                if feedback_left <= 0:
                    return self.finish(None, error=ToolCallError(
                        f"step {step}: the model's tool call(s) were rejected: " + " ".join(problems)
                    ))  # fmt: skip
                feedback_left -= 1
                kept = (
                    output.text
                    if parsed.fabricated is None
                    else output.text[: -len(parsed.fabricated)]
                )
                self.convo.append({"role": "assistant", "content": kept})
                self.convo.append({
                    "role": "user",
                    "content": "[runtime] " + " ".join(problems)
                    + " Fix the tool call, or answer directly without one.",
                })  # fmt: skip
                continue

            if calls:
                self.run_tools(parsed.content, calls)
                tool_choice = "auto"
                continue

            # A final answer.
            answer = parsed.content
            if schema is None:
                return self.finish(answer)
            first = output.model_copy(update={"text": answer})
            try:
                result = validate_and_repair(
                    first, prompt, schema,
                    call_model=self.call_model, config=config.model_copy(update={"tools": None}),
                    budget=cfg.repair, constrain_repairs=a.can_constrain(),
                    first_constrained=bool(config.json_schema), emit=self.emit,
                    started=self.started,
                )  # fmt: skip
            except StructuredOutputError as exc:
                return self.finish(None, error=exc)
            return self.finish(result.text, value=result.value)
        return self.finish(None, error=MaxStepsError(
            f"no final answer after max_steps={cfg.max_steps} model calls (still calling tools)"
        ))  # fmt: skip

    def check_call(self, call: ParsedCall) -> str | None:
        """Why ``call`` may not run (also emitted as an event), or None when it may."""
        tools = self.a.tools
        tool = tools.get(call.name)
        reason, error = None, None
        if tool is None:
            reason = "unknown_tool"
            error = f"there is no tool named {call.name!r}; available: {', '.join(tools.names) or 'none'}"
        elif not tools.is_allowed(call.name):
            reason = "not_allowed"
            error = f"tool {call.name!r} is not allowed here; available: {', '.join(tools.names) or 'none'}"
        else:
            errors = tool.validate_arguments(call.arguments)
            if errors:
                reason = "invalid_arguments"
                error = f"invalid arguments for {call.name!r}: " + "; ".join(errors)
        if reason is None:
            return None
        self.emit(ToolCallRejected(reason=reason, tool=call.name, raw=call.raw, error=error))
        return error[0].upper() + error[1:] + "."

    def run_tools(self, content: str, calls: list[ParsedCall]) -> None:
        self.convo.append({
            "role": "assistant",
            "content": content or None,
            "tool_calls": [
                {"id": c.id, "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments, ensure_ascii=False)}}
                for c in calls
            ],
        })  # fmt: skip
        for call in calls:
            result = self.a.tools.execute(
                call.name, call.arguments,
                max_output_chars=self.cfg.max_tool_output_chars,
                timeout_s=self.cfg.tool_timeout_s,
            )  # fmt: skip
            self.emit(
                ToolCallEvent(
                    call_id=call.id, tool=call.name, arguments=call.arguments, ok=result.ok,
                    result=result.output, error=result.error, error_type=result.error_type,
                    duration_s=result.duration_s, truncated=result.truncated,
                )
            )  # fmt: skip
            content = result.output if result.ok else json.dumps(
                {"error": result.error, "error_type": result.error_type}, ensure_ascii=False
            )  # fmt: skip
            self.convo.append(
                {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": content}
            )


def feedback_used(run: _Run) -> bool:
    """Whether the last thing in the conversation is the runtime's error feedback."""
    last = run.convo[-1] if run.convo else {}
    return last.get("role") == "user" and str(last.get("content", "")).startswith("[runtime]")
