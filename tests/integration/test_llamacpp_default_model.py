"""llama.cpp as the CPU engine, on the real default model: GGUF export with llama.cpp's
converter, the supervised llama_cpp.server, and tuneloop serve --backend llamacpp in
front of it with the official openai client."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def model_copy(default_model_dir, tmp_path_factory) -> Path:
    """A copy of the default model folder (export writes a model card into it)."""
    folder = tmp_path_factory.mktemp("m") / "smollm2"
    shutil.copytree(default_model_dir, folder)
    return folder


def test_export_gguf_cli_writes_a_gguf_llama_cpp_reads(model_copy: Path, tmp_path: Path) -> None:
    import gguf

    out = tmp_path / "model.gguf"
    proc = subprocess.run([sys.executable, "-m", "tuneloop.cli", "export", str(model_copy),
                           "--format", "gguf", "-o", str(out)],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"gguf: {out}" in proc.stdout
    reader = gguf.GGUFReader(out)
    arch = reader.fields["general.architecture"]
    assert bytes(arch.parts[arch.data[0]]).decode() == "llama"
    assert "tokenizer.chat_template" in reader.fields  # the chat template travels along
    assert len(reader.tensors) == 1 + 30 * 9 + 1  # embeddings, 30 blocks x 9, final norm
    assert not list(tmp_path.glob(".*.tmp"))  # atomic: no temporary file left


def test_export_gguf_rejects_a_bad_outtype_and_a_non_model(tmp_path: Path) -> None:
    bad = subprocess.run([sys.executable, "-m", "tuneloop.cli", "export", str(tmp_path),
                          "--format", "gguf", "--outtype", "q2_k"], capture_output=True, text=True)  # fmt: skip
    assert bad.returncode != 0 and "--outtype 'q2_k'" in bad.stderr
    empty = subprocess.run([sys.executable, "-m", "tuneloop.cli", "export", str(tmp_path),
                            "--format", "gguf", "-o", str(tmp_path / "x.gguf")],
                           capture_output=True, text=True)  # fmt: skip
    assert empty.returncode != 0 and "neither a run folder" in empty.stderr
    assert not (tmp_path / "x.gguf").exists()


def test_serve_backend_llamacpp_answers_the_openai_client(model_copy: Path, tmp_path: Path) -> None:
    from openai import OpenAI

    from tuneloop.serve.llamacpp import free_port

    port = free_port()
    env_home = {"TUNELOOP_HOME": str(tmp_path / "home")}
    import os

    env = {**os.environ, **env_home}
    # The converter was fetched by the set-up into the real home; share it.
    from tuneloop.models.gguf_export import converter_dir

    (tmp_path / "home" / "llama.cpp").mkdir(parents=True)
    shutil.copytree(converter_dir(), tmp_path / "home" / "llama.cpp" / converter_dir().name)
    server = subprocess.Popen([sys.executable, "-m", "tuneloop.cli", "serve", "--model",
                               str(model_copy), "--backend", "llamacpp", "--port", str(port),
                               "--no-trace"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert server.poll() is None, server.stderr.read()[-3000:]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
        reply = client.chat.completions.create(
            model=client.models.list().data[0].id, max_tokens=16, temperature=0,
            messages=[{"role": "user", "content": "What is the capital of France?"}],
        )  # fmt: skip
        assert reply.choices[0].message.content.strip()
        assert reply.usage.completion_tokens > 0
        schema = {"type": "object", "properties": {"city": {"type": "string"}},
                  "required": ["city"], "additionalProperties": False}  # fmt: skip
        structured = client.chat.completions.create(
            model=client.models.list().data[0].id, max_tokens=48, temperature=0,
            messages=[{"role": "user", "content": "Name a city in France as JSON."}],
            response_format={"type": "json_schema",
                             "json_schema": {"name": "city", "schema": schema}},
        )  # fmt: skip
        assert isinstance(json.loads(structured.choices[0].message.content)["city"], str)
    finally:
        server.terminate()
        server.wait(60)
    # Stopping tuneloop stops the llama.cpp child: nothing is left listening.
    leftover = subprocess.run(["pgrep", "-f", "llama_cpp.server"], capture_output=True, text=True)
    assert leftover.stdout.strip() == "", leftover.stdout
