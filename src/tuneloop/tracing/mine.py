"""Mine runtime traces for training data: corrections, repaired answers, ratings.

    traces -> per-run facts -> candidate records + annotation-queue items
      -> length control (pairs) -> decontamination (13-gram, eval sets)
      -> dedup (exact + near) -> validate_files on each output (errors dropped, "invalid")
      -> sft.jsonl, preferences.jsonl, kto.jsonl, annotation_queue.jsonl,
         report.json, DATA_CARD.md (each written atomically)

| signal in a trace | records (metadata ``reason``) |
|---|---|
| feedback ``correction`` | SFT (the final step's context + correction) and a pair (correction over the run's answer), ``correction`` |
| repair loop succeeded | pair (valid answer over the first invalid attempt) and SFT, ``repair_success`` |
| rating up / down | KTO example (label True / False), ``thumbs_up`` / ``thumbs_down``; up on an ok run also SFT of the full transcript, ``thumbs_up`` |
| failure (tool error, rejected call, fabricated tool response, run error, unrepaired validation) or thumbs down, and no correction | an annotation-queue item |

Events are read by their ``kind`` (typed runtime events or their JSON dicts alike),
so this module does not import the runtime (``runtime`` imports ``tracing``).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tuneloop.data.checks.contamination import eval_texts
from tuneloop.data.checks.item import Context, Item, record_text, turns_text
from tuneloop.data.contamination import NgramIndex
from tuneloop.data.dedup import exact_duplicate_groups, near_duplicate_pairs
from tuneloop.data.findings import Report
from tuneloop.data.io import atomic_path, write_jsonl
from tuneloop.data.mix_card import report_summary
from tuneloop.data.records import Conversation, LabeledExample, PreferencePair
from tuneloop.data.validate import ValidateConfig, validate_files

SOURCE = "tuneloop-mined"
"""``metadata.source`` of every mined record."""
OUTPUTS = {"sft": Conversation, "preferences": PreferencePair, "kto": LabeledExample}
"""Training outputs: ``<name>.jsonl`` holds records of this type."""
QUEUE = "annotation_queue"
DROP_REASONS = ("length", "contamination", "duplicate", "invalid")
_STEP_PURPOSES = ("step", "error_feedback")


class MinedTrace(BaseModel):
    """One run to mine: its events in order and the feedback people gave it."""

    trace_id: str
    events: list[Any]
    """Runtime events (typed, or their JSON dicts) of one ``Assistant.run``, in order."""
    feedback: list[Any] = Field(default_factory=list)
    """Objects or dicts with ``rating``, ``correction``, ``note``, ``tags``, ``annotator``."""
    tools: list[dict] | None = None
    """Tool specs offered in the run (OpenAI function format), copied into every record:
    events keep only tool names, and a record calling an undeclared tool fails validation."""


class MineConfig(BaseModel):
    """What to keep of the mined records."""

    model_config = ConfigDict(extra="forbid")

    max_length_ratio: float = Field(1.5, gt=0)
    """A pair whose chosen side is longer than this times its rejected side (characters)
    is length-biased: DPO on such pairs mostly teaches "write more"."""
    length_policy: Literal["drop", "flag", "keep"] = "drop"
    """Length-biased pairs are dropped, kept with ``metadata.length_biased=True``, or kept."""
    eval_sets: list[Path] = Field(default_factory=list)
    """Eval JSONL files; mined records sharing a 13-gram with them are dropped."""
    dedup: bool = True
    """Drop exact and near-duplicate records within each output (first copy kept)."""


class LengthBias(BaseModel):
    """Lengths (characters) of the written pairs' sides."""

    pairs: int = 0
    chosen_longer: int = 0
    chosen_longer_share: float = 0.0
    mean_length_ratio: float = 0.0
    """Mean of chosen/rejected length over the pairs."""
    flagged: int = 0
    """Pairs kept with ``length_biased=True`` (``length_policy="flag"``)."""


