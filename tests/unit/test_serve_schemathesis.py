"""Property-based requests from the server's own OpenAPI schema: no input gives a 5xx.

schemathesis turns ``/openapi.json`` into hypothesis strategies (valid and invalid
bodies); each generated request goes to the ASGI app over the tiny model.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tuneloop.serve import LocalBackend, ServeOptions, create_app, load_local_model


@pytest.fixture(scope="module")
def app(tiny_model_dir):
    model, tok, _ = load_local_model(str(tiny_model_dir))
    backend = LocalBackend(model, tok, "tiny", max_batch=4, max_queue=8)
    yield create_app(backend, options=ServeOptions(request_timeout_s=30, default_max_tokens=4))
    backend.scheduler.shutdown()


def _shorten(body) -> None:
    """Keep generation short; the clamped values are still valid."""
    if isinstance(body, dict):
        for key in ("max_tokens", "max_completion_tokens"):
            if isinstance(body.get(key), int | float) and body[key] > 4:
                body[key] = 4
        if isinstance(body.get("n"), int | float) and body["n"] > 2:
            body["n"] = 2


@pytest.mark.parametrize(("path", "method", "examples", "mode"), [
    ("/v1/chat/completions", "POST", 50, GenerationMode.POSITIVE),
    ("/v1/chat/completions", "POST", 30, GenerationMode.NEGATIVE),
    ("/v1/models/{model_id}", "GET", 10, GenerationMode.POSITIVE),
    ("/health", "GET", 3, GenerationMode.POSITIVE),
])  # fmt: skip
def test_no_server_errors(app, path, method, examples, mode):
    operation = schemathesis.openapi.from_asgi("/openapi.json", app)[path][method]
    statuses: list[int] = []

    @given(case=operation.as_strategy(mode))
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)  # fmt: skip
    def check(case):
        _shorten(case.body)
        if mode is GenerationMode.POSITIVE and isinstance(case.body, dict):
            case.body["model"] = "tiny"  # random names only reach the 404
        response = case.call()
        statuses.append(response.status_code)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"message", "type", "param", "code"}

    check()
    if mode is GenerationMode.POSITIVE and method == "POST":
        assert 200 in statuses  # valid inputs did reach the model
