"""The data card of a mix: ``manifest.json`` (for machines) and ``DATA_CARD.md`` (for people).

Both hold the same facts: the resolved config; per source its files with sha256,
licence and the records left after each step; the output files with sha256; token
statistics per split; and the validator's summary of the outputs. Nothing in them
depends on the clock or the machine, so the same config and seed give the same card.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml

DROP_STEPS = ("invalid_dropped", "duplicates_dropped", "cross_source_duplicates_dropped",
              "near_duplicates_dropped", "contaminated_dropped")  # fmt: skip
"""The filters, in order: ``available = read - sum(drops)``."""
SIZE_STEPS = ("available", "sampled", "upsampled", "synthetic_capped", "final", "train", "validation")
"""Then: ``sampled`` draws, and in rows ``final = upsampled - synthetic_capped = train + validation``."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def report_summary(report: Any) -> dict[str, Any]:
    """A validation :class:`~tuneloop.data.findings.Report`, cut to a card's size."""
    rows = [{**r, "locations": r["locations"][:5]} for r in report.summary()]
    return {"ok": report.ok, "records": report.records, "summary": rows}


def manifest_dict(plan: Any, outputs: dict, overlap: int, tokens: dict | None, validation: dict) -> dict[str, Any]:
    """The manifest of a :class:`~tuneloop.data.mix.MixPlan` whose outputs were written."""
    from tuneloop import __version__

    c = plan.config
    sources = [{"name": p.config.label, "path": p.config.path, "license": p.config.license,
                "synthetic": p.config.synthetic, "weight": p.config.weight, "count": p.config.count,
                "upsample": p.config.upsample, "files": [{"path": f, "sha256": h} for f, h in p.files.items()],
                "counts": p.counts} for p in plan.sources]  # fmt: skip
    return {
        "name": c.name,
        "created_by": f"tuneloop {__version__}",
        "config": c.model_dump(mode="json"),
        "sources": sources,
        "totals": {k: sum(p.counts[k] for p in plan.sources) for k in ("read", *DROP_STEPS, *SIZE_STEPS)},
        "outputs": outputs,
        "split": {"unit": "record content (all copies of a record in one split)",
                  "validation_target": plan.validation_target, "records_in_both_splits": overlap},  # fmt: skip
        "token_stats": tokens,
        "validation": validation,
        "source_validation": plan.source_validation,
    }


def write_card(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` and ``DATA_CARD.md`` into ``folder``."""
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    (folder / "manifest.json").write_text(text, encoding="utf-8")
    (folder / "DATA_CARD.md").write_text(data_card(manifest), encoding="utf-8")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[("-" if v is None else str(v)).replace("|", "\\|") for v in row] for row in rows]
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in cells)]


def data_card(manifest: dict[str, Any]) -> str:
    """``DATA_CARD.md``: the manifest as a page a reviewer reads top to bottom."""
    m, c = manifest, manifest["config"]
    out = [f"# Data card: {m['name']}", "",
           f"Built by `tuneloop data mix` ({m['created_by']}) with seed {c['seed']}. "
           "Rebuild it with the config below; the same seed gives byte-identical files.", "",
           "## Output files", ""]  # fmt: skip
    out += _table(["split", "file", "records", "sha256"],
                  [[s, o["file"], o["records"], o["sha256"]] for s, o in m["outputs"].items()])  # fmt: skip
    split = m["split"]
    out += ["", f"Split by {split['unit']}; records in both splits: **{split['records_in_both_splits']}**.", ""]
    out += ["## Sources", ""]
    out += _table(["source", "licence", "synthetic", "weight", "count", "upsample"],
                  [[s["name"], s["license"] or "unknown", "yes" if s["synthetic"] else "no", s["weight"], s["count"],
                    s["upsample"]] for s in m["sources"]])  # fmt: skip
    steps = ["read", *DROP_STEPS, *SIZE_STEPS]
    out += ["", "## Records after each step", "",
            "`available = read - drops`; `final = upsampled - synthetic_capped = train + validation` "
            "(rows, upsampled copies included).", ""]  # fmt: skip
    out += _table(["step", *(s["name"] for s in m["sources"]), "total"],
                  [[k, *(s["counts"][k] for s in m["sources"]), m["totals"][k]] for k in steps])  # fmt: skip
    out += ["", "## Source files", ""]
    out += _table(["source", "file", "sha256"], [[s["name"], f["path"], f["sha256"]] for s in m["sources"] for f in s["files"]])
    out += _token_section(m["token_stats"]) + _validation_section(m["validation"], m["source_validation"])
    out += ["", "## Config", "", "```yaml", yaml.safe_dump(c, sort_keys=False).rstrip(), "```", ""]
    return "\n".join(out)


def _token_section(tokens: dict[str, Any] | None) -> list[str]:
    if not tokens:
        return ["", "## Token statistics", "", "No tokenizer was given (set `model:` in the config)."]
    out = ["", "## Token statistics", "", f"Tokenizer: `{tokens['tokenizer']}`; max_len: {tokens['max_len']}.", ""]
    keys = ["records", "tokens", "mean", "p50", "p95", "max", "trainable_tokens", "over_max_len", "render_errors"]
    splits = [s for s in ("train", "validation") if s in tokens]
    return out + _table(["split", *keys], [[s, *(tokens[s].get(k) for k in keys)] for s in splits])


def _validation_section(report: dict[str, Any], sources: dict[str, Any] | None) -> list[str]:
    out = ["", "## Validation of the outputs", "", f"Result: **{'ok' if report['ok'] else 'ERRORS FOUND'}** "
           f"over {report['records']} lines.", ""]  # fmt: skip
    out += _table(["check", "severity", "count", "status", "first locations"],
                  [[r["check"], r["severity"], r["count"], r["status"], ", ".join(r["locations"][:3])]
                   for r in report["summary"]])  # fmt: skip
    if sources is not None:
        flagged = {r["check"]: r["count"] for r in sources["summary"] if r["count"]}
        out += ["", "Findings in the source files (before the mix filtered them): "
                + (", ".join(f"{k}: {v}" for k, v in flagged.items()) or "none") + "."]  # fmt: skip
    return out