class MineReport(BaseModel):
    """What one :func:`mine` call read, wrote and dropped, and why."""

    created: str
    """UTC time of the mining, ISO 8601."""
    traces: int = 0
    traces_skipped: int = 0
    source_traces: int = 0
    """Distinct traces behind the written records and queue items."""
    counts: dict[str, int] = Field(default_factory=dict)
    """Records written per output (``sft``, ``preferences``, ``kto``, ``annotation_queue``)."""
    reasons: dict[str, dict[str, int]] = Field(default_factory=dict)
    """Per output, records written per mining reason."""
    dropped: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))
    drops: list[dict[str, Any]] = Field(default_factory=list)
    """Each dropped record: output, trace_id, reason (mining), why (drop reason), detail."""
    length_bias: LengthBias = Field(default_factory=LengthBias)
    validation: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Per output, the summary of ``validate_files`` on what was written."""
    warnings: list[str] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)


class MineError(RuntimeError):
    """An output failed validation in a way no single record explains; nothing was written."""


# ------------------------------------------------------------------ run facts


@dataclass
class _Facts:
    """What the rules need to know about one run."""

    trace_id: str
    model: str
    prompt: list[dict]
    """The input conversation (``RunStarted.messages``)."""
    answer: str | None
    ok: bool
    transcript: list[dict]
    """Messages of the last step call plus the answer (tool calls and results included)."""
    tools: list[dict] | None = None
    invalid: tuple[list[dict], str] | None = None
    """(prompt, output) of the step whose answer failed validation first, when repaired."""
    problems: list[tuple[str, str]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def _plain(obj: Any) -> dict[str, Any]:
    """An event or feedback object as a dict (pydantic, dataclass, dict or plain object)."""
    if isinstance(obj, dict):
        return obj
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return dict(vars(obj))


def _kind(event: Any) -> str | None:
    return event.get("kind") if isinstance(event, dict) else getattr(event, "kind", None)


def _assistant(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


def _facts(trace: MinedTrace, warnings: list[str]) -> _Facts | None:
    """The run's facts, or None (with a warning) when its events cannot be mined."""
    events = [_plain(e) for e in trace.events]
    started = next((e for e in events if e.get("kind") == "run_started"), None)
    if started is None:
        warnings.append(f"trace {trace.trace_id}: no run_started event; skipped")
        return None
    run_id = started.get("run_id")
    if run_id and any(e.get("run_id") not in (run_id, "", None) for e in events):
        warnings.append(f"trace {trace.trace_id}: events of several runs; only {run_id} mined")
        events = [e for e in events if e.get("run_id") in (run_id, "", None)]
    finished = next((e for e in reversed(events) if e.get("kind") == "run_finished"), None)
    ok = finished is not None and finished.get("status") == "ok"
    answer = finished.get("answer") if ok else None
    prompt = list(started.get("messages") or [])
    tools = trace.tools if trace.tools is not None else (started.get("tool_specs") or None)
    facts = _Facts(trace.trace_id, started.get("model") or "", prompt, answer, ok, [], tools)
    last_step, invalid_at = None, None
    validations = []
    for e in events:
        kind = e.get("kind")
        if kind == "model_call" and e.get("purpose") != "summary":
            facts.outputs.append(e.get("output") or "")
            if e.get("purpose") in _STEP_PURPOSES:
                last_step = e
        elif kind == "validation":
            validations.append(e)
            if not e.get("passed") and invalid_at is None:
                invalid_at = (last_step, e)
        elif kind == "tool_call" and not e.get("ok"):
            facts.problems.append(("tool_error", f"{e.get('tool')}: {e.get('error')}"))
        elif kind == "tool_call_rejected":
            tool = f" {e.get('tool')!r}" if e.get("tool") else ""
            facts.problems.append(
                ("tool_call_rejected", f"{e.get('reason')}{tool}: {e.get('error')}")
            )
        elif kind == "fabricated_tool_response":
            facts.problems.append(("fabricated_tool_response", e.get("raw") or ""))
    repaired = ok and invalid_at is not None and bool(validations[-1].get("passed"))
    if invalid_at is not None and not repaired:
        for v in validations:
            if not v.get("passed"):
                facts.problems.append(("validation_failed", "; ".join(v.get("errors") or [])))
    if finished is None:
        facts.problems.append(("run_error", "the run never finished (no run_finished event)"))
    elif not ok:
        facts.problems.append(
            ("run_error", f"{finished.get('error_type')}: {finished.get('error')}")
        )
    step_messages = (last_step or {}).get("messages") or prompt
    if answer is not None:
        facts.transcript = [*step_messages, _assistant(answer)]
    if repaired and invalid_at[0] is not None and invalid_at[1].get("attempt") == 0:
        facts.invalid = (invalid_at[0].get("messages") or prompt, invalid_at[0].get("output") or "")
    return facts


