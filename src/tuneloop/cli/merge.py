"""``tuneloop merge RUN_DIR -o OUT``: a run's adapter merged into its base, parity-checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import err, fail, out, user_errors
from tuneloop.train.merge import DEFAULT_ATOL  # light: torch loads only when merging


def merge(
    run_dir: Annotated[Path, typer.Argument(help="Run folder (config.yaml + final/).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="New model folder to write (must not exist).")],
    atol: Annotated[float, typer.Option("--atol", min=0.0, help="Largest allowed |logit difference| merged vs unmerged.")] = DEFAULT_ATOL,
) -> None:
    """Merge a run's LoRA adapter into its base model: a complete HF folder, checked before it is written."""
    from tuneloop.train.merge import MergeError, merge_run

    try:
        with err.status(f"merging {run_dir}..."):
            result = merge_run(run_dir, output, atol=atol)
    except (MergeError, *user_errors()) as exc:
        fail(str(exc))
    print_parity(result)


def print_parity(result) -> None:
    """The parity numbers of a :class:`~tuneloop.train.merge.MergeResult`, one per line."""
    p = result.parity
    lines = [f"merged {result.source_run} ({result.method}, base {result.base_model}) -> {result.out_dir}"]
    if p["adapter_max_abs_diff"] is not None:
        lines += [f"  merged vs base+adapter max |dlogit|: {p['adapter_max_abs_diff']:.3g} (tolerance "
                  f"{p['atol']:g}; {p['prompts']} prompts, {p['tokens']} tokens)",
                  f"  adapter effect (merged vs base) max |dlogit|: {p['adapter_effect_max_abs_diff']:.3g}"]  # fmt: skip
    lines += [f"  reloaded folder vs in-memory max |dlogit|: {p['reload_max_abs_diff']:.3g}",
              f"  chat template identical; stop tokens {', '.join(p['stop_tokens'])}"]  # fmt: skip
    for text in lines:
        out.print(text, highlight=False, markup=False, soft_wrap=True)
