"""``tuneloop chat``: one-shot or interactive chat, streamed."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from tuneloop.cli._common import err, fail, out, user_errors
from tuneloop.models.registry import DEFAULT_MODEL


def chat(
    model: Annotated[str, typer.Option("--model", "-m", help="Model reference.")] = DEFAULT_MODEL,
    prompt: Annotated[str | None, typer.Option("--prompt", "-p", help="One-shot prompt; omit for interactive.")] = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=1)] = 256,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.0,
    top_p: Annotated[float, typer.Option("--top-p", min=0.0, max=1.0)] = 1.0,
    seed: Annotated[int | None, typer.Option()] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="Chat with an OpenAI-compatible server instead of a local model.")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="TUNELOOP_API_KEY")] = None,
) -> None:
    """Chat with a model, streaming to the terminal (greedy by default)."""
    from tuneloop.runtime.types import GenerationConfig

    config = GenerationConfig(max_new_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    try:
        if base_url:
            from tuneloop.runtime.backends.openai_http import OpenAIChatModel

            llm = OpenAIChatModel(base_url, model=model, api_key=api_key)
        else:
            from tuneloop.runtime.backends.local import LocalEngine

            with err.status(f"loading {model}..."):
                llm = LocalEngine.from_ref(model)
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
            answer = ""
            for chunk in llm.stream(history, config):
                answer += chunk.text
                out.print(chunk.text, end="", highlight=False, markup=False, soft_wrap=True)
            out.print()
            history.append({"role": "assistant", "content": answer})
            if not interactive:
                break
    except user_errors() as exc:
        fail(str(exc))