def _feedback(items: list[Any]) -> list[dict[str, Any]]:
    """Feedback as dicts, oldest first; of each annotator's ratings only the latest counts
    (a changed mind is not two votes)."""
    rows = sorted((_plain(x) for x in items), key=lambda fb: fb.get("created") or 0.0)
    latest = {fb.get("annotator"): id(fb) for fb in rows if fb.get("rating") in ("up", "down")}
    return [
        {
            "rating": fb.get("rating") if latest.get(fb.get("annotator")) == id(fb) else None,
            "correction": fb.get("correction"),
            "tags": list(fb.get("tags") or []),
            "annotator": fb.get("annotator"),
        }
        for fb in rows
    ]


# ------------------------------------------------------------------ rules


@dataclass
class _Candidate:
    output: str
    trace_id: str
    reason: str
    record: Any


def _mask_rejected(messages: list[dict]) -> list[dict]:
    """Assistant turns the runtime rejected (answered by ``[runtime]`` feedback) get weight 0."""
    out = [dict(m) for m in messages]
    for i, m in enumerate(out[:-1]):
        nxt = out[i + 1]
        if (
            m.get("role") == "assistant"
            and nxt.get("role") == "user"
            and str(nxt.get("content") or "").startswith("[runtime]")
        ):
            m["weight"] = 0
    return out


def _completion(f: _Facts) -> tuple[list[dict], list[dict]]:
    """KTO (prompt, completion): the input and every turn the run added, when those are
    only assistant/tool turns; otherwise all the model saw, and its answer."""
    n = len(f.prompt)
    added = f.transcript[n:]
    if f.transcript[:n] == f.prompt and all(m.get("role") in ("assistant", "tool") for m in added):
        return f.prompt, added
    return f.transcript[:-1], f.transcript[-1:]


