"""Scorecard tasks: which eval files, which scorers, how to generate. YAML holds data only.

A scorecard is a named list of tasks::

    name: default
    max_new_tokens: 128          # default for tasks that do not set their own
    tasks:
      - name: schema
        layer: A
        files: [data/eval/schema.jsonl]
        scorers: [json_schema]
        limit: 12

    card = load_scorecard("configs/eval/default.yaml")
    samples = load_samples(card.tasks[0])
    completions = solve(card.tasks[0], model, samples)

``files`` are globs, relative to the YAML's folder or the repository root (the first
folder above the YAML holding ``pyproject.toml``); :func:`load_scorecard` resolves them
to absolute paths, so the scorecard a run saves names exactly what it read.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tuneloop.data.io import DataError, read_records
from tuneloop.data.records import EvalSample, to_chat_messages, tools_as_dicts
from tuneloop.eval.scoring import Completion, get_scorer
from tuneloop.runtime.toolcalls import parse_output
from tuneloop.runtime.types import ChatModel, GenerationConfig, Message, generate_many

BATCH_SIZE = 8
"""Conversations per ``generate_many`` call: enough to batch, small enough for 2 CPU cores."""


class ScorecardError(ValueError):
    """A scorecard YAML that cannot be used; the message names the file and field."""


class TaskSpec(BaseModel):
    """One task of a scorecard: a set of eval samples and the scorers that grade them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    """Unique within the scorecard; the key in ``results.json``."""
    layer: Literal["A", "IF", "D", "security"]
    """Which layer of the scorecard: A (structured/tool/grounding/refusal), IF
    (verifiable instructions), D (domain), security (the zero-tolerance pack)."""
    files: list[str] = Field(min_length=1)
    """JSONL globs of EvalSample records, relative to the YAML's folder or the repo root."""
    scorers: list[str] = Field(min_length=1)
    """Registered scorer names (``tuneloop.eval.registered_scorers()``)."""
    solver: Literal["generate"] = "generate"
    """How a completion is produced. ``generate``: one greedy model turn per sample."""
    max_new_tokens: int = Field(256, ge=1)
    """Token budget of each answer (the scorecard's ``max_new_tokens`` when not set)."""
    system_prompt: str | None = None
    """Put before each sample's input (merged into the sample's own system turn)."""
    limit: int | None = Field(None, ge=1)
    """Use only this many samples, taken round-robin over files and categories."""

    @field_validator("scorers")
    @classmethod
    def _known_scorers(cls, names: list[str]) -> list[str]:
        for name in names:
            try:
                get_scorer(name)
            except KeyError as exc:
                raise ValueError(exc.args[0]) from None
        return names


