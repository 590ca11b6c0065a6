"""The llama.cpp pieces that need no llama.cpp: request shape, export errors, supervisor errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuneloop.models.gguf_export import GGUFExportError, export_gguf, folder_hash
from tuneloop.runtime.backends.openai_http import OpenAIChatModel
from tuneloop.runtime.types import GenerationConfig
from tuneloop.serve.llamacpp import LlamaCppError, LlamaCppServer

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
MESSAGES = [{"role": "user", "content": "hi"}]


def test_llamacpp_schema_format_uses_json_object_with_schema() -> None:
    config = GenerationConfig(max_new_tokens=8, json_schema=SCHEMA)
    llama = OpenAIChatModel("http://127.0.0.1:1/v1", model="m", schema_format="llamacpp")
    assert llama._body(MESSAGES, config)["response_format"] == {
        "type": "json_object",
        "schema": SCHEMA,
    }
    openai = OpenAIChatModel("http://127.0.0.1:1/v1", model="m")
    fmt = openai._body(MESSAGES, config)["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == SCHEMA


def test_export_refuses_non_models_adapters_and_unknown_types(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="outtype 'q2_k'"):
        export_gguf(tmp_path, tmp_path / "x.gguf", outtype="q2_k")
    with pytest.raises(GGUFExportError, match="no config.json"):
        export_gguf(tmp_path, tmp_path / "x.gguf")
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(GGUFExportError, match="merge it first"):
        export_gguf(tmp_path, tmp_path / "x.gguf")
    assert not (tmp_path / "x.gguf").exists()


def test_folder_hash_follows_the_weights(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"a")
    first = folder_hash(tmp_path)
    (tmp_path / "README.md").write_text("a card does not change the weights")
    assert folder_hash(tmp_path) == first
    (tmp_path / "model.safetensors").write_bytes(b"b")
    assert folder_hash(tmp_path) != first


def test_server_reports_a_missing_file_and_a_dying_child(tmp_path: Path) -> None:
    with pytest.raises(LlamaCppError, match="no such GGUF"):
        LlamaCppServer(tmp_path / "none.gguf").start()
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf")
    with pytest.raises(LlamaCppError, match="exited with code"):
        LlamaCppServer(bad).start(timeout_s=120)
