"""``tuneloop sample best-of-n``: rejection sampling with the scorecard's scorers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import fail, out, user_errors

sample_app = typer.Typer(
    help="Sample from a model and keep what the scorers verify.", no_args_is_help=True
)


@sample_app.command("best-of-n")
def best_of_n(
    model: Annotated[
        str,
        typer.Option("--model", help="Model reference: embedded name, folder, .gguf or hub id."),
    ],
    prompts: Annotated[
        Path,
        typer.Option("--prompts", help="EvalSample JSONL (input messages + schema/target/tools)."),
    ],
    scorer: Annotated[
        list[str],
        typer.Option("--scorer", help="Registered scorer (repeatable; the value is their mean)."),
    ],
    output: Annotated[
        Path,
        typer.Option("-o", "--output", help="New folder: sft.jsonl, pairs.jsonl, manifest.json."),
    ],
    n: Annotated[int, typer.Option("--n", min=1, help="Answers sampled per prompt.")] = 8,
    threshold: Annotated[
        float, typer.Option("--threshold", help="Mean scorer value a sample needs to be kept.")
    ] = 1.0,
    temperature: Annotated[
        float, typer.Option("--temperature", min=0.0, help="Sampling temperature (> 0).")
    ] = 0.8,
    max_new_tokens: Annotated[
        int, typer.Option("--max-new-tokens", min=1, help="Token budget per answer.")
    ] = 256,
    seed: Annotated[int, typer.Option("--seed", help="Sample i uses seed SEED+i.")] = 0,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Use only the first N prompts.")
    ] = None,
) -> None:
    """Sample N answers per prompt, keep the best one when every scorer passes it."""
    from pydantic import ValidationError

    import tuneloop.eval  # noqa: F401  (registers the built-in scorers)
    from tuneloop.train.rejection import (
        BestOfNConfig,
        OutputInvalid,
        check_prompts,
        read_prompts,
        run_best_of_n,
    )

    try:
        config = BestOfNConfig(n=n, scorers=scorer, threshold=threshold, temperature=temperature,
                               max_new_tokens=max_new_tokens, seed=seed)  # fmt: skip
        items = read_prompts([prompts], limit)
        check_prompts(items, config.scorers)  # before the model loads
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise FileExistsError(f"{output}: already exists; choose a new output folder")
        from tuneloop.runtime.backends.local import LocalEngine

        engine = LocalEngine.from_ref(model)
        manifest = run_best_of_n(
            engine, items, config, output, {"prompts_file": str(prompts), "model_ref": model}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"{'.'.join(map(str, first['loc']))}: {first['msg']}")
    except KeyError as exc:  # unknown scorer
        fail(str(exc.args[0]))
    except (OutputInvalid, FileExistsError, *user_errors()) as exc:
        fail(str(exc))
    out.print(
        f"accepted {manifest['accepted']}/{manifest['prompts']} prompts "
        f"(acceptance rate {manifest['acceptance_rate']:.2f}), {manifest['pairs']} pairs, "
        f"{manifest['samples_generated']} samples in {manifest['wall_time_s']:.1f} s -> {output}",
        highlight=False,
    )
