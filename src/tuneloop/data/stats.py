"""``tuneloop data stats``: what a JSONL file holds, in numbers and histograms.

Counts by record kind, turns per record, tool use, and length distributions per role:
in tokens when a tokenizer is given, else in whitespace-separated words (the summary
says which). Languages are counted only when ``langdetect`` is installed; nothing
heavier is pulled in for it. The HTML page embeds its PNG histograms (matplotlib, Agg
backend) as base64, so it is one self-contained file.

Percentiles are nearest-rank: p50 of ``[1, 2, 3, 4]`` is the ``ceil(0.5 * 4) = 2``-nd
smallest value, 2; p95 of it is the ``ceil(0.95 * 4) = 4``-th, 4.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneloop.data.io import atomic_path, read_records
from tuneloop.data.records import (
    RECORD_TYPES,
    Conversation,
    EvalSample,
    LabeledExample,
    Message,
    PreferencePair,
    to_chat_messages,
    tools_as_dicts,
)

_KIND = {cls: kind for kind, cls in RECORD_TYPES.items()}


def record_messages(record: Any) -> list[Message]:
    """Every message a record holds (a preference pair: prompt, chosen and rejected)."""
    if isinstance(record, Conversation):
        return list(record.messages)
    if isinstance(record, PreferencePair):
        return [*record.prompt, *record.chosen, *record.rejected]
    if isinstance(record, LabeledExample):
        return [*record.prompt, *record.completion]
    if isinstance(record, EvalSample):
        return list(record.input)
    raise TypeError(f"not a canonical record: {type(record).__name__}")


def training_messages(record: Any) -> list[Message]:
    """The conversation a model trains on: a pair's prompt + chosen, a KTO prompt + completion."""
    if isinstance(record, PreferencePair):
        return [*record.prompt, *record.chosen]
    return record_messages(record)


def message_text(message: Message) -> str:
    """Content plus tool calls as JSON: what a length of a turn is measured on."""
    calls = [c.to_json_dict() for c in message.tool_calls or []]
    return (message.content or "") + (("\n" + json.dumps(calls, ensure_ascii=False)) if calls else "")


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of non-empty ``values``."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


def distribution(values: list[float]) -> dict[str, Any]:
    """count, mean, min, p50, p95 and max (nearest rank); only ``count`` when empty."""
    if not values:
        return {"count": 0}
    return {"count": len(values), "mean": round(sum(values) / len(values), 2), "min": min(values),
            "p50": percentile(values, 50), "p95": percentile(values, 95), "max": max(values)}  # fmt: skip


