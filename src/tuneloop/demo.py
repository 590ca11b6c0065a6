"""A one-minute tour of the runtime (``make demo`` runs the whole loop instead): a short
scripted chat, then the assistant loop: a verified calculator call and a
schema-constrained answer.

Run with ``python -m tuneloop.demo [--model REF]``.
"""

from __future__ import annotations

import argparse
import time

from rich.console import Console

from tuneloop.models.registry import DEFAULT_MODEL

SCRIPT = [
    "What is the capital of France?",
    "Name three primary colors.",
    "Write one sentence about why unit tests matter.",
]


def main(argv: list[str] | None = None) -> None:
    """Load the model, ask the scripted questions greedily, print answers and speed."""
    from tuneloop.runtime.backends.local import LocalEngine
    from tuneloop.runtime.types import GenerationConfig

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    console = Console()
    start = time.perf_counter()
    engine = LocalEngine.from_ref(args.model)
    console.print(
        f"[bold]tuneloop demo[/] - {engine.name} loaded in {time.perf_counter() - start:.1f} s\n"
    )
    config = GenerationConfig(max_new_tokens=64)
    for question in SCRIPT:
        console.print(f"[bold cyan]user>[/] {question}")
        out = engine.generate([{"role": "user", "content": question}], config)
        console.print(f"[bold green]assistant>[/] {out.text}", highlight=False)
        console.print(
            f"[dim]{out.completion_tokens} tokens, {out.tokens_per_s:.1f} tok/s, "
            f"finish={out.finish_reason}[/]\n"
        )
    _assistant_demo(engine, console)


CITY_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "country": {"type": "string", "maxLength": 40},
        "landmarks": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 3},
    },
    "required": ["city", "country", "landmarks"],
    "additionalProperties": False,
}


def _assistant_demo(engine, console: Console) -> None:
    """The runtime on the same model: a tool call that really runs, then valid JSON."""
    from tuneloop.runtime.assistant import Assistant, AssistantConfig
    from tuneloop.runtime.builtin_tools import builtin_registry

    question = "What is 1234 * 5678?"
    console.print(f"[bold cyan]user>[/] {question}  [dim](tools: calculator)[/]")
    config = AssistantConfig(tool_choice="required", max_steps=3, generation={"max_new_tokens": 64})
    result = Assistant(engine, builtin_registry(["calculator"]), config).run(question)
    for call in result.tool_calls:
        shown = call.result if call.ok else f"error: {call.error}"
        console.print(f"[cyan]tool>[/] {call.tool}({call.arguments}) -> {shown}", highlight=False)
    answer = result.answer if result.ok else f"(failed closed: {result.error})"
    console.print(f"[bold green]assistant>[/] {answer}\n", highlight=False)

    question = "Describe Paris as JSON."
    console.print(f"[bold cyan]user>[/] {question}  [dim](output schema: city)[/]")
    config = AssistantConfig(generation={"max_new_tokens": 128})
    result = Assistant(engine, config=config, output_schema=CITY_SCHEMA).run(question)
    answer = result.answer if result.ok else f"(failed closed: {result.error})"
    console.print(f"[bold green]assistant>[/] {answer}", highlight=False)
    console.print(f"[dim]{len(result.events)} runtime events, valid={result.ok}[/]")


if __name__ == "__main__":
    main()
