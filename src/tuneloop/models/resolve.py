"""Resolve a model reference to something loadable, and load it.

A reference is one of:

- an embedded name (``smollm2-135m-instruct``): pulled once into the cache;
- a local Hugging Face folder (has ``config.json``);
- a ``.gguf`` file: de-quantized on load;
- a hub id (``org/name``): from the local HF cache, or downloaded where a network
  exists. Offline it fails at once with a clear message; it never hangs.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tuneloop.models.registry import embedded_models, get_embedded

Kind = Literal["embedded", "folder", "gguf", "hub"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PROBE_TIMEOUT_S = 3.0


class ModelResolutionError(ValueError):
    """The reference names no loadable model; the message says why and what to do."""


@dataclass(frozen=True)
class ResolvedModel:
    """A model reference made concrete."""

    ref: str
    """What the user typed."""
    kind: Kind
    path: Path
    """Local folder (or ``.gguf`` file) to load from."""
    name: str
    """Short display name (the embedded name, folder name or hub id)."""


def resolve_model(ref: str | os.PathLike, pull_missing: bool = True, progress=None) -> ResolvedModel:
    """Turn ``ref`` into a :class:`ResolvedModel`, pulling embedded models if needed."""
    ref_s = str(ref)
    embedded = get_embedded(ref_s)
    if embedded is not None:
        from tuneloop.models.embedded import is_pulled, pull, pulled_path

        if not is_pulled(embedded):
            if not pull_missing:
                raise ModelResolutionError(
                    f"embedded model {ref_s!r} is not pulled yet: run "
                    f"`tuneloop models pull {ref_s}`"
                )
            pull(embedded, progress)
        return ResolvedModel(ref_s, "embedded", pulled_path(embedded), embedded.name)

    path = Path(ref_s).expanduser()
    if path.exists():
        if path.is_file():
            if path.suffix != ".gguf":
                raise ModelResolutionError(f"{path}: a model file must be a .gguf file")
            return ResolvedModel(ref_s, "gguf", path.resolve(), path.stem)
        if (path / "config.json").is_file():
            return ResolvedModel(ref_s, "folder", path.resolve(), path.resolve().name)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return ResolvedModel(ref_s, "gguf", ggufs[0].resolve(), ggufs[0].stem)
        raise ModelResolutionError(
            f"{path}: not a model folder (no config.json"
            + (f"; {len(ggufs)} .gguf files, name one" if ggufs else "")
            + ")"
        )
    if _HUB_ID.match(ref_s):
        return ResolvedModel(ref_s, "hub", _hub_snapshot(ref_s), ref_s)
    known = ", ".join(sorted(embedded_models()))
    raise ModelResolutionError(
        f"unknown model {ref_s!r}: not an embedded name ({known}), an existing path, "
        "or a hub id of the form org/name"
    )


def _hub_snapshot(repo_id: str) -> Path:
    """Local snapshot folder of a hub model: cached, or downloaded when online."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached: fall through to the network
        pass
    offline = any(
        os.environ.get(v, "").lower() in ("1", "true", "yes")
        for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    host = re.sub(r"^https?://", "", endpoint).split("/")[0].split(":")[0]
    if offline or not _reachable(host, 443):
        raise ModelResolutionError(
            f"hub model {repo_id!r} is not in the local cache and the hub ({host}) cannot "
            "be reached" + (" (HF_HUB_OFFLINE is set)" if offline else "")
            + ". Use an embedded model (`tuneloop models list`), a local folder or a .gguf file."
        )
    try:
        return Path(snapshot_download(repo_id))
    except Exception as exc:
        raise ModelResolutionError(f"could not download {repo_id!r}: {exc}") from exc


def _reachable(host: str, port: int) -> bool:
    """Whether a TCP connection to host:port opens within a few seconds (never hangs).

    DNS lookups have no timeout of their own, so the probe runs in a daemon thread.
    """
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=_PROBE_TIMEOUT_S):
                result.append(True)
        except Exception:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(_PROBE_TIMEOUT_S + 1)
    return bool(result and result[0])


def load_tokenizer(model: ResolvedModel):
    """The model's tokenizer (with its chat template)."""
    from transformers import AutoTokenizer

    if model.kind == "gguf":
        return AutoTokenizer.from_pretrained(model.path.parent, gguf_file=model.path.name)
    return AutoTokenizer.from_pretrained(model.path)


def load_model(model: ResolvedModel, dtype: str = "float32"):
    """The causal LM, in eval mode. ``dtype`` is a torch dtype name or ``auto``."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    if model.kind == "gguf":
        from tuneloop.models.gguf import load_gguf

        return load_gguf(model.path)[0].eval()
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    # The per-tensor "Loading weights" bar is noise for a sub-second local load.
    hf_logging.disable_progress_bar()
    try:
        lm = AutoModelForCausalLM.from_pretrained(model.path, dtype=torch_dtype)
    finally:
        hf_logging.enable_progress_bar()
    return lm.eval()


def load_model_and_tokenizer(ref: str | os.PathLike, dtype: str = "float32"):
    """(model, tokenizer, resolved) for any reference."""
    resolved = resolve_model(ref)
    return load_model(resolved, dtype), load_tokenizer(resolved), resolved
