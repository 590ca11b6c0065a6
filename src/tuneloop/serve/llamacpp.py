"""llama.cpp as the CPU engine: a supervised ``llama_cpp.server`` on loopback.

``tuneloop serve --backend llamacpp`` exports the model to GGUF (merged weights, with
llama.cpp's converter; cached by content), starts ``python -m llama_cpp.server`` on a
free loopback port, waits until it answers, and puts it behind tuneloop as an OpenAI
upstream (tool-call validation, schema repair, context policy and traces stay ours).
The child process is stopped when tuneloop exits, and a child that dies is reported
with the tail of its log. ::

    with LlamaCppServer(cached_gguf("out/merged")) as server:
        model = OpenAIChatModel(server.base_url, model=server.model_name)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


class LlamaCppError(RuntimeError):
    """The llama.cpp server did not start; the message carries its log's tail."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM when tuneloop dies, even by SIGKILL (no orphans)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaCppServer:
    """One ``llama_cpp.server`` child process serving ``gguf`` on 127.0.0.1."""

    def __init__(
        self,
        gguf: str | Path,
        *,
        n_ctx: int = 4096,
        threads: int | None = None,
        port: int | None = None,
        model_name: str = "llamacpp",
    ):
        self.gguf = Path(gguf)
        self.n_ctx = n_ctx
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.port = port or free_port()
        self.model_name = model_name
        self.process: subprocess.Popen | None = None
        self._log = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 180.0) -> LlamaCppServer:
        if not self.gguf.is_file():
            raise LlamaCppError(f"{self.gguf}: no such GGUF file")
        self._log = tempfile.NamedTemporaryFile(prefix="tuneloop-llamacpp-", suffix=".log",
                                                delete=False)  # fmt: skip
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf),
               "--model_alias", self.model_name, "--host", "127.0.0.1", "--port", str(self.port),
               "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads),
               "--n_threads_batch", str(self.threads)]  # fmt: skip
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                        start_new_session=True,
                                        preexec_fn=_die_with_parent if sys.platform == "linux" else None)  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LlamaCppError(f"llama.cpp server exited with code {self.process.returncode}: "
                                    f"{self.log_tail()}")  # fmt: skip
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise LlamaCppError(f"llama.cpp server not ready after {timeout_s:.0f}s: {self.log_tail()}")

    def log_tail(self, chars: int = 2000) -> str:
        if self._log is None:
            return ""
        try:
            return Path(self._log.name).read_text(errors="replace")[-chars:].strip()
        except OSError:
            return ""

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            Path(self._log.name).unlink(missing_ok=True)
            self._log = None

    def __enter__(self) -> LlamaCppServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def gguf_for(ref: str, *, outtype: str = "q8_0") -> tuple[Path, str]:
    """``(GGUF path, display name)`` of a model reference: a ``.gguf`` is used as is; a
    model folder (an embedded model, a merged fine-tune) is converted once and cached."""
    from tuneloop.models.gguf_export import cached_gguf
    from tuneloop.models.resolve import resolve_model

    resolved = resolve_model(ref)
    if resolved.kind == "gguf":
        return resolved.path, resolved.name
    if (resolved.path / "adapter_config.json").is_file():
        raise LlamaCppError(f"{resolved.path}: a LoRA adapter; merge it first (tuneloop merge) "
                            "and serve the merged folder")  # fmt: skip
    return cached_gguf(resolved.path, outtype=outtype), resolved.name
