"""Generate docs/cli.md (every verb, its arguments and options) and docs/configs.md
(every config file's keys with their documentation) from the code itself.

Run: ``.venv/bin/python scripts/gen_docs.py`` (``--check`` exits 1 when the files are
out of date; tests/unit/test_generated_docs.py runs that).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _is_group(command: Any) -> bool:
    return isinstance(getattr(command, "commands", None), dict)


def _walk(command: Any, path: list[str]):
    if _is_group(command):
        for name in sorted(command.commands):
            sub = command.commands[name]
            if not getattr(sub, "hidden", False):
                yield from _walk(sub, [*path, name])
    else:
        yield path, command


def _first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def cli_markdown() -> str:
    import typer

    from tuneloop.cli import app

    root = typer.main.get_command(app)
    lines = ["# Command reference", "",
             "Generated from the CLI by `scripts/gen_docs.py`; `tuneloop VERB --help` prints the same.", ""]  # fmt: skip
    for path, command in _walk(root, []):
        lines += [f"## `tuneloop {' '.join(path)}`", "", _first_paragraph(command.help), ""]
        rows = []
        for param in command.params:
            if param.name == "help":
                continue
            if param.param_type_name == "argument":
                name = (param.metavar or param.name).upper()
            else:
                name = ", ".join(f"`{o}`" for o in (*param.opts, *param.secondary_opts))
            default = (
                param.default if param.param_type_name == "option" and not param.required else None
            )
            shown = "" if default in (None, False, (), []) else f" (default: `{default}`)"
            help_text = " ".join((getattr(param, "help", None) or "").split())
            rows.append(f"| {name if name.startswith('`') else f'`{name}`'} | {help_text}{shown} |")
        if rows:
            lines += ["| argument / option | meaning |", "|---|---|", *rows, ""]
    return "\n".join(lines).rstrip() + "\n"


CONFIGS = [
    (
        "Loop (`configs/loop/`)",
        "tuneloop.loop.config",
        ["LoopConfig", "AssistantStage", "DataStage", "RecipeStage"],
    ),
    ("SFT (`configs/sft/`)", "tuneloop.train.config", ["SFTConfig"]),
    ("DPO family (`configs/dpo/`)", "tuneloop.train.config", ["DPOConfig"]),
    ("Reward model (`configs/reward/`)", "tuneloop.train.config", ["RewardConfig"]),
    ("GRPO (`configs/grpo/`)", "tuneloop.train.config", ["GRPOConfig", "RewardSpec"]),
    ("On-policy DPO rounds (`configs/dpo-round/`)", "tuneloop.train.config", ["DPORoundConfig"]),
    (
        "Data mix (`configs/data/`)",
        "tuneloop.data.mix_config",
        ["MixConfig", "SourceConfig", "DedupConfig"],
    ),
    ("Scorecard (`configs/eval/*.yaml`)", "tuneloop.eval.tasks", ["Scorecard", "TaskSpec"]),
    (
        "Release gate (`configs/eval/gate.yaml`, `configs/loop/gate.yaml`)",
        "tuneloop.eval.gate",
        ["GatePolicy", "GateRule"],
    ),
    ("Assistant (`configs/assistant/`)", "tuneloop.runtime.assistant", ["AssistantConfig"]),
]


def _type_name(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if isinstance(annotation, type) else None
    text = text or str(annotation).replace("typing.", "")
    for prefix in (
        "pathlib.",
        "tuneloop.loop.config.",
        "tuneloop.train.config.",
        "tuneloop.data.mix_config.",
        "tuneloop.eval.tasks.",
        "tuneloop.eval.gate.",
        "tuneloop.runtime.",
    ):
        text = text.replace(prefix, "")
    return text.replace("|", "\\|")


def configs_markdown() -> str:
    import importlib

    from pydantic_core import PydanticUndefined

    lines = ["# Config reference", "",
             "Every config is YAML holding values only, validated by a pydantic model; an unknown "
             "key or a bad value is an error naming the file and the field. Generated from the "
             "models' field docstrings by `scripts/gen_docs.py`.", ""]  # fmt: skip
    for title, module_name, classes in CONFIGS:
        module = importlib.import_module(module_name)
        lines += [f"## {title}", ""]
        for cls_name in classes:
            cls = getattr(module, cls_name, None)
            if cls is None:
                continue
            lines += [f"### `{cls_name}`", "", _first_paragraph(cls.__doc__), "",
                      "| key | type | default | meaning |", "|---|---|---|---|"]  # fmt: skip
            for name, field in cls.model_fields.items():
                key = field.alias or name
                if field.default is not PydanticUndefined:
                    default = f"`{field.default}`"
                elif field.default_factory is not None:
                    default = f"`{field.default_factory()}`"
                else:
                    default = "required"
                doc = " ".join((field.description or "").split()).replace("|", "\\|")
                lines.append(f"| `{key}` | {_type_name(field.annotation)} | {default} | {doc} |")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


OUTPUTS = {ROOT / "docs" / "cli.md": cli_markdown, ROOT / "docs" / "configs.md": configs_markdown}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a generated file is out of date"
    )
    args = parser.parse_args(argv)
    stale = []
    for path, make in OUTPUTS.items():
        text = make()
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path)
        else:
            path.write_text(text)
    for path in stale:
        print(
            f"{path.relative_to(ROOT)} is out of date: run .venv/bin/python scripts/gen_docs.py",
            file=sys.stderr,
        )
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
