"""The scorecard's generation cache: a re-run of an unchanged scorecard does no generation.

Three pieces::

    cache = OutputCache(run_dir / "outputs.db")
    model = CachedModel(LocalEngine.from_ref("tiny"), cache)
    generate_many(model, conversations, config)  # misses generate, in one batch
    generate_many(model, conversations, config)  # all hits: the model is not called
    model.hits, model.misses, model.uncacheable

* :func:`model_fingerprint` names the weights that produce an output. For a
  :class:`~tuneloop.runtime.backends.local.LocalEngine` it is a sha256 over the
  tensors in memory, the tokenizer, the chat template and the generation config.
* :func:`cache_key` adds what was asked: the rendered prompt (when the model has a
  tokenizer, so two message lists that render to the same text share an entry, else
  the messages as canonical JSON) and every field of the ``GenerationConfig``.
* :class:`OutputCache` stores outputs in SQLite; :class:`CachedModel` is a
  ``ChatModel`` that answers from it and calls the wrapped model only for misses.

Not cached (counted as ``uncacheable``, passed straight through): sampling without a
seed (``temperature > 0`` and ``seed is None``: not reproducible, so a stored answer
would hide the variance the scorecard measures), models without a fingerprint, and
``stream``.

Why tensors in memory and not the ``model.safetensors`` files on disk: reading the
files costs the same (both read every byte) but misses what happened after loading:
the dtype chosen at load time, merged adapters, in-place edits. The hash is cached on
the model object together with each tensor's version counter, so an unchanged model is
hashed once and an in-place change (an optimizer step, ``p.add_``) is noticed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tuneloop.models.chat_template import RenderError, render_text
from tuneloop.runtime.types import GenerationConfig, GenerationOutput, Message, generate_many

log = logging.getLogger("tuneloop.eval")

_FINGERPRINT_ATTR = "_tuneloop_fingerprint"
"""Where :func:`model_fingerprint` caches ``(validity token, fingerprint)`` on a model."""


# ----------------------------------------------------------------------- fingerprints


def model_fingerprint(model: Any, strict: bool = True) -> str | None:
    """A sha256 naming the weights and settings behind ``model``'s outputs, or None.

    * A ``LocalEngine`` (anything with ``.model`` holding a ``state_dict`` and a
      ``.tokenizer``): every tensor (name, dtype, shape, bytes) in name order, the
      tokenizer (vocabulary and chat template), the model and generation configs
      (less the load path), the eos/pad ids and the torch/transformers versions.
    * An ``OpenAIChatModel``: base URL, model name and ``extra_body``. The server's
      weights are not visible: if it starts serving other weights under the same
      name, pass ``CachedModel(..., fingerprint=...)`` or use a fresh cache.
    * Anything else: its ``fingerprint`` attribute (a string, or a method returning
      one) when it has one. Otherwise None, meaning "do not cache": the model may be
      anything, and a wrong hit is worse than a miss. ``strict=False`` falls back to
      the class name and ``name``, for models known to be deterministic and uniquely
      named.
    """
    own = getattr(model, "fingerprint", None)
    if callable(own):
        own = own()
    if isinstance(own, str) and own:
        return own
    if _is_local_engine(model):
        return _local_fingerprint(model)
    from tuneloop.runtime.backends.openai_http import OpenAIChatModel

    if isinstance(model, OpenAIChatModel):
        return _sha256_json(
            {
                "kind": "openai-compatible",
                "base_url": model.base_url,
                "model": model.name,
                "extra_body": model.extra_body,
            }
        )
    if strict:
        return None
    return _sha256_json({"class": type(model).__qualname__, "name": getattr(model, "name", "")})


def _is_local_engine(model: Any) -> bool:
    inner = getattr(model, "model", None)
    return callable(getattr(inner, "state_dict", None)) and hasattr(model, "tokenizer")


def _local_fingerprint(engine: Any) -> str | None:
    """The weights' hash, recomputed only when a tensor was replaced or changed in place."""
    state = engine.model.state_dict()
    # data_ptr catches replaced tensors, _version in-place writes (views and detached
    # tensors share their base's counter).
    token = tuple(
        (name, t.data_ptr(), getattr(t, "_version", 0)) for name, t in sorted(state.items())
    )
    cached = getattr(engine, _FINGERPRINT_ATTR, None)
    if cached is not None and cached[0] == token:
        return cached[1]
    try:
        weights = _hash_tensors(state)
    except (RuntimeError, TypeError, NotImplementedError) as exc:
        # Meta tensors, exotic quantized subclasses: better no cache than a wrong one.
        log.warning("cannot hash the weights of %r (%s); its outputs are not cached", engine, exc)
        return None
    fingerprint = _sha256_json({"weights": weights, **_local_settings(engine)})
    try:
        setattr(engine, _FINGERPRINT_ATTR, (token, fingerprint))
    except AttributeError:  # __slots__ or a read-only proxy: just recompute next time
        pass
    return fingerprint


