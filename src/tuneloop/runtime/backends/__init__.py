"""Model backends: each implements :class:`tuneloop.runtime.types.ChatModel`."""

from tuneloop.runtime.backends.errors import BackendError
from tuneloop.runtime.backends.fake import FakeModel, FakeModelExhausted
from tuneloop.runtime.backends.local import LocalEngine
from tuneloop.runtime.backends.openai_http import OpenAIChatModel

__all__ = ["BackendError", "FakeModel", "FakeModelExhausted", "LocalEngine", "OpenAIChatModel"]
