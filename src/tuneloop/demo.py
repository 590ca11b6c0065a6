"""The main job of ``make demo`` until the end-to-end loop exists: a short scripted chat.

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
    console.print(f"[bold]tuneloop demo[/] - {engine.name} loaded in {time.perf_counter() - start:.1f} s\n")
    config = GenerationConfig(max_new_tokens=64)
    for question in SCRIPT:
        console.print(f"[bold cyan]user>[/] {question}")
        out = engine.generate([{"role": "user", "content": question}], config)
        console.print(f"[bold green]assistant>[/] {out.text}", highlight=False)
        console.print(
            f"[dim]{out.completion_tokens} tokens, {out.tokens_per_s:.1f} tok/s, "
            f"finish={out.finish_reason}[/]\n"
        )


if __name__ == "__main__":
    main()