def _hash_tensors(state: dict[str, Any]) -> str:
    """sha256 over each tensor's name, dtype, shape and raw bytes, in name order."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(state.items()):
        t = tensor.detach()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|{t.device.type}\n".encode())
        # A uint8 view works for every dtype (numpy has no bfloat16), one tensor at a
        # time so a GPU model is copied to host memory a tensor at a time.
        raw = t.reshape(-1).contiguous().view(torch.uint8).cpu().numpy()
        digest.update(memoryview(raw))
    return digest.hexdigest()


def _local_settings(engine: Any) -> dict[str, Any]:
    """Everything besides the weights that changes a LocalEngine's output."""
    import torch
    import transformers

    import tuneloop

    tokenizer = engine.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab())
    dropped = {"_name_or_path", "transformers_version", "_commit_hash"}
    model_config = {k: v for k, v in engine.model.config.to_dict().items() if k not in dropped}
    gen = getattr(engine.model, "generation_config", None)
    gen_config = {k: v for k, v in (gen.to_dict() if gen else {}).items() if k not in dropped}
    return {
        "class": type(engine).__qualname__,
        "tokenizer": hashlib.sha256(vocab.encode()).hexdigest(),
        "special_tokens": getattr(tokenizer, "special_tokens_map", {}),
        "chat_template": getattr(tokenizer, "chat_template", None),
        "model_config": model_config,
        "generation_config": gen_config,
        "eos_token_ids": getattr(engine, "eos_token_ids", None),
        "pad_token_id": getattr(engine, "pad_token_id", None),
        # Kernels and decoding code change greedy outputs too.
        "versions": [torch.__version__, transformers.__version__, tuneloop.__version__],
    }


def _sha256_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


# ----------------------------------------------------------------------- keys


def is_reproducible(config: GenerationConfig) -> bool:
    """Whether an output for ``config`` can be reused: greedy, or sampled with a seed."""
    return config.temperature == 0 or config.seed is not None


def cache_key(
    fingerprint: str,
    messages: list[Message],
    config: GenerationConfig,
    rendered_prompt: str | None = None,
) -> str:
    """The sha256 naming one generation: model, prompt and every generation setting.

    Pass ``rendered_prompt`` (``render_text(tokenizer, messages, config.tools)``) when
    the model renders with a tokenizer: it is exactly what the model sees, so message
    lists differing only in keys the template ignores share an entry. Without it the
    messages and tools are keyed as canonical JSON.
    """
    return _key_parts(fingerprint, messages, config, rendered_prompt)[0]


def _key_parts(
    fingerprint: str, messages: list[Message], config: GenerationConfig, rendered: str | None
) -> tuple[str, str, str]:
    """``(key, prompt_hash, config_hash)``."""
    if rendered is not None:
        prompt_hash = _sha256_json({"rendered": rendered})
    else:
        prompt_hash = _sha256_json({"messages": messages, "tools": config.tools})
    config_hash = _sha256_json(config.model_dump(mode="json"))
    key = hashlib.sha256(f"{fingerprint}\n{prompt_hash}\n{config_hash}".encode()).hexdigest()
    return key, prompt_hash, config_hash


