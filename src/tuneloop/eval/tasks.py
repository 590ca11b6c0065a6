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

``files`` are globs, relative to the YAML's folder or the repository root (the first
folder above the YAML holding ``pyproject.toml``); :func:`load_scorecard` resolves them
(and ``tools_root``, ``docs``, ``lm_eval.include_path``) to absolute paths, so the
scorecard a run saves names exactly what it read.

Tasks whose samples are built in Python register with :func:`task` and are named in
the YAML by ``python: NAME``; the scorecard's ``imports`` lists the modules (or ``.py``
files) that register them, and custom ``@scorer`` functions the same way::

    @task("multiply")
    def multiply() -> list[EvalSample]:
        return [EvalSample(id=f"m{i}", input=[...], target=str(i * 7)) for i in range(10)]
"""

from __future__ import annotations

import glob
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tuneloop.data.io import DataError, read_records
from tuneloop.data.records import EvalSample
from tuneloop.eval.scoring import get_scorer
from tuneloop.runtime.assistant import AssistantConfig


class ScorecardError(ValueError):
    """A scorecard YAML that cannot be used; the message names the file and field."""


SampleFactory = Callable[[], Iterable[EvalSample | dict[str, Any]]]
_TASKS: dict[str, SampleFactory] = {}


def task(name: str) -> Callable[[SampleFactory], SampleFactory]:
    """Register a Python task: a function returning its samples (``EvalSample`` or dicts).

    A scorecard uses it with ``python: NAME`` (plus ``layer``, ``scorers``, solver
    settings as for any task); the function is called when the samples are loaded.
    """

    def register(fn: SampleFactory) -> SampleFactory:
        if name in _TASKS and _TASKS[name] is not fn:
            raise ValueError(f"task {name!r} is already registered")
        _TASKS[name] = fn
        return fn

    return register


def registered_tasks() -> list[str]:
    return sorted(_TASKS)


def _import_module(entry: str, bases: list[Path], where: str) -> None:
    if entry.endswith(".py"):
        path = next((b / entry for b in bases if (b / entry).is_file()), Path(entry))
        if not path.is_file():
            raise ScorecardError(f"{where}: {entry!r} is not a file")
        name = f"tuneloop_scorecard_{path.stem}_{abs(hash(str(path.resolve())))}"
        if name in sys.modules:
            return
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        except Exception as exc:
            del sys.modules[name]
            raise ScorecardError(f"{where}: importing {path} failed: {exc!r}") from exc
        return
    try:
        importlib.import_module(entry)
    except ImportError as exc:
        raise ScorecardError(f"{where}: cannot import {entry!r}: {exc}") from None


class JudgeSpec(BaseModel):
    """Layer C: how a judge model grades the task's answers."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["pairwise", "rubric"]
    """``pairwise``: the model's answer against the baseline's, judged in both orders
    (needs ``--baseline``; skipped without one). ``rubric``: one answer graded 1..10."""
    rubric: str | None = None
    """What a good answer does (rubric mode; each sample's ``metadata.rubric`` overrides)."""
    max_new_tokens: int = Field(256, ge=1)
    """Token budget of each judge output."""


class LmEvalSpec(BaseModel):
    """Layer B: lm-evaluation-harness tasks, run through the model under evaluation."""

    model_config = ConfigDict(extra="forbid")

    tasks: list[str] = Field(min_length=1)
    """lm-eval task names (ours in ``include_path``, or lm-eval's own)."""
    include_path: str | None = None
    """Folder of local lm-eval task YAMLs (relative paths resolve like ``files``)."""
    num_fewshot: int | None = Field(None, ge=0)
    apply_chat_template: bool = True


