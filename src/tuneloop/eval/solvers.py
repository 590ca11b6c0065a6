"""Solvers: how a task's samples become :class:`~tuneloop.eval.scoring.Completion` objects.

``generate``
    One model turn per sample, batched (:data:`BATCH_SIZE` conversations per call).
    A tool call the model writes is parsed into ``attempted_tool_calls`` but not run.
``assistant``
    The runtime's :class:`~tuneloop.runtime.assistant.Assistant`: the task's tools are
    executed for real, the sample's ``schema`` is enforced (constrained decoding where
    the backend can, the repair loop otherwise), and every executed call lands in
    ``Completion.tool_calls`` so agent scorers check what actually happened.

::

    completions = solve(task, model, samples, attempt=0)

``attempt`` i of a sampled task (``temperature`` > 0) uses seed ``task.seed + i``.
"""

from __future__ import annotations

import json
from typing import Any

from tuneloop.data.records import EvalSample, to_chat_messages, tools_as_dicts
from tuneloop.eval.scoring import Completion
from tuneloop.eval.tasks import TaskSpec
from tuneloop.runtime.assistant import Assistant, AssistantConfig, AssistantResult
from tuneloop.runtime.builtin_tools import builtin_registry
from tuneloop.runtime.toolcalls import parse_output
from tuneloop.runtime.types import ChatModel, GenerationConfig, Message, generate_many

BATCH_SIZE = 8
"""Conversations per ``generate_many`` call: enough to batch, small enough for 2 CPU cores."""


def task_messages(task: TaskSpec, sample: EvalSample) -> list[Message]:
    """The sample's input as chat messages, the task's system prompt merged in."""
    messages = to_chat_messages(sample.input)
    if task.system_prompt:
        if messages and messages[0]["role"] == "system":
            merged = f"{task.system_prompt}\n\n{messages[0].get('content') or ''}".strip()
            messages[0] = {**messages[0], "content": merged}
        else:
            messages.insert(0, {"role": "system", "content": task.system_prompt})
    return messages


def _sampling(task: TaskSpec, attempt: int) -> dict[str, Any]:
    """Temperature and seed of one attempt (greedy decoding needs no seed)."""
    if task.temperature == 0:
        return {"temperature": 0.0, "seed": None}
    return {"temperature": task.temperature, "seed": task.seed + attempt}


def solve(
    task: TaskSpec, model: ChatModel, samples: list[EvalSample], *, attempt: int = 0
) -> list[Completion]:
    """The task's solver over ``samples``; one completion per sample, in order."""
    if task.solver == "assistant":
        return [solve_with_assistant(task, model, s, attempt=attempt) for s in samples]
    return solve_generate(task, model, samples, attempt=attempt)


# ----------------------------------------------------------------------- generate


def _completion(messages: list[Message], output: Any, tools: list[dict] | None) -> Completion:
    parsed = parse_output(output.text, output.tool_calls, tools_offered=bool(tools))
    attempted = [{"name": c.name, "arguments": c.arguments} for c in parsed.calls]
    error = output.text if output.finish_reason == "error" else None
    return Completion(
        text=output.text,
        messages=[*messages, {"role": "assistant", "content": output.text}],
        attempted_tool_calls=attempted,
        error=error,
        metadata={
            "finish_reason": output.finish_reason,
            "completion_tokens": output.completion_tokens,
        },  # fmt: skip
    )


def solve_generate(
    task: TaskSpec, model: ChatModel, samples: list[EvalSample], *, attempt: int = 0
) -> list[Completion]:
    """One turn per sample, in batches of :data:`BATCH_SIZE`.

    Samples offering the same tools batch together (one ``GenerationConfig`` per call);
    a tool call the model writes (Hermes ``<tool_call>`` or structured) becomes
    ``attempted_tool_calls``, while ``text`` stays exactly as generated.
    """
    results: list[Completion | None] = [None] * len(samples)
    pending: dict[str, list[int]] = {}

    def flush(key: str) -> None:
        positions = pending.pop(key)
        tools = tools_as_dicts(samples[positions[0]].tools)
        config = GenerationConfig(max_new_tokens=task.max_new_tokens, tools=tools or None,
                                  json_schema=None, **_sampling(task, attempt))  # fmt: skip
        conversations = [task_messages(task, samples[i]) for i in positions]
        outputs = generate_many(model, conversations, config)
        for i, messages, output in zip(positions, conversations, outputs, strict=True):
            results[i] = _completion(messages, output, tools)

    for i, sample in enumerate(samples):
        key = json.dumps(tools_as_dicts(sample.tools), sort_keys=True)
        pending.setdefault(key, []).append(i)
        if len(pending[key]) == BATCH_SIZE:
            flush(key)
    for key in list(pending):
        flush(key)
    return [c for c in results if c is not None]


# ----------------------------------------------------------------------- assistant


def _allowed_tools(task: TaskSpec, sample: EvalSample) -> list[str]:
    """The task's tools, narrowed to those the sample offers (when it offers any)."""
    if not sample.tools:
        return list(task.tools)
    offered = {spec.function.name for spec in sample.tools}
    return [name for name in task.tools if name in offered]


def _assistant_config(task: TaskSpec, attempt: int) -> AssistantConfig:
    config = task.assistant or AssistantConfig()
    generation = config.generation.model_copy(
        update={"max_new_tokens": task.max_new_tokens, **_sampling(task, attempt)}
    )
    return config.model_copy(update={"generation": generation})


def assistant_completion(result: AssistantResult) -> Completion:
    """A :class:`Completion` from an assistant run: executed calls from its tool-call
    events, attempted calls from those plus its rejections."""
    executed, attempted = [], []
    for event in result.events:
        if event.kind == "tool_call":
            executed.append({"name": event.tool, "arguments": event.arguments, "ok": event.ok,
                             "result": event.result if event.ok else event.error})  # fmt: skip
            attempted.append({"name": event.tool, "arguments": event.arguments})
        elif event.kind == "tool_call_rejected":
            attempted.append({"name": event.tool, "arguments": None, "rejected": event.reason,
                              "raw": event.raw})  # fmt: skip
    error = None
    if result.error is not None:
        error = f"{type(result.error).__name__}: {result.error}"
    return Completion(
        text=result.answer or "",
        messages=list(result.messages),
        tool_calls=executed,
        attempted_tool_calls=attempted,
        error=error,
        metadata={
            "steps": result.steps,
            "completion_tokens": result.completion_tokens,
            "run_id": result.run_id,
        },  # fmt: skip
    )


def solve_with_assistant(
    task: TaskSpec, model: ChatModel, sample: EvalSample, *, attempt: int = 0
) -> Completion:
    """One :class:`Assistant` run: real tools (``task.tools``), the sample's schema."""
    registry = builtin_registry(_allowed_tools(task, sample), root=task.tools_root,
                                docs=task.docs)  # fmt: skip
    assistant = Assistant(model, registry, _assistant_config(task, attempt),
                          output_schema=sample.schema_)  # fmt: skip
    return assistant_completion(assistant.run(task_messages(task, sample)))