# ----------------------------------------------------------------------- the store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
    key TEXT PRIMARY KEY,
    model_fingerprint TEXT NOT NULL,
    prompt_hash TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    output JSON NOT NULL,
    created REAL NOT NULL
)
"""


class OutputCache:
    """Generation outputs in one SQLite file (WAL), keyed by :func:`cache_key`.

    Thread-safe (one connection behind a lock); several processes may share the
    file, SQLite's busy timeout serialising their writes.
    """

    def __init__(self, path: str | Path, busy_timeout_ms: int = 30_000):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        with self._lock:
            self._conn.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(_SCHEMA)

    def get(self, key: str) -> GenerationOutput | None:
        """The stored output for ``key``; None when absent or unreadable (logged)."""
        with self._lock:
            row = self._conn.execute("SELECT output FROM outputs WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return GenerationOutput.model_validate_json(row[0])
        except (ValidationError, ValueError, TypeError) as exc:
            # A truncated write or a schema change: regenerate rather than fail the run.
            log.warning("%s: unreadable cached output for key %s, regenerating (%s)",
                        self.path, key[:16], exc)  # fmt: skip
            return None

    def put(
        self,
        key: str,
        output: GenerationOutput,
        *,
        model_fingerprint: str = "",
        prompt_hash: str = "",
        config_hash: str = "",
    ) -> None:
        """Store ``output`` under ``key`` (replacing any entry); the hashes are for queries."""
        row = (key, model_fingerprint, prompt_hash, config_hash, output.model_dump_json(),
               time.time())  # fmt: skip
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?, ?, ?)", row)

    def stats(self) -> dict[str, Any]:
        """``entries`` stored, distinct ``models`` (fingerprints) and the file ``path``."""
        with self._lock:
            entries, models = self._conn.execute(
                "SELECT COUNT(*), COUNT(DISTINCT model_fingerprint) FROM outputs"
            ).fetchone()
        return {"entries": entries, "models": models, "path": str(self.path)}

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> OutputCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------- the wrapper


class CachedModel:
    """A ``ChatModel`` that answers from an :class:`OutputCache`, generating only misses.

    Other attributes (``supports_json_schema``, ``count_text``, ``count_prompt``,
    ``context_window``, ``tokenizer``, ...) are the wrapped model's. A hit returns the
    stored output as first generated, its ``latency_s`` included; hits are visible
    only in the counters. ``fingerprint`` overrides :func:`model_fingerprint`.

    Two threads missing the same key at once both generate (the last write wins):
    cheaper than a lock held across generation, and both outputs are valid.
    """

    def __init__(self, model: Any, cache: OutputCache, fingerprint: str | None = None):
        self.model = model
        self.cache = cache
        self.name: str = model.name
        self._fingerprint = fingerprint
        self.hits = 0
        """Conversations answered from the cache."""
        self.misses = 0
        """Conversations generated by the wrapped model and then stored."""
        self.uncacheable = 0
        """Conversations passed through: no fingerprint, unseeded sampling, or ``stream``."""
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes not found normally; guard against recursion
        # while the object is half-built (copy, pickle).
        if name.startswith("__") or name in ("model", "cache", "_fingerprint", "_lock"):
            raise AttributeError(name)
        return getattr(self.model, name)

    @property
    def fingerprint(self) -> str | None:
        """The wrapped model's fingerprint (or the override), None when it has none."""
        return self._fingerprint or model_fingerprint(self.model)

    def generate(
        self, messages: list[Message], config: GenerationConfig | None = None
    ) -> GenerationOutput:
        """Complete one conversation, from the cache when possible."""
        return self.generate_batch([messages], config)[0]

    def generate_batch(
        self, conversations: list[list[Message]], config: GenerationConfig | None = None
    ) -> list[GenerationOutput]:
        """Complete many conversations; the misses go to the wrapped model as one batch."""
        config = config or GenerationConfig()
        fingerprint = self.fingerprint if is_reproducible(config) else None
        if fingerprint is None:
            self._count(uncacheable=len(conversations))
            return generate_many(self.model, conversations, config)
        parts = [_key_parts(fingerprint, c, config, self._render(c, config)) for c in conversations]
        results: list[GenerationOutput | None] = [self.cache.get(p[0]) for p in parts]
        todo: dict[str, list[int]] = {}  # key -> positions; a repeated conversation generates once
        for i, (key, _, _) in enumerate(parts):
            if results[i] is None:
                todo.setdefault(key, []).append(i)
        if todo:
            firsts = [positions[0] for positions in todo.values()]
            outputs = generate_many(self.model, [conversations[i] for i in firsts], config)
            for i, output in zip(firsts, outputs, strict=True):
                key, prompt_hash, config_hash = parts[i]
                self.cache.put(key, output, model_fingerprint=fingerprint,
                               prompt_hash=prompt_hash, config_hash=config_hash)  # fmt: skip
                for j in todo[key]:
                    results[j] = output.model_copy(deep=True)
        self._count(hits=len(conversations) - len(todo), misses=len(todo))
        return [r for r in results if r is not None]

    def stream(self, messages: list[Message], config: GenerationConfig | None = None):
        """Passed through uncached: a stream's point is live tokens and timing, which a
        replay would fake. Counted as ``uncacheable``."""
        self._count(uncacheable=1)
        return self.model.stream(messages, config)

    def _render(self, messages: list[Message], config: GenerationConfig) -> str | None:
        """The prompt text the wrapped model sees, when it renders with a chat template."""
        tokenizer = getattr(self.model, "tokenizer", None)
        if tokenizer is None or not getattr(tokenizer, "chat_template", None):
            return None
        try:
            return render_text(tokenizer, messages, config.tools)
        except RenderError:
            return None  # keyed by the messages; the wrapped model reports the error

    def _count(self, hits: int = 0, misses: int = 0, uncacheable: int = 0) -> None:
        with self._lock:
            self.hits += hits
            self.misses += misses
            self.uncacheable += uncacheable
