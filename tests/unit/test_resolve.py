"""Model references: embedded names, folders, .gguf files, hub ids (offline)."""

from __future__ import annotations

import time

import pytest

from tuneloop.models.info import count_parameters, model_info
from tuneloop.models.resolve import ModelResolutionError, resolve_model


def test_folder_resolves(tiny_model_dir):
    resolved = resolve_model(tiny_model_dir)
    assert resolved.kind == "folder"
    assert resolved.path == tiny_model_dir.resolve()


def test_folder_without_config_is_a_clear_error(tmp_path):
    with pytest.raises(ModelResolutionError, match="no config.json"):
        resolve_model(tmp_path)


def test_non_gguf_file_is_a_clear_error(tmp_path):
    f = tmp_path / "weights.bin"
    f.write_bytes(b"x")
    with pytest.raises(ModelResolutionError, match=r"\.gguf"):
        resolve_model(f)


def test_gguf_file_resolves(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"GGUF")
    resolved = resolve_model(f)
    assert resolved.kind == "gguf" and resolved.name == "m"


def test_unknown_name_lists_embedded_models():
    with pytest.raises(ModelResolutionError, match="smollm2-135m-instruct"):
        resolve_model("no-such-model")


def test_embedded_not_pulled_without_pull(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path))
    with pytest.raises(ModelResolutionError, match="tuneloop models pull"):
        resolve_model("smollm2-135m-instruct", pull_missing=False)


@pytest.mark.parametrize("offline", ["1", ""])
def test_hub_id_offline_fails_fast_with_clear_message(monkeypatch, tmp_path, offline):
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", offline)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    start = time.perf_counter()
    with pytest.raises(ModelResolutionError, match="cannot be reached"):
        resolve_model("someorg/some-model")
    assert time.perf_counter() - start < 10  # never a hang


def test_info_matches_the_model(tiny_model_dir):
    from transformers import AutoConfig, AutoModelForCausalLM

    info = model_info(resolve_model(tiny_model_dir))
    config = AutoConfig.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    assert info["parameters"] == count_parameters(config)
    assert (info["layers"], info["heads"], info["kv_heads"]) == (2, 4, 2)
    assert info["head_dim"] == 16 and info["hidden_size"] == 64
    assert info["vocab_size"] == config.vocab_size
    assert info["dtype"] == "float32"
    assert info["chat_template"] is True
    assert info["eos_tokens"] == ["<|im_end|>"]