def token_stats(records: Iterable[Any], tokenizer: Any = None, render: Callable | None = None,
                max_len: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Token counts of records as trained: with ``render(messages, tools, max_length)`` (the
    chat template, with loss masks) the rendered sequence and its trainable tokens; else
    ``tokenizer`` over the turns' text. Records ``render`` rejects are counted, not measured."""
    lengths, trainable, errors = [], [], 0
    for rec in records:
        messages = training_messages(rec)
        if render is not None:
            try:
                out = render(to_chat_messages(messages), tools_as_dicts(rec.tools), None)
            except ValueError:  # the template's RenderError: validation reports the reason
                errors += 1
                continue
            lengths.append(len(out.input_ids))
            trainable.append(out.num_trainable)
        else:
            text = "\n".join(message_text(m) for m in messages)
            lengths.append(len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    dist = distribution(lengths)
    stats = {"records": len(lengths) + errors, "tokens": sum(lengths),
             **{k: dist[k] for k in ("mean", "p50", "p95", "max") if k in dist}}  # fmt: skip
    if render is not None:
        stats |= {"trainable_tokens": sum(trainable), "render_errors": errors}
    if max_len is not None:
        stats["over_max_len"] = sum(1 for n in lengths if n > max_len)
    return stats


@dataclass
class DataStats:
    """Raw per-record numbers of one file; :meth:`summary` condenses them."""

    file: str
    unit: str
    """``tokens (<tokenizer>)`` or ``words (whitespace)``."""
    kinds: Counter = field(default_factory=Counter)
    turns: list[int] = field(default_factory=list)
    """Messages per record, system prompts left out."""
    lengths: dict[str, list[int]] = field(default_factory=dict)
    """Role -> length of each message of that role."""
    record_lengths: list[int] = field(default_factory=list)
    tool_calls: Counter = field(default_factory=Counter)
    """Tool name -> calls made by assistant turns."""
    records_with_tools: int = 0
    """Records that declare tools."""
    records_with_tool_calls: int = 0
    languages: Counter | None = None
    """Detected language -> records; None when no detector is installed."""

    @property
    def records(self) -> int:
        return sum(self.kinds.values())

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers: what the CLI prints and the HTML page shows."""
        return {
            "file": self.file, "records": self.records, "kinds": dict(self.kinds), "length_unit": self.unit,
            "turns": distribution(self.turns),
            "lengths_by_role": {role: distribution(v) for role, v in sorted(self.lengths.items())},
            "record_length": distribution(self.record_lengths),
            "tools": {"records_with_tools": self.records_with_tools,
                      "records_with_tool_calls": self.records_with_tool_calls,
                      "calls_per_tool": dict(self.tool_calls.most_common())},
            "languages": dict(self.languages.most_common()) if self.languages is not None else None,
        }  # fmt: skip


def _language_detector() -> Callable[[str], str] | None:
    try:
        from langdetect import DetectorFactory, detect
    except ImportError:
        return None
    DetectorFactory.seed = 0  # langdetect is random unless seeded

    def detect_language(text: str) -> str:
        try:
            return detect(text)
        except Exception:  # langdetect raises on text without letters
            return "unknown"

    return detect_language


def compute_stats(path: str | Path, tokenizer: Any = None, tokenizer_name: str | None = None) -> DataStats:
    """Read ``path`` (a bad line raises :class:`~tuneloop.data.io.DataError`) and count;
    lengths in ``tokenizer``'s tokens (shown as ``tokenizer_name``) or in words."""
    if tokenizer is not None:
        name = tokenizer_name or getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        unit, measure = f"tokens ({name})", lambda t: len(tokenizer(t, add_special_tokens=False)["input_ids"])
    else:
        unit, measure = "words (whitespace)", lambda t: len(t.split())
    detect = _language_detector()
    stats = DataStats(str(path), unit, languages=Counter() if detect else None)
    for _, rec in read_records(path):
        stats.kinds[_KIND[type(rec)]] += 1
        messages = record_messages(rec)
        stats.turns.append(sum(1 for m in messages if m.role != "system"))
        total = 0
        for m in messages:
            n = measure(message_text(m))
            stats.lengths.setdefault(m.role, []).append(n)
            total += n
            stats.tool_calls.update(c.function.name for c in m.tool_calls or [])
        stats.record_lengths.append(total)
        stats.records_with_tools += bool(rec.tools)
        stats.records_with_tool_calls += any(m.tool_calls for m in messages)
        if detect:
            text = " ".join(m.content or "" for m in messages if m.role in ("user", "assistant"))
            stats.languages[detect(text[:2000])] += 1
    return stats


def _png(draw: Callable[[Any], None], title: str) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.2), dpi=100)
    FigureCanvasAgg(fig)  # Agg without touching pyplot's global backend
    ax = fig.add_subplot()
    draw(ax)
    ax.set_title(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _charts(stats: DataStats) -> list[tuple[str, str]]:
    charts = []
    for role, values in sorted(stats.lengths.items()):
        charts.append((f"{role} turn length ({stats.unit})",
                       _png(lambda ax, v=values: ax.hist(v, bins=min(30, max(1, len(set(v))))), f"{role} turns")))  # fmt: skip
    charts.append(("record length", _png(lambda ax: ax.hist(stats.record_lengths, bins=30), f"record length, {stats.unit}")))
    charts.append(("turns per record", _png(lambda ax: ax.hist(stats.turns, bins=range(0, max(stats.turns, default=0) + 2)),
                                            "turns per record (system left out)")))  # fmt: skip
    if stats.tool_calls:
        names, counts = zip(*stats.tool_calls.most_common(20), strict=True)
        charts.append(("tool calls", _png(lambda ax: ax.barh(names[::-1], counts[::-1]), "calls per tool")))
    return charts


def stats_html(stats: DataStats) -> str:
    """A self-contained HTML page: the summary as tables and embedded PNG histograms."""
    s, esc = stats.summary(), html.escape
    rows = [("records", s["records"]), ("kinds", s["kinds"]), ("length unit", s["length_unit"]),
            ("turns per record", s["turns"]), ("record length", s["record_length"]), ("tools", s["tools"]),
            ("languages", s["languages"] if s["languages"] is not None else "not counted (no langdetect)")]  # fmt: skip
    rows += [(f"{role} length", d) for role, d in s["lengths_by_role"].items()]
    table = "".join(f"<tr><th>{esc(k)}</th><td><code>{esc(json.dumps(v) if not isinstance(v, str) else v)}</code></td></tr>"
                    for k, v in rows)  # fmt: skip
    images = "".join(f'<figure><img alt="{esc(t)}" src="data:image/png;base64,{b64}"><figcaption>{esc(t)}</figcaption></figure>'
                     for t, b64 in _charts(stats))  # fmt: skip
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>stats: {esc(s['file'])}</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}th{text-align:left;padding-right:1em}"
            "figure{display:inline-block;margin:0.5em}</style></head><body>"
            f"<h1>{esc(s['file'])}</h1><table>{table}</table>{images}</body></html>\n")  # fmt: skip


def write_stats_html(stats: DataStats, path: str | Path) -> Path:
    """Write :func:`stats_html` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(stats_html(stats), encoding="utf-8")
        Path(tmp).chmod(0o644)  # the temp file is private (0600); a report is not
    return Path(path)