class Scorecard(BaseModel):
    """A named set of tasks plus the generation defaults they share."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    """Names the run in reports and in ``results.json``."""
    description: str = ""
    """What the scorecard measures, for people."""
    max_new_tokens: int | None = Field(None, ge=1)
    """Default ``max_new_tokens`` for tasks that do not set one."""
    system_prompt: str | None = None
    """Default ``system_prompt`` for tasks that do not set one."""
    tasks: list[TaskSpec] = Field(min_length=1)
    """The tasks, run in order."""

    def with_limit(self, limit: int | None) -> Scorecard:
        """A copy whose every task uses at most ``limit`` samples (None: unchanged)."""
        if limit is None:
            return self
        tasks = [t.model_copy(update={"limit": limit}) for t in self.tasks]
        return self.model_copy(update={"tasks": tasks})


# ----------------------------------------------------------------------- loading


def _repo_root(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        if (folder / "pyproject.toml").is_file():
            return folder
    return None


def _resolve_globs(pattern: str, bases: list[Path]) -> list[str]:
    if Path(pattern).is_absolute():
        return sorted(glob.glob(pattern))
    for base in bases:
        found = sorted(glob.glob(str(base / pattern)))
        if found:
            return found
    return []


def _field(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<scorecard>"


def load_scorecard(path: str | Path) -> Scorecard:
    """Read, validate and resolve a scorecard YAML.

    Raises :class:`ScorecardError` as ``file: field: problem``: bad YAML, an unknown
    key, an unknown scorer (listing the registered ones), a glob matching no file,
    duplicate task names.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScorecardError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ScorecardError(f"{path}: invalid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ScorecardError(f"{path}: expected a mapping with 'name' and 'tasks'")
    try:
        card = Scorecard.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        msg = first["msg"].removeprefix("Value error, ")
        raise ScorecardError(f"{path}: {_field(first['loc'])}: {msg}{more}") from None
    bases = [path.resolve().parent]
    root = _repo_root(path.resolve().parent)
    if root is not None:
        bases.append(root)
    seen: set[str] = set()
    tasks = []
    for i, task in enumerate(card.tasks):
        if task.name in seen:
            raise ScorecardError(f"{path}: tasks[{i}].name: duplicate task name {task.name!r}")
        seen.add(task.name)
        files: list[str] = []
        for j, pattern in enumerate(task.files):
            found = _resolve_globs(pattern, bases)
            if not found:
                where = ", ".join(str(b) for b in bases)
                raise ScorecardError(
                    f"{path}: tasks[{i}].files[{j}]: {pattern!r} matches no file (looked in {where})"
                )
            files += [f for f in found if f not in files]
        update: dict[str, Any] = {"files": files}
        if "max_new_tokens" not in task.model_fields_set and card.max_new_tokens is not None:
            update["max_new_tokens"] = card.max_new_tokens
        if "system_prompt" not in task.model_fields_set and card.system_prompt is not None:
            update["system_prompt"] = card.system_prompt
        tasks.append(task.model_copy(update=update))
    return card.model_copy(update={"tasks": tasks})


def load_samples(task: TaskSpec) -> list[EvalSample]:
    """The task's samples: every file in order, then ``limit`` applied round-robin.

    Round-robin over (file, category) groups, so a small limit still covers every
    file of the security pack and every category of a task, not just the first one.
    Duplicate ids raise :class:`~tuneloop.data.io.DataError` naming the line.
    """
    groups: dict[tuple[str, str], list[EvalSample]] = {}
    seen: dict[str, str] = {}
    for file in task.files:
        for row, sample in read_records(file, "eval"):
            if sample.id in seen:
                raise DataError(row.file, row.line, f"duplicate id (first at {seen[sample.id]})",
                                "id")  # fmt: skip
            seen[sample.id] = f"{row.file}:{row.line}"
            groups.setdefault((file, str(sample_category(sample))), []).append(sample)
    if task.limit is None:
        return [s for group in groups.values() for s in group]
    picked: list[EvalSample] = []
    queues = [list(g) for g in groups.values()]
    while len(picked) < task.limit and any(queues):
        for queue in queues:
            if queue and len(picked) < task.limit:
                picked.append(queue.pop(0))
    return picked


def sample_category(sample: EvalSample) -> str | None:
    """``metadata.category`` of a sample, or None."""
    category = (sample.metadata.model_extra or {}).get("category")
    return None if category is None else str(category)


# ----------------------------------------------------------------------- the solver


def _messages(task: TaskSpec, sample: EvalSample) -> list[Message]:
    messages = to_chat_messages(sample.input)
    if task.system_prompt:
        if messages and messages[0]["role"] == "system":
            merged = f"{task.system_prompt}\n\n{messages[0].get('content') or ''}".strip()
            messages[0] = {**messages[0], "content": merged}
        else:
            messages.insert(0, {"role": "system", "content": task.system_prompt})
    return messages


def _completion(messages: list[Message], output: Any, tools: list[dict] | None) -> Completion:
    parsed = parse_output(output.text, output.tool_calls, tools_offered=bool(tools))
    attempted = [{"name": c.name, "arguments": c.arguments} for c in parsed.calls]
    error = output.text if output.finish_reason == "error" else None
    return Completion(
        text=output.text,
        messages=[*messages, {"role": "assistant", "content": output.text}],
        attempted_tool_calls=attempted,
        error=error,
        metadata={
            "finish_reason": output.finish_reason,
            "completion_tokens": output.completion_tokens,
        },  # fmt: skip
    )


def solve(task: TaskSpec, model: ChatModel, samples: list[EvalSample]) -> list[Completion]:
    """The ``generate`` solver: one greedy turn per sample, in batches of :data:`BATCH_SIZE`.

    Samples offering the same tools batch together (one ``GenerationConfig`` per call);
    a tool call the model writes (Hermes ``<tool_call>`` or structured) becomes
    ``attempted_tool_calls``, while ``text`` stays exactly as generated.
    """
    results: list[Completion | None] = [None] * len(samples)
    pending: dict[str, list[int]] = {}

    def flush(key: str) -> None:
        positions = pending.pop(key)
        tools = tools_as_dicts(samples[positions[0]].tools)
        config = GenerationConfig(max_new_tokens=task.max_new_tokens, temperature=0.0,
                                  tools=tools or None, json_schema=None)  # fmt: skip
        conversations = [_messages(task, samples[i]) for i in positions]
        outputs = generate_many(model, conversations, config)
        for i, messages, output in zip(positions, conversations, outputs, strict=True):
            results[i] = _completion(messages, output, tools)

    for i, sample in enumerate(samples):
        key = json.dumps(tools_as_dicts(sample.tools), sort_keys=True)
        pending.setdefault(key, []).append(i)
        if len(pending[key]) == BATCH_SIZE:
            flush(key)
    for key in list(pending):
        flush(key)
    return [c for c in results if c is not None]
