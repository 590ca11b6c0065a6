"""docs/cli.md and docs/configs.md are generated from the CLI and the config models; a
verb, option or config field added without regenerating them fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_reference_docs_are_up_to_date():
    gen = _gen_docs()
    for path, make in gen.OUTPUTS.items():
        assert path.read_text() == make(), (
            f"{path.name} is stale: run .venv/bin/python scripts/gen_docs.py"
        )


def test_every_verb_and_every_config_class_is_documented():
    gen = _gen_docs()
    cli = gen.cli_markdown()
    for verb in (
        "loop",
        "train sft",
        "train dpo",
        "train grpo",
        "eval",
        "gate",
        "serve",
        "mine",
        "data mix",
    ):
        assert f"## `tuneloop {verb}`" in cli
    configs = gen.configs_markdown()
    for cls in (
        "LoopConfig",
        "SFTConfig",
        "DPOConfig",
        "GRPOConfig",
        "MixConfig",
        "GateRule",
        "TaskSpec",
    ):
        assert f"### `{cls}`" in configs
