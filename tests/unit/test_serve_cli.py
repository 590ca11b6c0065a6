"""``tuneloop serve`` as a user runs it: a subprocess on loopback, a request, Ctrl-C."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx

KEY = "sk-test-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_cli_answers_and_stops_cleanly(tiny_model_dir, tmp_path):
    port = _free_port()
    db = tmp_path / "traces.db"
    cmd = [sys.executable, "-m", "tuneloop.cli", "serve", "--model", str(tiny_model_dir), "--port", str(port),
           "--trace-db", str(db), "--max-batch", "2", "--log-level", "warning"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TUNELOOP_API_KEY": KEY})  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                models = httpx.get(url + "/health").json()["models"]
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        body = {
            "model": models[0],
            "messages": [{"role": "user", "content": "Hi"}],
            "max_tokens": 3,
        }
        assert httpx.post(url + "/v1/chat/completions", json=body).status_code == 401
        r = httpx.post(url + "/v1/chat/completions", json=body, headers=AUTH, timeout=60)
        assert r.status_code == 200, r.text
        metrics = httpx.get(url + "/metrics", headers=AUTH).text
        assert 'tuneloop_requests_total{route="/v1/chat/completions",status="200"} 1.0' in metrics
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out  # a requested stop is a clean exit
    assert "Traceback" not in out
    assert db.exists()
    assert KEY not in out  # no key material in logs or traces
    assert not any(KEY.encode() in f.read_bytes() for f in tmp_path.glob("traces.db*"))