def _candidates(f: _Facts, feedback: list[dict]) -> tuple[list[_Candidate], dict | None]:
    """The records a run yields, and its annotation-queue item (or None)."""
    out: list[_Candidate] = []

    def add(output: str, reason: str, fb: dict | None = None, **fields: Any) -> None:
        meta = {"source": SOURCE, "trace_id": f.trace_id, "reason": reason, "model": f.model}
        if fb is not None:
            meta.update(annotator=fb["annotator"], tags=fb["tags"])
        data = {**fields, "tools": f.tools, "metadata": meta}
        out.append(_Candidate(output, f.trace_id, reason, data))

    corrections = [fb for fb in feedback if (fb["correction"] or "").strip()]
    # A correction replaces the final answer, in the context the model answered in: the
    # last step's messages (tool calls and their real results included) when the run
    # produced an answer, else the input conversation.
    context = f.transcript[:-1] if f.transcript else f.prompt
    for fb in corrections:
        fixed = _assistant(fb["correction"])
        add("sft", "correction", fb, messages=_mask_rejected([*context, fixed]))
        if f.answer is not None:
            rejected = [_assistant(f.answer)]
            add("preferences", "correction", fb, prompt=context, chosen=[fixed], rejected=rejected)
    if f.invalid is not None and f.answer is not None:
        prompt, first = f.invalid
        chosen = [_assistant(f.answer)]
        add("preferences", "repair_success", prompt=prompt, chosen=chosen,
            rejected=[_assistant(first)])  # fmt: skip
        add("sft", "repair_success", messages=[*prompt, *chosen])
    for fb in feedback:
        if fb["rating"] not in ("up", "down") or f.answer is None:
            continue
        up = fb["rating"] == "up"
        prompt, completion = _completion(f)
        reason = "thumbs_up" if up else "thumbs_down"
        add("kto", reason, fb, prompt=prompt, completion=completion, label=up)
        if up:
            add("sft", reason, fb, messages=_mask_rejected(f.transcript))
    problems = list(f.problems)
    if any(fb["rating"] == "down" for fb in feedback):
        problems.append(("thumbs_down", "rated down"))
    item = None
    if problems and not corrections:
        item = {
            "trace_id": f.trace_id, "model": f.model,
            "reasons": sorted({r for r, _ in problems}),
            "prompt": f.prompt, "outputs": f.outputs, "answer": f.answer,
            "errors": [text for r, text in problems if r != "thumbs_down"],
        }  # fmt: skip
    return out, item


# ------------------------------------------------------------------ filters


def _side_len(messages: list) -> int:
    return len(turns_text(messages, roles=False).strip())


def _item(rec: Any) -> Item:
    return Item("", 0, "", rec)


class _Ledger:
    """Drops, counted by reason and listed for the report."""

    def __init__(self, report: MineReport):
        self.report = report

    def drop(self, c: _Candidate, why: str, detail: str) -> None:
        self.report.dropped[why] += 1
        self.report.drops.append({"output": c.output, "trace_id": c.trace_id,
                                  "reason": c.reason, "why": why, "detail": detail})  # fmt: skip


def _build(cands: list[_Candidate], ledger: _Ledger) -> list[_Candidate]:
    """Candidates as typed records; ones that do not parse are dropped as ``invalid``."""
    kept = []
    for c in cands:
        try:
            c.record = OUTPUTS[c.output].model_validate(c.record)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            ledger.drop(c, "invalid", f"{where}: {first['msg']}")
            continue
        kept.append(c)
    return kept


def _length_control(cands: list[_Candidate], config: MineConfig, ledger: _Ledger) -> list:
    kept = []
    for c in cands:
        if c.output == "preferences":
            chosen, rejected = _side_len(c.record.chosen), _side_len(c.record.rejected)
            if chosen > config.max_length_ratio * rejected and config.length_policy != "keep":
                if config.length_policy == "drop":
                    detail = (
                        f"chosen {chosen} chars > {config.max_length_ratio:g} x rejected {rejected}"
                    )
                    ledger.drop(c, "length", detail)
                    continue
                c.record.metadata.length_biased = True
                ledger.report.length_bias.flagged += 1
        kept.append(c)
    return kept


def _decontaminate(cands: list[_Candidate], eval_sets: list[Path], ledger: _Ledger) -> list:
    """Drop records sharing a 13-gram with an eval set (the validator's rule and texts)."""
    if not eval_sets:
        return cands
    index, ctx = NgramIndex(13), Context(Report())
    for path in eval_sets:
        for text in eval_texts(path, ctx):
            index.add(str(path), text)
    kept = []
    for c in cands:
        hits = {
            k: v for k, v in index.overlaps(record_text(_item(c.record), True, False)).items() if v
        }
        if hits:
            ledger.drop(c, "contamination", "shares 13-grams with " + ", ".join(sorted(hits)))
        else:
            kept.append(c)
    return kept


