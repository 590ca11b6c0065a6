"""``tuneloop chat``: one-shot or interactive chat; with tools or an output schema it runs
the assistant loop (verified tool calls, schema validation with repair, events)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import err, fail, out, user_errors
from tuneloop.models.registry import DEFAULT_MODEL


def chat(
    model: Annotated[str, typer.Option("--model", "-m", help="Model reference.")] = DEFAULT_MODEL,
    prompt: Annotated[
        str | None, typer.Option("--prompt", "-p", help="One-shot prompt; omit for interactive.")
    ] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 256,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0)] = 1.0,
    seed: Annotated[int | None, typer.Option()] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url", help="Chat with an OpenAI-compatible server instead of a local model."
        ),
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="TUNELOOP_API_KEY")] = None,
    tools: Annotated[
        str | None,
        typer.Option(
            "--tools",
            help="Comma-separated built-in tools the model may run: calculator, clock, read_file, search_docs.",
        ),
    ] = None,
    tools_root: Annotated[
        Path | None, typer.Option("--tools-root", help="Folder read_file is confined to.")
    ] = None,
    docs: Annotated[
        Path | None, typer.Option("--docs", help="Folder search_docs searches (.md/.txt).")
    ] = None,
    tool_choice: Annotated[
        str | None,
        typer.Option(
            "--tool-choice",
            help="required (default with --tools: the first step is a tool call, constrained to the tool schemas on a local model), auto, none, or a tool name.",
        ),
    ] = None,
    output_schema: Annotated[
        Path | None,
        typer.Option(
            "--output-schema",
            help="JSON Schema file the answer must satisfy (constrained decoding on a local model, validation + repair everywhere).",
        ),
    ] = None,
    max_steps: Annotated[
        int | None,
        typer.Option(
            "--max-steps", min=1, help="Model calls per turn (tool rounds + answer) [default: 5]."
        ),
    ] = None,
    max_repairs: Annotated[
        int | None,
        typer.Option(
            "--max-repairs", min=0, help="Re-asks when the answer does not validate [default: 2]."
        ),
    ] = None,
    assistant_config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="AssistantConfig YAML (system_prompt, max_steps, tool_choice, repair, context policy...); flags override it. See configs/assistant/.",
        ),
    ] = None,
    show_trace: Annotated[
        bool,
        typer.Option(
            "--show-trace",
            help="Print every runtime event (model calls, tool calls, validation, repairs) to stderr.",
        ),
    ] = False,
    trace_file: Annotated[
        Path | None,
        typer.Option("--trace-file", help="Append every event as JSON lines to this file."),
    ] = None,
    trace_db: Annotated[
        Path | None,
        typer.Option(
            "--trace-db",
            help="Trace store each assistant run is saved to (default: $TUNELOOP_HOME/traces.db).",
        ),
    ] = None,
    no_trace: Annotated[
        bool, typer.Option("--no-trace", help="Do not save assistant runs to the trace store.")
    ] = False,
) -> None:
    """Chat with a model (greedy by default). Plain chat streams; with --tools or
    --output-schema each turn runs the assistant loop and exits non-zero if it fails."""
    from tuneloop.runtime.types import GenerationConfig

    config = GenerationConfig(
        max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed
    )
    try:
        assistant = None
        if tools or output_schema:
            assistant_parts = _assistant_parts(
                tools, tools_root, docs, output_schema, assistant_config_file
            )
        if base_url:
            from tuneloop.runtime.backends.openai_http import OpenAIChatModel

            llm = OpenAIChatModel(base_url, model=model, api_key=api_key)
        else:
            from tuneloop.runtime.backends.local import LocalEngine

            with err.status(f"loading {model}..."):
                llm = LocalEngine.from_ref(model)
        if tools or output_schema:
            assistant = _build_assistant(
                llm, *assistant_parts, config=config, tool_choice=tool_choice,
                max_steps=max_steps, max_repairs=max_repairs, show_trace=show_trace,
                trace_file=trace_file, trace_db=trace_db, no_trace=no_trace,
            )  # fmt: skip
        history = [{"role": "system", "content": system}] if system else []
        interactive = prompt is None
        while True:
            if interactive:
                try:
                    text = input("you> ") if sys.stdin.isatty() else sys.stdin.readline()
                except EOFError:
                    break
                if not text or text.strip() in ("/exit", "/quit"):
                    break
                text = text.rstrip("\n")
                if not text.strip():
                    continue
            else:
                text = prompt
            history.append({"role": "user", "content": text})
            if assistant is None:
                answer = ""
                for chunk in llm.stream(history, config):
                    answer += chunk.text
                    out.print(chunk.text, end="", highlight=False, markup=False, soft_wrap=True)
                out.print()
                history.append({"role": "assistant", "content": answer})
            else:
                result = assistant.run(history)
                if not result.ok:
                    if interactive:
                        err.print(f"[red]error:[/] {result.error}", highlight=False)
                        history.pop()
                        continue
                    fail(f"{getattr(result.error, 'kind', 'error')}: {result.error}")
                out.print(result.answer, highlight=False, markup=False, soft_wrap=True)
                history = result.messages
            if not interactive:
                break
    except user_errors() as exc:
        fail(str(exc))


def _assistant_parts(tools, tools_root, docs, output_schema, config_file=None):
    """Everything that can fail on user input, checked before the model loads."""
    from tuneloop.runtime.assistant import AssistantConfig
    from tuneloop.runtime.builtin_tools import builtin_registry
    from tuneloop.runtime.structured import OutputSchema, SchemaFileError

    names = [t.strip() for t in (tools or "").split(",") if t.strip()]
    try:
        registry = builtin_registry(names, root=tools_root, docs=docs)
        schema = OutputSchema.load(output_schema) if output_schema else None
    except (ValueError, SchemaFileError) as exc:
        fail(str(exc))
    base = AssistantConfig()
    if config_file is not None:
        base = _load_assistant_config(config_file)
    return registry, schema, base


def _load_assistant_config(path: Path):
    """An AssistantConfig from YAML; errors name the file and the field."""
    import yaml
    from pydantic import ValidationError

    from tuneloop.runtime.assistant import AssistantConfig

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        fail(f"{path}: cannot read: {exc.strerror or exc}")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        fail(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}")
    if not isinstance(data, dict):
        fail(f"{path}: expected a mapping of AssistantConfig fields")
    try:
        return AssistantConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        fail(f"{path}: {field}: {first['msg']} ({len(exc.errors())} error(s))")


def _build_assistant(llm, registry, schema, base, *, config, tool_choice, max_steps, max_repairs,
                     show_trace, trace_file, trace_db=None, no_trace=False):  # fmt: skip
    from tuneloop.runtime.assistant import Assistant, AssistantConfig
    from tuneloop.runtime.events import JsonlSink, MultiSink

    if tool_choice is None:  # a config file's choice, else required (see --help)
        tool_choice = base.tool_choice if "tool_choice" in base.model_fields_set else "required"
    if tool_choice not in ("auto", "none", "required") and tool_choice not in registry.names:
        fail(f"--tool-choice {tool_choice!r}: expected auto, none, required or one of the tools "
             f"({', '.join(registry.names) or 'none given'})")  # fmt: skip
    sinks = [_ConsoleSink(verbose=show_trace)]
    if trace_file:
        sinks.append(JsonlSink(trace_file))
    if not no_trace:
        from tuneloop.tracing import TraceSink, default_store_path

        sinks.append(TraceSink(trace_db or default_store_path()))
        if show_trace:
            sinks.append(_TraceIdSink())
    update: dict = {"tool_choice": tool_choice}
    if "generation" not in base.model_fields_set:  # a config file's generation wins over flags
        update["generation"] = config
    if max_steps is not None:
        update["max_steps"] = max_steps
    if max_repairs is not None:
        update["repair"] = base.repair.model_copy(update={"max_repairs": max_repairs})
    assistant_config = AssistantConfig.model_validate({**base.model_dump(), **update})
    return Assistant(llm, registry, assistant_config, output_schema=schema, sink=MultiSink(*sinks))


class _ConsoleSink:
    """Tool calls (always) and, verbose, every event, as readable lines on stderr."""

    def __init__(self, verbose: bool):
        self.verbose = verbose

    def emit(self, event) -> None:
        kind = event.kind
        if kind == "tool_call":
            args = json.dumps(event.arguments, ensure_ascii=False)
            shown = event.result if event.ok else f"error ({event.error_type}): {event.error}"
            err.print(f"[cyan]tool[/] {event.tool}({args}) -> ", end="", highlight=False)
            err.print(_clip(shown or ""), highlight=False, markup=False, soft_wrap=True)
        elif kind == "tool_call_rejected":
            err.print(f"[yellow]rejected tool call[/] ({event.reason}): ", end="")
            err.print(event.error, highlight=False, markup=False, soft_wrap=True)
        elif kind == "fabricated_tool_response":
            err.print("[yellow]rejected a tool response written by the model[/]")
        elif not self.verbose:
            return
        elif kind == "model_call":
            constrained = ", constrained" if event.constrained else ""
            err.print(
                f"[dim]model {event.model} ({event.purpose}{constrained}): {event.prompt_tokens} prompt + "
                f"{event.completion_tokens} completion tokens, {event.latency_s:.2f} s, "
                f"finish={event.finish_reason}[/]", highlight=False,
            )  # fmt: skip
            err.print("  " + _clip(event.output), style="dim", highlight=False, markup=False)
        elif kind == "validation":
            verdict = "valid" if event.passed else "invalid: " + "; ".join(event.errors[:3])
            err.print(f"[dim]validation (attempt {event.attempt}): {verdict}[/]", highlight=False)
        elif kind == "repair":
            err.print(f"[dim]repair attempt {event.attempt}[/]")
        elif kind == "context_policy":
            err.print(
                f"[dim]context policy: {event.action} {json.dumps(event.detail)}[/]",
                highlight=False,
            )
        elif kind == "run_finished":
            err.print(
                f"[dim]run {event.status}: {event.steps} step(s), {event.prompt_tokens}+"
                f"{event.completion_tokens} tokens, {event.latency_s:.2f} s[/]", highlight=False,
            )  # fmt: skip


class _TraceIdSink:
    """After the trace sink stored a run, names its trace (trace id = run id)."""

    def emit(self, event) -> None:
        if event.kind == "run_finished":
            err.print(f"[dim]trace {event.run_id}[/]", highlight=False)


def _clip(text: str, limit: int = 300) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit] + "..."
