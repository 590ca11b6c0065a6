"""``tuneloop data mix CONFIG``: train/validation JSONL plus a data card, from a YAML mix."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from tuneloop.cli._common import err, fail, out, user_errors

SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override a config key: key=value, dotted for nesting (sources.0.weight=2); repeatable.")]  # fmt: skip
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and the planned counts; write nothing.")]  # fmt: skip


def _tokenizer(model: str | None):
    """The model's tokenizer and its chat template with loss masks (None, None without a model)."""
    if not model:
        return None, None
    from functools import partial

    from tuneloop.models import load_tokenizer, render_for_training, resolve_model

    tokenizer = load_tokenizer(resolve_model(model))
    return tokenizer, partial(render_for_training, tokenizer)


LABELS = {"invalid_dropped": "invalid", "duplicates_dropped": "duplicates",
          "cross_source_duplicates_dropped": "cross-source dups", "near_duplicates_dropped": "near-dups",
          "contaminated_dropped": "contaminated", "synthetic_capped": "synthetic capped"}  # fmt: skip
"""Short names of the steps for an 80-column table (the manifest keeps the full keys)."""


def _counts_table(plan) -> Table:
    rows = plan.table()
    table = Table(title="records after each step")
    table.add_column("step", no_wrap=True)
    for name in [*(r["source"] for r in rows), "total"]:
        table.add_column(name, justify="right")
    for step in [k for k in rows[0] if k != "source"]:
        values = [r[step] for r in rows]
        table.add_row(LABELS.get(step, step), *map(str, values), str(sum(values)))
    return table


def mix(
    config: Annotated[Path, typer.Argument(help="Mix config YAML (see configs/data/demo.yaml).")],
    set_: SetOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Mix sources by weight or count into train/validation JSONL with a data card.

    Reads, validates, dedups and decontaminates every source, samples and upsamples it,
    caps the synthetic share, splits by record, and writes train.jsonl, validation.jsonl,
    manifest.json and DATA_CARD.md into output_dir, replacing it only on success.
    """
    from tuneloop.data.mix import build_mix, plan_mix
    from tuneloop.data.mix_config import MixConfigError, config_yaml, load_mix_config

    try:
        cfg = load_mix_config(config, set_ or [])
        plan = plan_mix(cfg)
        if dry_run:
            out.rule("resolved config")
            out.print(config_yaml(cfg), highlight=False, markup=False)
            out.rule("planned counts (rows; nothing written)")
            out.print(_counts_table(plan))
            out.print(f"output: {plan.total} rows, about {plan.validation_target} for validation -> {cfg.output_dir}")
            return
        tokenizer, render = _tokenizer(cfg.model)
        manifest = build_mix(cfg, tokenizer=tokenizer, render=render, plan=plan)
    except (MixConfigError, *user_errors()) as exc:
        message = str(exc)
        if isinstance(exc, MixConfigError) and not message.startswith(f"{config}:"):
            message = f"{config}: {message}"
        fail(message)
    out.print(_counts_table(plan))
    for split, o in manifest["outputs"].items():
        out.print(f"{split}: {o['records']} records  sha256 {o['sha256'][:16]}...")
    if not manifest["validation"]["ok"]:
        failed = [r["check"] for r in manifest["validation"]["summary"] if r["status"] == "FAIL"]
        err.print(f"[yellow]warning:[/] validation of the outputs found errors ({', '.join(failed)}); see DATA_CARD.md")
    out.print(f"wrote {cfg.output_dir} (train.jsonl, validation.jsonl, manifest.json, DATA_CARD.md)")