def _dedup(cands: list[_Candidate], ledger: _Ledger) -> list[_Candidate]:
    """Within each output: later exact copies, then later near-copies, are dropped."""
    drop: dict[int, str] = {}
    for output in OUTPUTS:
        keys = [i for i, c in enumerate(cands) if c.output == output]
        texts = [(str(i), record_text(_item(cands[i].record))) for i in keys]
        for first, *rest in exact_duplicate_groups(texts):
            drop.update({int(k): f"exact duplicate of {cands[int(first)].trace_id}" for k in rest})
        left = [(str(i), record_text(_item(cands[i].record), skip_system=True))
                for i in keys if i not in drop]  # fmt: skip
        for a, b, score in near_duplicate_pairs(left):
            if int(a) not in drop:
                drop.setdefault(int(b), f"near duplicate ({score:.2f}) of {cands[int(a)].trace_id}")
    for i, detail in sorted(drop.items()):
        ledger.drop(cands[i], "duplicate", detail)
    return [c for i, c in enumerate(cands) if i not in drop]


def _validated(output: str, cands: list, tmp: Path, config: MineConfig, ledger: _Ledger) -> list:
    """Records of ``output`` that pass ``validate_files``; records with an error finding are
    dropped as ``invalid`` and the rest validated again, so the file written is clean."""
    severities = {} if config.dedup else {"exact_duplicate": "warning"}
    path = tmp / f"{output}.jsonl"
    for _ in range(3):
        write_jsonl(path, [c.record for c in cands])
        report = validate_files([path], ValidateConfig(severities=severities))
        errors = [f for f in report.findings if f.severity == "error"]
        if not errors:
            summary = report_summary(report)
            for row in summary["summary"]:  # point at the file written, not the staging copy
                row["locations"] = [x.replace(str(path), path.name) for x in row["locations"]]
            ledger.report.validation[output] = summary
            return cands
        if any(f.line is None for f in errors):
            raise MineError(f"{output}.jsonl: " + "; ".join(f.message for f in errors))
        bad: dict[int, str] = {}
        for f in errors:
            bad.setdefault(f.line - 1, f"{f.check}: {f.field + ': ' if f.field else ''}{f.message}")
        for i, detail in sorted(bad.items()):
            ledger.drop(cands[i], "invalid", detail)
        cands = [c for i, c in enumerate(cands) if i not in bad]
    raise MineError(f"{output}.jsonl: still failing validation after dropping invalid records")


# ------------------------------------------------------------------ mine


def _length_stats(pairs: list[_Candidate], stats: LengthBias) -> None:
    ratios = []
    for c in pairs:
        chosen, rejected = _side_len(c.record.chosen), _side_len(c.record.rejected)
        stats.chosen_longer += chosen > rejected
        ratios.append(chosen / rejected if rejected else float(chosen > 0))
    stats.pairs = len(pairs)
    stats.chosen_longer_share = round(stats.chosen_longer / len(pairs), 4) if pairs else 0.0
    stats.mean_length_ratio = round(sum(ratios) / len(ratios), 4) if ratios else 0.0