class TaskSpec(BaseModel):
    """One task of a scorecard: a set of eval samples and the scorers that grade them."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    """Unique within the scorecard; the key in ``results.json``."""
    layer: Literal["A", "B", "C", "D", "IF", "security"]
    """Which layer of the scorecard: A (structured/tool/grounding/refusal), B (standard
    suites through lm-eval), C (judged comparisons), D (tool and agent tasks), IF
    (verifiable instructions), security (the security pack)."""
    files: list[str] = Field(default_factory=list)
    """JSONL globs of EvalSample records, relative to the YAML's folder or the repo root."""
    python: str | None = None
    """Instead of ``files``: the name of a :func:`task` registered in Python."""
    lm_eval: LmEvalSpec | None = None
    """Layer B only, instead of ``files``: the lm-eval tasks to run."""
    scorers: list[str] = Field(default_factory=list)
    """Registered scorer names (``tuneloop.eval.registered_scorers()``); optional for
    layers B (lm-eval scores) and C (the judge scores)."""
    solver: Literal["generate", "assistant"] = "generate"
    """How a completion is produced. ``generate``: one model turn per sample, batched.
    ``assistant``: the runtime's :class:`~tuneloop.runtime.assistant.Assistant` with the
    task's ``tools`` executed for real and the sample's ``schema`` enforced."""
    tools: list[str] = Field(default_factory=list)
    """Assistant solver: built-in tools it may run (calculator, clock, read_file,
    search_docs). A sample offering ``tools`` narrows this to the ones it names."""
    tools_root: str | None = None
    """Folder ``read_file`` is confined to (relative paths resolve like ``files``)."""
    docs: str | None = None
    """Folder ``search_docs`` searches (relative paths resolve like ``files``)."""
    assistant: AssistantConfig | None = None
    """Assistant solver: the loop's settings (max_steps, tool_choice, repair, ...);
    ``max_new_tokens``/``temperature``/``seed`` below override its generation config."""
    judge: JudgeSpec | None = None
    """Layer C: the judge's mode and rubric."""
    attempts: int = Field(1, ge=1)
    """Answers generated per sample (n). Above 1 the runner reports ``pass@k`` and
    ``pass^k`` for each ``k`` in ``pass_k`` from the first scorer's pass/fail."""
    pass_k: list[int] = Field(default_factory=lambda: [1])
    """The k values of ``pass@k`` / ``pass^k`` (each at most ``attempts``)."""
    temperature: float = Field(0.0, ge=0.0)
    """Sampling temperature (0: greedy). With ``attempts`` > 1 use > 0, or every
    attempt is the same answer."""
    seed: int = 0
    """Attempt i samples with seed ``seed + i``, so sampled runs are reproducible (and
    cacheable)."""
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

    @model_validator(mode="after")
    def _consistent(self) -> TaskSpec:
        sources = [bool(self.files), self.python is not None, self.lm_eval is not None]
        if sum(sources) != 1:
            raise ValueError("give exactly one of files, python or lm_eval")
        if (self.lm_eval is not None) != (self.layer == "B"):
            raise ValueError("lm_eval goes with layer B, and layer B needs lm_eval")
        if (self.judge is not None) != (self.layer == "C"):
            raise ValueError("judge goes with layer C, and layer C needs judge")
        if not self.scorers and self.layer not in ("B", "C"):
            raise ValueError("scorers: list at least one scorer")
        if self.python is not None and self.python not in _TASKS:
            known = ", ".join(sorted(_TASKS)) or "none (list modules under imports)"
            raise ValueError(f"python: unknown task {self.python!r}; registered: {known}")
        if self.solver == "generate" and (self.tools or self.assistant):
            raise ValueError("tools and assistant need solver: assistant")
        if too_big := [k for k in self.pass_k if not 1 <= k <= self.attempts]:
            raise ValueError(f"pass_k: {too_big} outside 1..attempts ({self.attempts})")
        return self


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
    imports: list[str] = Field(default_factory=list)
    """Python modules (dotted names, or ``.py`` files relative to the YAML) imported
    before the tasks are read, so their ``@task`` and ``@scorer`` functions register."""
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
        return sorted(glob.glob(pattern, recursive=True))
    for base in bases:
        found = sorted(glob.glob(str(base / pattern), recursive=True))
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
    bases = [path.resolve().parent]
    root = _repo_root(path.resolve().parent)
    if root is not None:
        bases.append(root)
    imports = data.get("imports") or []
    if not isinstance(imports, list) or not all(isinstance(m, str) for m in imports):
        raise ScorecardError(f"{path}: imports: expected a list of module names or .py files")
    for i, entry in enumerate(imports):
        _import_module(entry, bases, f"{path}: imports[{i}]")
    try:
        card = Scorecard.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (+{len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        msg = first["msg"].removeprefix("Value error, ")
        raise ScorecardError(f"{path}: {_field(first['loc'])}: {msg}{more}") from None
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
        for key in ("tools_root", "docs"):
            if (value := getattr(task, key)) is not None:
                update[key] = _resolve_dir(value, bases, f"{path}: tasks[{i}].{key}")
        if task.lm_eval is not None and task.lm_eval.include_path is not None:
            folder = _resolve_dir(task.lm_eval.include_path, bases,
                                  f"{path}: tasks[{i}].lm_eval.include_path")  # fmt: skip
            update["lm_eval"] = task.lm_eval.model_copy(update={"include_path": folder})
        if "max_new_tokens" not in task.model_fields_set and card.max_new_tokens is not None:
            update["max_new_tokens"] = card.max_new_tokens
        if "system_prompt" not in task.model_fields_set and card.system_prompt is not None:
            update["system_prompt"] = card.system_prompt
        tasks.append(task.model_copy(update=update))
    return card.model_copy(update={"tasks": tasks})


def _resolve_dir(value: str, bases: list[Path], where: str) -> str:
    if Path(value).is_absolute():
        candidates = [Path(value)]
    else:
        candidates = [b / value for b in bases]
    for candidate in candidates:
        if candidate.is_dir():
            return str(candidate.resolve())
    raise ScorecardError(f"{where}: {value!r} is not a folder (looked in "
                         f"{', '.join(str(b) for b in bases)})")  # fmt: skip


def _python_samples(task: TaskSpec) -> list[EvalSample]:
    where = f"task {task.name!r} (python: {task.python})"
    try:
        rows = list(_TASKS[str(task.python)]())
    except Exception as exc:
        raise ScorecardError(f"{where}: building the samples failed: {exc!r}") from exc
    samples = []
    for i, row in enumerate(rows):
        try:
            samples.append(row if isinstance(row, EvalSample) else EvalSample.model_validate(row))
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ScorecardError(f"{where}: sample {i}: {_field(first['loc'])}: "
                                 f"{first['msg']}") from None  # fmt: skip
    return samples


def load_samples(task: TaskSpec) -> list[EvalSample]:
    """The task's samples: every file in order, then ``limit`` applied round-robin.

    Round-robin over (file, category) groups, so a small limit still covers every
    file of the security pack and every category of a task, not just the first one.
    Duplicate ids raise :class:`~tuneloop.data.io.DataError` naming the line.
    """
    groups: dict[tuple[str, str], list[EvalSample]] = {}
    seen: dict[str, str] = {}
    if task.python is not None:
        for i, sample in enumerate(_python_samples(task)):
            if sample.id in seen:
                raise ScorecardError(f"task {task.name!r}: sample {i}: duplicate id "
                                     f"{sample.id!r} (first at {seen[sample.id]})")  # fmt: skip
            seen[sample.id] = f"sample {i}"
            groups.setdefault(("python", str(sample_category(sample))), []).append(sample)
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
