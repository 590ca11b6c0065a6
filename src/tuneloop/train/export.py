"""Model cards: a ``README.md`` that says where a model folder came from.

Everything in the card is read from files other stages wrote: the run's
``config.yaml``, ``manifest.json`` and ``results.json``, the merge's ``merge.json``,
a data card (the ``manifest.json`` of ``tuneloop data mix``) and an eval
``results.json``. Missing pieces are left out, never invented.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from tuneloop.train.runs import sha256_file

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SKIP_HPARAMS = {"name", "model", "output_dir", "train_files", "validation_files", "eval_sets", "report_to"}
Scalar = (str, int, float, bool, type(None))


def write_model_card(model_dir, run_dir=None, data_card=None, eval_results=None) -> Path:
    """Write ``model_dir/README.md``; returns its path.

    ``run_dir`` defaults to the ``source_run`` recorded in ``model_dir/merge.json``
    when that folder still exists. ``data_card`` and ``eval_results`` are JSON files.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model folder")
    merge = _read_json(model_dir / "merge.json")
    if run_dir is None and merge.get("source_run") and Path(merge["source_run"]).is_dir():
        run_dir = Path(merge["source_run"])
    run = Path(run_dir).resolve() if run_dir else None
    config = _read_yaml(run / "config.yaml") if run else {}
    manifest = _read_json(run / "manifest.json") if run else {}
    results = _read_json(run / "results.json") if run else {}
    base = config.get("model") or merge.get("base_model")
    method = config.get("method") or merge.get("method")
    recipe = manifest.get("recipe")

    title = config.get("name") or merge.get("run_name") or model_dir.resolve().name
    parts = [_front_matter(base, recipe, method), f"# {title}\n"]
    if base:
        parts.append(f"Fine-tuned with [tuneloop](https://pypi.org/project/tuneloop/) from `{base}`"
                     f" ({', '.join(x for x in (recipe, method) if x)}).\n")  # fmt: skip
    parts += [
        _section("Base model", _base_lines(base, manifest, merge)),
        _section("Training", _table(("hyper-parameter", "value"),
                                    [(k, v) for k, v in config.items() if k not in _SKIP_HPARAMS])),  # fmt: skip
        _section("Training data", _data_lines(manifest)),
        _section("Training metrics", _metrics_lines(results)),
        _section("Merge parity check", _parity_lines(merge)),
        _section("Data card", _data_card_lines(Path(data_card)) if data_card else []),
        _section("Evaluation", _eval_lines(Path(eval_results)) if eval_results else []),
        _section("Reproducibility", _repro_lines(run, manifest)),
    ]
    path = model_dir / "README.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(p for p in parts if p).rstrip() + "\n")
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------- sections


def _front_matter(base, recipe, method) -> str:
    meta: dict[str, Any] = {"library_name": "transformers",
                            "tags": ["tuneloop", *(x for x in (recipe, method) if x)]}  # fmt: skip
    if base and _HUB_ID.match(base) and not Path(base).exists():
        meta["base_model"] = base  # only hub ids mean something on the Hub
    return "---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n"


def _base_lines(base, manifest: dict, merge: dict | None) -> list[str]:
    lines = [f"- reference: `{base}`"] if base else []
    facts = manifest.get("model_facts") or {}
    for key in ("total_parameters", "trainable_parameters", "trainable_percent", "dtype"):
        if key in facts:
            lines.append(f"- {key.replace('_', ' ')}: {facts[key]}")
    if merge and merge.get("adapter_chain"):
        lines.append("- adapters merged, in order: " + ", ".join(f"`{a}`" for a in merge["adapter_chain"]))
    return lines


