"""Export a Hugging Face model folder to GGUF with llama.cpp's own converter.

llama.cpp's ``convert_hf_to_gguf.py`` (and the ``gguf-py`` it needs) ship inside the
``llama-cpp-python`` source package, not in its wheel. :func:`ensure_converter` fetches
that source package from the package registry once (``pip download``, the same version
as the installed ``llama_cpp``), keeps the two pieces under
``$TUNELOOP_HOME/llama.cpp/<version>/`` and reuses them offline afterwards; ``make
setup`` does it, so nothing is fetched at run time. ::

    path = export_gguf("out/merged", "out/merged.gguf", outtype="q8_0")

The export is atomic (written beside the target, then renamed) and cached by content:
:func:`cached_gguf` keys the file by a hash of the folder's weights and config, so
``tuneloop serve --backend llamacpp`` converts a model once.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib import metadata
from pathlib import Path

from tuneloop.models.home import tuneloop_home

OUTTYPES = ("f32", "f16", "bf16", "q8_0")
"""What llama.cpp's converter writes directly (other quantizations need llama-quantize)."""


class GGUFExportError(RuntimeError):
    """The export could not run; the message says what to do."""


def llama_cpp_version() -> str:
    try:
        return metadata.version("llama_cpp_python")
    except metadata.PackageNotFoundError:
        raise GGUFExportError(
            "llama-cpp-python is not installed: pip install 'tuneloop[llamacpp]' "
            "(make setup installs it; it builds from source, ~7 minutes on 2 cores)"
        ) from None


def converter_dir(version: str | None = None) -> Path:
    return tuneloop_home() / "llama.cpp" / (version or llama_cpp_version())


def ensure_converter(version: str | None = None) -> Path:
    """The folder holding ``convert_hf_to_gguf.py`` and ``gguf-py`` (fetched once)."""
    version = version or llama_cpp_version()
    target = converter_dir(version)
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
               ":all:", "--dest", tmp, f"llama-cpp-python=={version}"]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True, text=True)
        sdists = list(Path(tmp).glob("llama_cpp_python-*.tar.gz"))
        if proc.returncode != 0 or not sdists:
            raise GGUFExportError(
                f"could not fetch llama.cpp's converter (llama-cpp-python=={version} source "
                f"package): {proc.stderr.strip()[-500:] or 'no sdist downloaded'}"
            )
        staging = Path(tmp) / "staging"
        with tarfile.open(sdists[0]) as tar:
            prefix = tar.getnames()[0].split("/")[0] + "/vendor/llama.cpp/"
            # The script, the gguf-py it pins, and (newer llama.cpp) its conversion package.
            keep = ("gguf-py/", "conversion/")
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)
                       and (m.name == prefix + "convert_hf_to_gguf.py"
                            or m.name[len(prefix):].startswith(keep))]  # fmt: skip
            for member in members:
                member.name = member.name[len(prefix):]
            tar.extractall(staging, members=members, filter="data")
        if not (staging / "convert_hf_to_gguf.py").is_file():
            raise GGUFExportError(f"{sdists[0].name} holds no vendor/llama.cpp/convert_hf_to_gguf.py")
        (staging / ".complete").write_text(sdists[0].name + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    return target


def export_gguf(model_dir: str | Path, out: str | Path, *, outtype: str = "q8_0") -> Path:
    """Convert an HF folder (merged weights) to one GGUF file; returns its path."""
    model_dir, out = Path(model_dir), Path(out)
    if outtype not in OUTTYPES:
        raise ValueError(f"outtype {outtype!r}: expected one of {', '.join(OUTTYPES)}")
    if not (model_dir / "config.json").is_file():
        raise GGUFExportError(
            f"{model_dir}: not a model folder (no config.json); merge a LoRA run first"
        )
    if (model_dir / "adapter_config.json").is_file():
        raise GGUFExportError(f"{model_dir}: a LoRA adapter; merge it first (tuneloop merge)")
    tools = ensure_converter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(tools / "gguf-py"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "NO_LOCAL_GGUF": ""}  # fmt: skip
    cmd = [sys.executable, str(tools / "convert_hf_to_gguf.py"), str(model_dir),
           "--outfile", str(tmp), "--outtype", outtype]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0 or not tmp.is_file():
        tmp.unlink(missing_ok=True)
        raise GGUFExportError(f"llama.cpp's converter failed on {model_dir}: "
                              f"{proc.stderr.strip()[-1500:]}")  # fmt: skip
    os.replace(tmp, out)
    return out


def folder_hash(model_dir: str | Path) -> str:
    """A content hash of a model folder's weights, config and tokenizer files."""
    h = hashlib.sha256()
    for path in sorted(Path(model_dir).iterdir()):
        if path.is_file() and path.suffix in (".safetensors", ".json", ".jinja", ".model"):
            h.update(path.name.encode())
            with path.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def cached_gguf(model_dir: str | Path, *, outtype: str = "q8_0") -> Path:
    """The folder's GGUF under ``$TUNELOOP_HOME/gguf/``, converted on first use."""
    out = tuneloop_home() / "gguf" / f"{folder_hash(model_dir)}-{outtype}.gguf"
    if out.is_file():
        return out
    return export_gguf(model_dir, out, outtype=outtype)


if __name__ == "__main__":  # `python -m tuneloop.models.gguf_export`: fetch the converter
    print(ensure_converter())
