"""``tuneloop reward score``: score JSONL rows with a trained reward model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tuneloop.cli._common import fail, out, user_errors

reward_app = typer.Typer(
    help="Use a trained reward model (tuneloop train reward).", no_args_is_help=True
)


class RowError(ValueError):
    """An input row is not a PreferencePair nor a prompt + response row; names file:line and field."""

    def __init__(self, where: str, field: str, message: str):
        super().__init__(f"{where}: {field}: {message}")


def _read_rows(path: Path) -> list[tuple[str, dict[str, Any], list[tuple[str, Any, Any, Any]]]]:
    """``(file:line, row, [(output key, prompt, answer, tools)])`` for every non-blank line."""
    from pydantic import ValidationError

    from tuneloop.data import Message, PreferencePair, tools_as_dicts

    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path}:{n}"
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise RowError(where, "<line>", f"not valid JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise RowError(where, "<line>", "expected a JSON object")
        try:
            if "chosen" in row or "rejected" in row:
                pair = PreferencePair.model_validate(row)
                tools = tools_as_dicts(pair.tools)
                jobs = [("chosen_reward", pair.prompt, pair.chosen, tools),
                        ("rejected_reward", pair.prompt, pair.rejected, tools)]  # fmt: skip
            else:
                answer_key = "response" if "response" in row else "completion"
                for key in ("prompt", answer_key):
                    if key not in row:
                        need = "prompt + response (or completion), or a PreferencePair (prompt/chosen/rejected)"
                        raise RowError(
                            where,
                            "response" if key != "prompt" else key,
                            f"missing; rows need {need}",
                        )
                prompt, answer = row["prompt"], row[answer_key]
                if not isinstance(prompt, str):
                    if not isinstance(prompt, list) or not prompt:
                        raise RowError(
                            where, "prompt", "expected a string or a non-empty list of messages"
                        )
                    prompt = [Message.model_validate(m) for m in prompt]
                if not isinstance(answer, str):
                    raise RowError(where, answer_key, "expected a string")
                jobs = [("reward", prompt, answer, row.get("tools"))]
        except ValidationError as exc:
            e = exc.errors()[0]
            field = ".".join(str(p) for p in e["loc"]) or "<row>"
            raise RowError(where, field, e["msg"]) from None
        rows.append((where, row, jobs))
    return rows


@reward_app.command("score")
def score(
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", help="Reward run folder, LoRA adapter folder or seq-cls model folder."
        ),
    ],
    input_path: Annotated[
        Path,
        typer.Option(
            "--input", "-i", help="JSONL: PreferencePair rows, or prompt + response rows."
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="JSONL out: each row plus reward (or chosen_reward, rejected_reward).",
        ),
    ],
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Sequences per forward pass.")
    ] = 8,
) -> None:
    """Score each row; PreferencePair rows get chosen_reward and rejected_reward, others reward."""
    from tuneloop.data.io import atomic_path
    from tuneloop.models.chat_template import RenderError
    from tuneloop.train.reward_model import RewardModel

    try:
        if not input_path.is_file():
            raise FileNotFoundError(f"--input: no such file: {input_path}")
        rows = _read_rows(input_path)
        rm = RewardModel.load(model)
        ids = []
        for where, _, jobs in rows:
            for key, prompt, answer, tools in jobs:
                try:
                    ids.append(rm.encode(prompt, answer, tools))
                except RenderError as exc:
                    raise RowError(
                        where, key.removesuffix("_reward").replace("reward", "response"), str(exc)
                    ) from None
        scores = iter(rm.score_ids(ids, batch_size))
        with atomic_path(output) as tmp, open(tmp, "w", encoding="utf-8") as fh:
            for _, row, jobs in rows:
                fh.write(
                    json.dumps(
                        {**row, **{key: next(scores) for key, *_ in jobs}}, ensure_ascii=False
                    )
                    + "\n"
                )
    except (RowError, ValueError, *user_errors()) as exc:
        fail(str(exc))
    out.print(f"scored {len(rows)} rows -> {output}")