def _data_lines(manifest: dict) -> list[str]:
    files = manifest.get("data_files") or []
    lines = _table(("file", "sha256", "bytes"), [(f.get("path"), f.get("sha256"), f.get("bytes")) for f in files])
    splits = [(k, v) for k, v in (manifest.get("data") or {}).items() if isinstance(v, dict)]
    if lines and splits:
        lines.append("")
    for split, summary in splits:
        if isinstance(summary, dict):
            lines.append(f"- {split}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    return lines


def _metrics_lines(results: dict) -> list[str]:
    rows = [(f"{group}/{k}", v) for group in ("train", "eval")
            for k, v in (results.get(group) or {}).items() if isinstance(v, Scalar)]  # fmt: skip
    lines = _table(("metric", "value"), rows)
    if results.get("anomalies"):
        lines += [""] if lines else []
        lines.append(f"- training anomalies flagged: {len(results['anomalies'])} (see the run's results.json)")
    return lines


def _parity_lines(merge: dict | None) -> list[str]:
    if not merge:
        return []
    p = merge.get("parity") or {}
    lines = [f"Checked on {p.get('prompts')} fixed chat prompts ({p.get('tokens')} tokens, one with tools),"
             f" tolerance {p.get('atol')} (max abs logit difference):", ""]  # fmt: skip
    lines += _table(("check", "value"), [
        ("merged vs base+adapter, max abs diff", p.get("adapter_max_abs_diff")),
        ("adapter effect (merged vs base), max abs diff", p.get("adapter_effect_max_abs_diff")),
        ("reloaded folder vs in-memory model, max abs diff", p.get("reload_max_abs_diff")),
        ("chat template identical to training tokenizer", p.get("chat_template_identical")),
        ("stop tokens", ", ".join(f"`{t}`" for t in p.get("stop_tokens") or [])),
    ])  # fmt: skip
    return lines


def _data_card_lines(path: Path) -> list[str]:
    card = _read_json(path, required=True)
    lines = [f"Data card: `{path}`" + (f" (sha256 `{sha256_file(path)}`)" if path.is_file() else ""), ""]
    if not isinstance(card, dict):
        return lines
    lines += [f"- {k}: {v}" for k, v in card.items() if isinstance(v, Scalar)]
    for key, value in card.items():  # lists of records (sources, outputs...) become tables
        if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            cols = [c for c in value[0] if all(isinstance(x.get(c), Scalar) for x in value)][:8]
            lines += ["", f"**{key}**", "", *_table(cols, [[x.get(c) for c in cols] for x in value])]
        elif isinstance(value, dict) and value and all(isinstance(v, Scalar) for v in value.values()):
            lines += ["", f"**{key}**", "", *_table((key, "value"), list(value.items()))]
    return lines


def _eval_lines(path: Path) -> list[str]:
    results = _read_json(path, required=True)
    if isinstance(results, dict) and results and all(isinstance(v, Scalar) for v in results.values()):
        return [f"From `{path}`:", "", *_table(("metric", "value"), list(results.items()))]
    return [f"Evaluation results: [{path.name}]({path})"]


def _repro_lines(run: Path | None, manifest: dict) -> list[str]:
    if not manifest:
        return []
    git = manifest.get("git") or {}
    lines = [f"- run folder: `{run}`", f"- created: {manifest.get('created')}",
             f"- git commit: `{git.get('commit')}`" + (" (uncommitted changes)" if git.get("dirty") else ""),
             f"- seed: {manifest.get('seed')}"]  # fmt: skip
    if manifest.get("command"):
        lines.append(f"- command: `{' '.join(map(str, manifest['command']))}`")
    hw = manifest.get("hardware") or {}
    if hw:
        lines.append("- hardware: " + ", ".join(f"{k} {v}" for k, v in hw.items() if v not in (None, [])))
    pkgs = manifest.get("packages") or {}
    if pkgs:
        lines += ["", *_table(("package", "version"), list(pkgs.items()))]
    return lines


# ---------------------------------------------------------------------- helpers


def _section(title: str, lines: list[str]) -> str:
    return f"## {title}\n\n" + "\n".join(lines) + "\n" if lines else ""


def _cell(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:.6g}"
    elif not isinstance(value, str):
        value = json.dumps(value, default=str)
    return value.replace("|", "\\|").replace("\n", " ")


def _table(header, rows) -> list[str]:
    rows = list(rows)
    if not rows or not header:
        return []
    out = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]


def _read_json(path: Path, required: bool = False):
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        if required:
            raise
        return {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None


def _read_yaml(path: Path) -> dict:
    try:
        return yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        return {}
