"""The assistant runtime: the ChatModel interface and its backends."""

from tuneloop.runtime.backends import (
    BackendError,
    FakeModel,
    FakeModelExhausted,
    LocalEngine,
    OpenAIChatModel,
)
from tuneloop.runtime.types import (
    ChatModel,
    GenerationConfig,
    GenerationOutput,
    Message,
    StreamChunk,
    generate_many,
)

__all__ = [
    "BackendError",
    "ChatModel",
    "FakeModel",
    "FakeModelExhausted",
    "GenerationConfig",
    "GenerationOutput",
    "LocalEngine",
    "Message",
    "OpenAIChatModel",
    "StreamChunk",
    "generate_many",
]
