"""The canonical records: what every stage reads and writes as JSONL.

| record | one line holds | used by |
|---|---|---|
| :class:`Conversation` | ``messages`` (+ ``tools``, ``metadata``) | SFT, mining, stats |
| :class:`PreferencePair` | ``prompt``, ``chosen``, ``rejected`` | DPO family, reward models |
| :class:`LabeledExample` | ``prompt``, ``completion``, ``label`` | KTO |
| :class:`EvalSample` | ``id``, ``input`` (+ ``tools``, ``schema``, ``target``) | the scorecard |

Messages follow the OpenAI chat format, so records pass to chat templates, TRL and
OpenAI-compatible servers unchanged. Field names of the preference and KTO records
are TRL's conversational dataset format.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def to_json_dict(self) -> dict[str, Any]:
        """Plain dict for JSONL: unset optional fields are left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class FunctionCall(_Record):
    name: str = Field(min_length=1)
    """Name of the tool being called."""
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    """Arguments as an object (or the raw JSON string a model produced)."""


class ToolCall(_Record):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Record):
    role: Role
    content: str | None = None
    """Text of the turn; may be None for an assistant turn that only calls tools."""
    tool_calls: list[ToolCall] | None = None
    """Tool calls made by an assistant turn."""
    tool_call_id: str | None = None
    """For ``tool`` turns: the call this result answers."""
    name: str | None = None
    """For ``tool`` turns: the tool's name."""
    weight: float | None = None
    """For assistant turns: 0 excludes the turn from the loss (default: trained)."""


class FunctionSpec(_Record):
    name: str = Field(min_length=1)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON Schema of the arguments object."""


class ToolSpec(_Record):
    type: Literal["function"] = "function"
    function: FunctionSpec


class Metadata(BaseModel):
    """Provenance. Extra keys (trace id, mining reason, category...) are kept."""

    model_config = ConfigDict(extra="allow")

    source: str | None = None
    license: str | None = None
    tags: list[str] = Field(default_factory=list)


class Conversation(_Record):
    messages: list[Message] = Field(min_length=1)
    tools: list[ToolSpec] | None = None
    metadata: Metadata = Field(default_factory=Metadata)
    id: str | None = None


class PreferencePair(_Record):
    prompt: list[Message] = Field(min_length=1)
    chosen: list[Message] = Field(min_length=1)
    """The preferred continuation (assistant turn(s))."""
    rejected: list[Message] = Field(min_length=1)
    tools: list[ToolSpec] | None = None
    metadata: Metadata = Field(default_factory=Metadata)
    id: str | None = None


class LabeledExample(_Record):
    prompt: list[Message] = Field(min_length=1)
    completion: list[Message] = Field(min_length=1)
    label: bool
    """True when the completion is desirable (KTO)."""
    tools: list[ToolSpec] | None = None
    metadata: Metadata = Field(default_factory=Metadata)
    id: str | None = None


class EvalSample(_Record):
    id: str = Field(min_length=1)
    input: list[Message] = Field(min_length=1)
    """The conversation up to the turn to be generated."""
    tools: list[ToolSpec] | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    """JSON Schema the answer must satisfy, when the task is structured output."""
    target: str | list[str] | dict[str, Any] | None = None
    """Expected answer (or acceptable answers, or an expected tool call)."""
    reference: str | None = None
    """A reference answer for judged comparisons."""
    metadata: Metadata = Field(default_factory=Metadata)


RECORD_TYPES: dict[str, type[_Record]] = {
    "conversation": Conversation,
    "preference": PreferencePair,
    "labeled": LabeledExample,
    "eval": EvalSample,
}


def record_kind(row: dict[str, Any]) -> str | None:
    """Which canonical record a JSON object is, from its keys (None if none fits)."""
    if "messages" in row:
        return "conversation"
    if "chosen" in row or "rejected" in row:
        return "preference"
    if "completion" in row and "label" in row:
        return "labeled"
    if "input" in row and "id" in row:
        return "eval"
    return None


def to_chat_messages(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as plain OpenAI-style dicts (what chat templates and backends take)."""
    return [m.to_json_dict() for m in messages]


def tools_as_dicts(tools: list[ToolSpec] | None) -> list[dict[str, Any]] | None:
    return [t.to_json_dict() for t in tools] if tools else None
