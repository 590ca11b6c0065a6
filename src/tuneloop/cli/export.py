"""``tuneloop export RUN_OR_MODEL_DIR``: a shareable model folder with a model card."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import err, fail, out, user_errors
from tuneloop.cli.merge import print_parity


class ExportFormat(str, Enum):
    hf = "hf"
    gguf = "gguf"


def export(
    run_or_model_dir: Annotated[Path, typer.Argument(help="A run folder (merged, then carded) or a model folder (carded in place).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Model folder to write for a run (default: RUN_DIR/merged).")] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="hf: a Hugging Face model folder with a model card. gguf: also one GGUF file (llama.cpp's converter; the llamacpp extra), -o names the file.")] = ExportFormat.hf,
    outtype: Annotated[str, typer.Option("--outtype", help="GGUF tensor type: f32, f16, bf16 or q8_0.")] = "q8_0",
    data_card: Annotated[Path | None, typer.Option("--data-card", help="Data card (manifest.json of `tuneloop data mix`) to summarise in the card.")] = None,
    eval_results: Annotated[Path | None, typer.Option("--eval-results", help="An eval results.json to include in the card.")] = None,
) -> None:
    """Export a run as a merged, parity-checked HF model folder with a README model card
    (and, with --format gguf, a GGUF file for llama.cpp)."""
    from tuneloop.models.gguf_export import OUTTYPES, GGUFExportError, export_gguf
    from tuneloop.train.export import write_model_card
    from tuneloop.train.merge import MergeError, merge_run

    source = run_or_model_dir
    for path in (data_card, eval_results):
        if path is not None and not path.is_file():
            fail(f"{path}: no such file")
    is_run = (source / "config.yaml").is_file() and (source / "final").is_dir()
    gguf_out = None
    if fmt is ExportFormat.gguf:
        if outtype not in OUTTYPES:
            fail(f"--outtype {outtype!r}: expected one of {', '.join(OUTTYPES)}")
        gguf_out, output = output, None
    try:
        if is_run:
            target = output or source / "merged"
            with err.status(f"merging {source}..."):
                result = merge_run(source, target)
            print_parity(result)
            card = write_model_card(target, source, data_card, eval_results)
        elif (source / "config.json").is_file():
            if output is not None and output.resolve() != source.resolve():
                fail(f"{source} is a model folder: its card is written in place; drop -o")
            card = write_model_card(source, None, data_card, eval_results)
        else:
            fail(f"{source}: neither a run folder (config.yaml + final/) nor a model folder (config.json)")
        if fmt is ExportFormat.gguf:
            folder = card.parent
            gguf_out = gguf_out or folder / f"model-{outtype}.gguf"
            with err.status(f"converting {folder} to GGUF ({outtype})..."):
                export_gguf(folder, gguf_out, outtype=outtype)
    except (MergeError, GGUFExportError, ValueError, *user_errors()) as exc:
        fail(str(exc))
    out.print(f"model card: {card}", highlight=False)
    if gguf_out is not None:
        out.print(f"gguf: {gguf_out}", highlight=False)
