"""Errors raised by model backends."""

from __future__ import annotations

from typing import Any


class BackendError(RuntimeError):
    """A backend could not produce a completion: HTTP error, refused connection, timeout.

    The message is meant for a person (it names the URL, the status code and the
    server's own error message); the attributes are for code that wants to branch.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        status_code: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.url = url
        """The URL that was requested."""
        self.status_code = status_code
        """HTTP status code, or None when no response came back."""
        self.error_type = error_type
        """The ``type`` of an OpenAI-shaped error body (e.g. ``invalid_request_error``)."""
        self.code = code
        """The ``code`` of an OpenAI-shaped error body (e.g. ``invalid_api_key``)."""

    @classmethod
    def from_body(cls, body: Any, url: str, status: int | None, fallback: str) -> BackendError:
        """From an OpenAI-shaped ``{"error": {"message", "type", "param", "code"}}`` body.

        ``fallback`` is the message when the body has none (e.g. the raw response text).
        """
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, str):  # some servers send {"error": "..."}
            error = {"message": error}
        error = error if isinstance(error, dict) else {}
        prefix = f"{url} returned HTTP {status}" if status is not None else f"{url} failed"
        code = error.get("code")
        return cls(
            f"{prefix}: {error.get('message') or fallback}",
            url=url,
            status_code=status,
            error_type=error.get("type"),
            code=str(code) if code is not None else None,
        )


class GrammarError(ValueError):
    """A schema or grammar the constrained-decoding engine cannot compile; the message
    names the problem. Lives here (not in ``constrained``) so callers can catch it
    without importing torch and llguidance."""
