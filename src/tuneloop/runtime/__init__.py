"""The assistant runtime: the ChatModel interface, its backends, and the assistant loop
(verified tool calls, structured outputs with repair, context policy, typed events)."""

from tuneloop.runtime.assistant import (
    Assistant,
    AssistantConfig,
    AssistantError,
    AssistantResult,
    MaxStepsError,
    ToolCallError,
)
from tuneloop.runtime.backends import (
    BackendError,
    FakeModel,
    FakeModelExhausted,
    LocalEngine,
    OpenAIChatModel,
)
from tuneloop.runtime.backends.errors import GrammarError
from tuneloop.runtime.context import ContextOverflowError, ContextPolicy, apply_policy
from tuneloop.runtime.events import JsonlSink, ListSink, MultiSink, parse_event
from tuneloop.runtime.structured import (
    OutputSchema,
    RepairBudget,
    SchemaFileError,
    StructuredOutputError,
)
from tuneloop.runtime.tools import Tool, ToolError, ToolRegistry, ToolResult, tool
from tuneloop.runtime.types import (
    ChatModel,
    GenerationConfig,
    GenerationOutput,
    Message,
    StreamChunk,
    TokenCounter,
    generate_many,
)

__all__ = [
    "Assistant",
    "AssistantConfig",
    "AssistantError",
    "AssistantResult",
    "BackendError",
    "ChatModel",
    "ContextOverflowError",
    "ContextPolicy",
    "FakeModel",
    "FakeModelExhausted",
    "GenerationConfig",
    "GenerationOutput",
    "GrammarError",
    "JsonlSink",
    "ListSink",
    "LocalEngine",
    "MaxStepsError",
    "Message",
    "MultiSink",
    "OpenAIChatModel",
    "OutputSchema",
    "RepairBudget",
    "SchemaFileError",
    "StreamChunk",
    "StructuredOutputError",
    "TokenCounter",
    "Tool",
    "ToolCallError",
    "ToolError",
    "ToolRegistry",
    "ToolResult",
    "apply_policy",
    "generate_many",
    "parse_event",
    "tool",
]
