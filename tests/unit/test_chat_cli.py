"""`tuneloop chat` assistant options: bad input fails before any model loads."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tuneloop.cli import app

runner = CliRunner()


def chat(*args: str):
    # A model reference that cannot load: reaching it would be a different error.
    return runner.invoke(app, ["chat", "--model", "/nonexistent/model", "-p", "x", *args])


def test_bad_assistant_config_names_file_line_and_field(tmp_path):
    bad_yaml = tmp_path / "a.yaml"
    bad_yaml.write_text("max_steps: 3\nrepair: [unclosed\n")
    result = chat("--tools", "calculator", "--config", str(bad_yaml))
    assert (
        result.exit_code == 1
        and f"{bad_yaml}:" in result.output
        and "not valid YAML" in result.output
    )
    bad_field = tmp_path / "b.yaml"
    bad_field.write_text("context:\n  max_context_tokens: -5\n")
    result = chat("--tools", "calculator", "--config", str(bad_field))
    assert result.exit_code == 1
    assert "context.max_context_tokens: Input should be greater than or equal to 1" in result.output
    unknown = tmp_path / "c.yaml"
    unknown.write_text("max_stepz: 3\n")
    result = chat("--tools", "calculator", "--config", str(unknown))
    assert result.exit_code == 1 and "max_stepz: Extra inputs are not permitted" in result.output


def test_unknown_tool_and_missing_folders():
    result = chat("--tools", "calculator,shell")
    assert result.exit_code == 1 and "shell" in result.output and "calculator" in result.output
    result = chat("--tools", "search_docs")
    assert result.exit_code == 1 and "--docs" in result.output


def test_shipped_assistant_config_is_valid():
    import yaml

    from tuneloop.runtime.assistant import AssistantConfig

    config = AssistantConfig.model_validate(
        yaml.safe_load((Path(__file__).parents[2] / "configs/assistant/default.yaml").read_text())
    )
    assert config.context.summarize and config.repair.max_total_tokens == 4000