def mine(
    traces: Iterable[MinedTrace], out_dir: Path, config: MineConfig | None = None
) -> MineReport:
    """Mine ``traces`` into training records and an annotation queue under ``out_dir``.

    Writes ``sft.jsonl``, ``preferences.jsonl``, ``kto.jsonl``, ``annotation_queue.jsonl``,
    ``report.json`` and ``DATA_CARD.md`` (every file atomically; the training files pass
    ``validate_files``). A trace that cannot be mined is skipped with a warning.
    Raises :class:`MineError`, writing nothing, when an output fails validation as a whole.
    """
    config = config or MineConfig()
    out_dir = Path(out_dir)
    report = MineReport(
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config=config.model_dump(mode="json"),
    )
    ledger = _Ledger(report)
    cands: list[_Candidate] = []
    queue: list[dict] = []
    for trace in traces:
        report.traces += 1
        facts = _facts(trace, report.warnings)
        if facts is None:
            report.traces_skipped += 1
            continue
        got, item = _candidates(facts, _feedback(trace.feedback))
        if got and facts.tools is None and any(_kind(e) == "tool_call" for e in trace.events):
            report.warnings.append(
                f"trace {trace.trace_id}: tools ran but no tool specs were recorded "
                "(RunStarted.tool_specs or MinedTrace.tools); its records with tool calls "
                "fail validation"
            )
        cands += got
        if item is not None:
            queue.append(item)
    cands = _length_control(_build(cands, ledger), config, ledger)
    cands = _decontaminate(cands, list(config.eval_sets), ledger)
    if config.dedup:
        cands = _dedup(cands, ledger)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[_Candidate]] = {}
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".mine-") as tmp:
        for output in OUTPUTS:
            mine_out = [c for c in cands if c.output == output]
            written[output] = _validated(output, mine_out, Path(tmp), config, ledger)
    for output, kept in written.items():
        write_jsonl(out_dir / f"{output}.jsonl", [c.record for c in kept])
        report.counts[output] = len(kept)
        report.reasons[output] = dict(Counter(c.reason for c in kept))
    write_jsonl(out_dir / f"{QUEUE}.jsonl", queue)
    report.counts[QUEUE] = len(queue)
    report.reasons[QUEUE] = dict(Counter(r for item in queue for r in item["reasons"]))
    _length_stats(written["preferences"], report.length_bias)
    report.source_traces = len(
        {c.trace_id for kept in written.values() for c in kept} | {i["trace_id"] for i in queue}
    )
    _write_text(out_dir / "report.json", report.model_dump_json(indent=2) + "\n")
    _write_text(out_dir / "DATA_CARD.md", data_card(report))
    return report


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(v).replace("|", "\\|") for v in r) + " |" for r in rows]


def data_card(report: MineReport) -> str:
    """``DATA_CARD.md`` of a mining run: what was written, from how many traces, what was
    dropped and why, and how biased the pairs are towards longer chosen answers."""
    r, lb = report, report.length_bias
    out = ["# Data card: mined traces", "",
           f"Mined by `tuneloop mine` on {r.created} from {r.traces} trace(s) "
           f"({r.traces_skipped} skipped); {r.source_traces} trace(s) contributed records. "
           f"Every record carries `metadata.source = {SOURCE}`, its `trace_id` and `reason`.",
           "", "## Outputs", ""]  # fmt: skip
    out += _table(["file", "records", "by reason"],
                  [[f"{name}.jsonl", n, ", ".join(f"{k}: {v}" for k, v in r.reasons[name].items())
                    or "-"] for name, n in r.counts.items()])  # fmt: skip
    out += ["", "## Dropped", ""]
    out += _table(["reason", "records"], [[k, v] for k, v in r.dropped.items()])
    out += ["", "## Length bias of the pairs", "",
            f"{lb.pairs} pair(s); chosen is the longer side in {lb.chosen_longer} "
            f"({lb.chosen_longer_share:.0%}); mean chosen/rejected length ratio "
            f"{lb.mean_length_ratio:.2f}; policy `{r.config['length_policy']}` above "
            f"{r.config['max_length_ratio']:g}x ({lb.flagged} flagged)."]  # fmt: skip
    out += ["", "## Validation", ""]
    out += _table(["file", "result", "warnings"],
                  [[f"{name}.jsonl", "ok" if v["ok"] else "ERRORS",
                    ", ".join(f"{s['check']}: {s['count']}" for s in v["summary"] if s["count"])
                    or "-"] for name, v in r.validation.items()])  # fmt: skip
    if r.warnings:
        out += ["", "## Warnings", "", *(f"- {w}" for w in r.warnings)]
    out += ["", "## Config", "", "```json", json.dumps(r.config, indent=2), "```", ""]
    return "\n".join(out)
