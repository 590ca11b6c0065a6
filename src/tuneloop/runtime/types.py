"""The one narrow model interface every backend implements.

``ChatModel.generate(messages, config) -> GenerationOutput`` plus streaming. Messages
are OpenAI-style dicts (``{"role": ..., "content": ...}``, optional ``tool_calls``),
so the same conversation feeds the local engine, an OpenAI-compatible server and
the scripted :class:`~tuneloop.runtime.backends.fake.FakeModel`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

Message = dict[str, Any]

FinishReason = Literal["stop", "length", "tool_calls", "error"]


MIN_SAMPLING_TEMPERATURE = 1e-4
"""Temperatures below this decode greedily: dividing logits by a near-zero temperature
overflows to inf and the sampling distribution becomes NaN."""


def is_sampled(temperature: float) -> bool:
    """Whether ``temperature`` means sampling (else greedy decoding)."""
    return temperature >= MIN_SAMPLING_TEMPERATURE


class GenerationConfig(BaseModel):
    """How to generate. Defaults are greedy decoding of up to 256 new tokens."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(256, ge=1)
    """Upper bound on generated tokens (OpenAI: ``max_tokens``)."""
    temperature: float = Field(0.0, ge=0.0)
    """0 means greedy decoding; above 0 samples."""
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass (ignored when greedy)."""
    stop: list[str] = Field(default_factory=list)
    """Strings that end generation; the stop string is not included in the text."""
    seed: int | None = None
    """Seed for sampling, so a sampled output can be reproduced."""
    tools: list[dict] | None = None
    """Tool specs (OpenAI function format) rendered into the prompt."""
    tool_choice: str = "auto"
    """OpenAI semantics: ``auto`` (the model decides), ``none``, ``required`` (some tool
    must be called) or a tool's name (that tool must be called). Backends that can
    constrain decoding (``supports_json_schema``) enforce ``required`` and a name with a
    grammar over the tool schemas; the runtime checks it either way."""
    json_schema: dict | None = None
    """Constrain the output to JSON valid against this schema, on backends that can
    (``supports_json_schema``): the local engine through a grammar (llguidance), an
    OpenAI-compatible server through ``response_format``. Others ignore it; the
    runtime validates (and repairs) the output either way."""


class GenerationOutput(BaseModel):
    """One completion and what it cost."""

    text: str
    finish_reason: FinishReason = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    """Wall time from request to last token."""
    time_to_first_token_s: float | None = None
    model: str = ""
    """Name of the model that produced the output."""
    tool_calls: list[dict] | None = None
    """Structured tool calls when the backend returns them (OpenAI servers do)."""

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.latency_s if self.latency_s > 0 else 0.0


class StreamChunk(BaseModel):
    """A piece of streamed text; the last chunk carries ``finish_reason`` and usage."""

    text: str = ""
    finish_reason: FinishReason | None = None
    output: GenerationOutput | None = None
    """Set on the final chunk: the whole output, as ``generate`` would return it."""


@runtime_checkable
class ChatModel(Protocol):
    """What the runtime, eval and serving layers need from a model."""

    name: str

    def generate(
        self, messages: list[Message], config: GenerationConfig | None = None
    ) -> GenerationOutput:
        """Complete one conversation."""
        ...

    def stream(
        self, messages: list[Message], config: GenerationConfig | None = None
    ) -> Iterator[StreamChunk]:
        """Complete one conversation, yielding text as it is produced."""
        ...


@runtime_checkable
class TokenCounter(Protocol):
    """Exact token counts, for the context policy. The local engine is one."""

    context_window: int | None
    """How many tokens the model can attend to (prompt + answer), when known."""

    def count_text(self, text: str) -> int:
        """Tokens of ``text`` on its own (no special tokens added)."""
        ...

    def count_prompt(self, messages: list[Message], tools: list[dict] | None = None) -> int:
        """Tokens of the whole rendered prompt, generation prompt included."""
        ...


def generate_many(
    model: ChatModel, conversations: list[list[Message]], config: GenerationConfig | None = None
) -> list[GenerationOutput]:
    """Complete many conversations, batched when the backend supports it."""
    batch = getattr(model, "generate_batch", None)
    if batch is not None:
        return batch(conversations, config)
    return [model.generate(c, config) for c in conversations]
