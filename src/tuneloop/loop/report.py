"""The loop report: one self-contained HTML page (plots embedded as PNG).

Sections: the gate verdict; time and peak memory per stage; what was mined; the data
cards; training curves; scorecard deltas candidate − baseline with paired 95% CIs,
grouped by layer; the gate's rules.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from tuneloop.loop.config import LoopConfig
from tuneloop.loop.runner import read_stage
from tuneloop.loop.stages import active_stages, stage_dir

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f3f3f3}.pass{color:#0a7d28;font-weight:bold}.fail{color:#b3261e;font-weight:bold}
pre{background:#f7f7f7;padding:.8em;overflow-x:auto;max-height:30em}img{max-width:100%}
.up{color:#0a7d28}.down{color:#b3261e}.plots{display:flex;flex-wrap:wrap;gap:8px}
.plots figure{width:32%;margin:0}.plots figcaption{font-size:.85em;color:#555}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _num(x: Any, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{_e(path.stem)}" src="data:image/png;base64,{data}">'


def _stages_html(cfg: LoopConfig, loop_dir: Path) -> str:
    rows = []
    for stage in active_stages(cfg):
        rec = read_stage(loop_dir / stage.folder) or {}
        if stage.name == "report" and not rec:
            rec = {"state": "running (this page)"}
        rows.append([_e(stage.folder), _e(rec.get("state", "not run")), _num(rec.get("wall_s"), 1),
                     _num(rec.get("peak_rss_mib"), 0)])  # fmt: skip
    total = sum(
        (read_stage(loop_dir / s.folder) or {}).get("wall_s") or 0 for s in active_stages(cfg)
    )
    rows.append(["<b>total</b>", "", f"<b>{total:.1f}</b>", ""])
    return _table(["stage", "state", "wall time (s)", "peak memory (MiB)"], rows)


def _mined_html(loop_dir: Path) -> str:
    data = stage_dir(loop_dir, "data")
    report = _json(data / "mined" / "report.json") or {}
    summary = _json(data / "summary.json") or {}
    runs = _json(stage_dir(loop_dir, "assistant") / "summary.json") or {}
    parts = [_table(["assistant runs", "ok", "failed", "repaired", "tool calls"],
                    [[str(runs.get(k, "–")) for k in ("runs", "ok", "failed", "repaired", "tool_calls")]])]  # fmt: skip
    rows = [[_e(k), str(v), _e(", ".join(f"{r}: {n}" for r, n in (report.get("reasons", {}).get(k) or {}).items()))]
            for k, v in (report.get("counts") or {}).items()]  # fmt: skip
    parts.append(_table(["mined output", "records", "why"], rows))
    mix = summary.get("sft_mix") or {}
    dropped = mix.get("duplicates_dropped", 0) + mix.get("near_duplicates_dropped", 0)
    parts.append(f"<p>SFT mix: {mix.get('train', '–')} training and {mix.get('validation', '–')} validation "
                 f"records ({mix.get('contaminated_dropped', 0)} dropped as overlapping an eval set, "
                 f"{dropped} as duplicates). Preference pairs for DPO (mined + reference): "
                 f"{summary.get('preference_pairs', '–')}.</p>")  # fmt: skip
    return "".join(parts)


def _cards_html(loop_dir: Path) -> str:
    data = stage_dir(loop_dir, "data")
    parts = []
    for title, path in (
        ("SFT mix", data / "sft" / "DATA_CARD.md"),
        ("mined data", data / "mined" / "DATA_CARD.md"),
    ):
        if path.is_file():
            parts.append(
                f"<details><summary>{_e(title)} data card</summary><pre>{_e(path.read_text())}</pre></details>"
            )
    return "".join(parts)


def _curves_html(cfg: LoopConfig, loop_dir: Path) -> str:
    parts = []
    for name in ("sft", "dpo"):
        if name == "dpo" and cfg.dpo is None:
            continue
        plots = stage_dir(loop_dir, name) / "run" / "plots"
        for png in sorted(plots.glob("*.png")) if plots.is_dir() else []:
            parts.append(
                f"<figure>{_img(png)}<figcaption>{_e(name)}: {_e(png.stem)}</figcaption></figure>"
            )
    return f'<div class="plots">{"".join(parts)}</div>' if parts else "<p>No training plots.</p>"


def _deltas_html(loop_dir: Path) -> str:
    results = _json(stage_dir(loop_dir, "candidate") / "results.json") or {}
    layers = {name: task.get("layer", "?") for name, task in (results.get("tasks") or {}).items()}
    rows = []
    for metric, c in sorted(
        (results.get("comparison") or {}).items(),
        key=lambda kv: (layers.get(kv[0].split("/")[0], ""), kv[0]),
    ):
        diff, low, high = c.get("difference"), c.get("low"), c.get("high")
        cls = (
            "up" if low is not None and low > 0 else "down" if high is not None and high < 0 else ""
        )
        ci = f"[{_num(low)}, {_num(high)}]" if low is not None else "–"
        rows.append([_e(layers.get(metric.split("/")[0], "?")), _e(metric), _num(c.get("baseline")),
                     _num(c.get("candidate")), f'<span class="{cls}">{"–" if diff is None else f"{diff:+.3f}"}</span>',
                     ci, _num(c.get("p_value")), str(c.get("n"))])  # fmt: skip
    return _table(
        ["layer", "metric", "baseline", "candidate", "difference", "paired 95% CI", "p", "n"], rows
    )


def _gate_html(loop_dir: Path) -> tuple[str, bool | None]:
    gate = _json(stage_dir(loop_dir, "candidate") / "gate.json")
    if gate is None:
        return "<p>The gate did not run.</p>", None
    rows = [[_e(r["rule"]), '<span class="pass">pass</span>' if r["passed"] else '<span class="fail">fail</span>',
             _e(r.get("message", ""))] for r in gate["rules"]]  # fmt: skip
    return _table(["rule", "verdict", "why"], rows), gate["passed"]


def render_loop_report(cfg: LoopConfig, loop_dir: Path) -> str:
    """The whole report page for the loop in ``loop_dir``."""
    gate_table, passed = _gate_html(loop_dir)
    verdict = {True: '<span class="pass">PASSED</span>', False: '<span class="fail">BLOCKED</span>',
               None: "not reached"}[passed]  # fmt: skip
    export = _json(stage_dir(loop_dir, "export") / "summary.json") or {}
    body = [
        f"<h1>tuneloop loop: {_e(cfg.name)}</h1>",
        f"<p>Base model <code>{_e(cfg.model)}</code> → candidate <code>{_e(export.get('model', '–'))}</code>. "
        f"Release gate ({_e(cfg.gate)}): {verdict}</p>",
        "<h2>Stages: time and peak memory</h2>", _stages_html(cfg, loop_dir),
        "<h2>What was mined</h2>", _mined_html(loop_dir),
        "<h2>Data cards</h2>", _cards_html(loop_dir),
        "<h2>Training curves</h2>", _curves_html(cfg, loop_dir),
        "<h2>Scorecard: candidate − baseline, by layer</h2>",
        "<p>Paired by sample id; the interval is a paired-bootstrap 95% CI. Green: the interval "
        "is above zero; red: below.</p>", _deltas_html(loop_dir),
        "<h2>Release gate</h2>", gate_table,
        '<p>Full scorecards: <a href="../01-baseline/report.html">baseline</a>, '
        '<a href="../07-candidate/report.html">candidate</a>.</p>',
    ]  # fmt: skip
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>tuneloop loop {_e(cfg.name)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>")  # fmt: skip
