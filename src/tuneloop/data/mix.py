"""``tuneloop data mix``: sources -> train/validation JSONL plus a data card, atomically.

    config = load_mix_config("configs/data/demo.yaml", ["seed=1"])
    plan = plan_mix(config)                         # reads and filters; writes nothing
    manifest = build_mix(config, tokenizer, render, plan=plan)

Each step is counted per source in ``manifest.json`` and ``DATA_CARD.md``:

1. **read** every file of a source; a record failing the schema stops the mix with
   ``file:line`` unless ``drop_invalid`` (bad JSON always stops it: the file is broken);
2. **dedup**: exact copies within a source; then, if asked, exact copies across
   sources (the first source listed keeps its copy) and near-duplicates (MinHash);
3. **decontaminate**: drop records sharing an n-gram with an eval set;
4. **sample**: ``count`` records, or a ``weight`` share of the weighted part; without
   replacement while a source has records left, in whole passes beyond that;
5. **upsample**: each drawn record repeated ``upsample`` times (a fraction: a seeded
   subset of the draws gets one copy more);
6. **cap** the synthetic share at ``max_synthetic_fraction`` (synthetic rows dropped);
7. **split** by record content after a seeded shuffle: every copy of a record lands in
   the same split, so nothing is both trained on and validated on (checked, not assumed).

Everything is built in a hidden folder beside ``output_dir`` and renamed into place at
the end, so an existing output is replaced only by a complete one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from tuneloop.data.dedup import exact_duplicate_groups, near_duplicate_pairs, normalize_text
from tuneloop.data.io import DataError, parse_record, read_jsonl, write_jsonl
from tuneloop.data.mix_card import (
    DROP_STEPS,
    manifest_dict,
    report_summary,
    sha256_file,
    write_card,
)
from tuneloop.data.mix_config import (
    DedupConfig,
    MixConfig,
    MixConfigError,
    SourceConfig,
    resolve_files,
)
from tuneloop.data.stats import record_messages, token_stats
from tuneloop.data.validate import ValidateConfig, validate_files


@dataclass
class _Item:
    file: str
    line: int
    record: Any
    canon: str = ""
    """Canonical JSON of the content (metadata and id left out), what exact dedup compares."""
    dropped: str | None = None

    @cached_property
    def key(self) -> str:
        """The split unit: records equal after dedup's normalization share a key."""
        return hashlib.sha256(normalize_text(self.canon).encode()).hexdigest()


@dataclass
class SourcePlan:
    """One source after the filters, with its planned draws and rows and its step counts."""

    index: int
    config: SourceConfig
    files: dict[str, str]
    """Path -> sha256 of each file read."""
    items: list[_Item]
    counts: dict[str, int] = field(default_factory=dict)
    base: int = 0
    """Records drawn (before upsampling)."""
    rows: int = 0
    """Rows in the output (after upsampling and the synthetic cap)."""

    @property
    def kept(self) -> list[_Item]:
        return [it for it in self.items if it.dropped is None]


@dataclass
class MixPlan:
    """What a mix will write: per-source plans, the validation size and the source report."""

    config: MixConfig
    sources: list[SourcePlan]
    eval_files: list[Path]
    source_validation: dict[str, Any] | None = None

    @property
    def total(self) -> int:
        return sum(p.rows for p in self.sources)

    @property
    def validation_target(self) -> int:
        c = self.config
        if c.validation_count is not None:
            return c.validation_count
        return math.floor(c.validation_fraction * self.total + 0.5)

    def table(self) -> list[dict[str, Any]]:
        """One row per source: name, then each step's count."""
        return [{"source": p.config.label, **p.counts} for p in self.sources]


def plan_mix(config: MixConfig) -> MixPlan:
    """Read, validate, dedup and decontaminate the sources and size each one; writes nothing."""
    source_files, eval_files = resolve_files(config)
    plans = [_read_source(i, s, files, config.drop_invalid)
             for i, (s, files) in enumerate(zip(config.sources, source_files, strict=True))]  # fmt: skip
    kinds = {(p.config.label, type(it.record).__name__) for p in plans for it in p.kept}
    if len({k for _, k in kinds}) > 1:
        found = ", ".join(f"{k} in {s}" for s, k in sorted(kinds))
        raise MixConfigError(f"sources: a mix holds one record type, found {found}")
    _dedup(plans, config.dedup)
    plan = MixPlan(config, plans, eval_files)
    plan.source_validation = _decontaminate(plan)
    for p in plans:
        drops = Counter(it.dropped for it in p.items)
        p.counts = {"read": len(p.items), **{s: drops.get(s, 0) for s in DROP_STEPS}}
        p.counts["available"] = len(p.kept)
    _allocate(plans, config)
    if plan.total == 0:
        raise MixConfigError("sources: the mix is empty")
    if plan.validation_target >= plan.total:
        field = "validation_count" if config.validation_count is not None else "validation_fraction"
        n, total = plan.validation_target, plan.total
        raise MixConfigError(f"{field}: {n} validation rows leave none of {total} to train on")
    return plan


def _read_source(index: int, src: SourceConfig, files: list[Path], drop_invalid: bool) -> SourcePlan:
    items = []
    for path in files:
        for row in read_jsonl(path):
            try:
                rec = parse_record(row)
            except DataError as exc:
                if not drop_invalid:
                    hint = f"{exc.message} (set drop_invalid: true to drop such records)"
                    raise DataError(exc.file, exc.line, hint, exc.field) from None
                items.append(_Item(row.file, row.line, None, dropped="invalid_dropped"))
                continue
            rec.metadata.source = rec.metadata.source or src.label
            rec.metadata.license = rec.metadata.license or src.license
            content = {k: v for k, v in rec.to_json_dict().items() if k not in ("metadata", "id")}
            canon = json.dumps(content, sort_keys=True, ensure_ascii=False)
            items.append(_Item(row.file, row.line, rec, canon))
    return SourcePlan(index, src, {str(f): sha256_file(f) for f in files}, items)


def _dedup(plans: list[SourcePlan], cfg: DedupConfig) -> None:
    pools = [p for p in plans if p.config.dedup]
    for scope in [pools] if cfg.cross_source else [[p] for p in pools]:
        live = _live(scope)
        for group in exact_duplicate_groups([(k, it.canon) for k, (_, it) in live.items()]):
            first, *rest = sorted(group, key=_order)
            for k in rest:
                p, it = live[k]
                same = p is live[first][0]
                it.dropped = "duplicates_dropped" if same else "cross_source_duplicates_dropped"
    if cfg.near:
        live = _live(pools)
        texts = [(k, _turns_text(it.record)) for k, (_, it) in live.items()]
        found = near_duplicate_pairs(texts, threshold=cfg.threshold)
        for a, b in sorted(tuple(sorted((a, b), key=_order)) for a, b, _ in found):
            if live[a][1].dropped is None and live[b][1].dropped is None:
                live[b][1].dropped = "near_duplicates_dropped"


def _live(plans: list[SourcePlan]) -> dict[str, tuple[SourcePlan, _Item]]:
    """Records not dropped yet, by ``"source:index"`` id."""
    return {f"{p.index}:{i}": (p, it)
            for p in plans for i, it in enumerate(p.items) if it.dropped is None}  # fmt: skip


def _order(key: str) -> tuple[int, ...]:
    return tuple(int(x) for x in key.split(":"))


def _turns_text(record: Any) -> str:
    """Turn text without system prompts: a prompt shared by a whole source is not similarity."""
    lines = []
    for m in record_messages(record):
        if m.role != "system":
            calls = json.dumps([c.to_json_dict() for c in m.tool_calls]) if m.tool_calls else ""
            lines.append(f"{m.role}: {m.content or ''}{calls}")
    return "\n".join(lines)


def _decontaminate(plan: MixPlan) -> dict[str, Any] | None:
    """Validate the source files with the eval sets; drop records the contamination check flags."""
    if not plan.eval_files:
        return None
    files = [Path(f) for p in plan.sources for f in p.files]
    c = plan.config
    cfg = ValidateConfig(eval_sets=list(plan.eval_files), near_dup_threshold=c.dedup.threshold,
                         ngram_n=c.ngram_n)  # fmt: skip
    report = validate_files(files, cfg)
    hits = {(os.path.abspath(f.file), f.line) for f in report.findings if f.check == "contamination"}
    for p in plan.sources:
        for it in p.kept:
            if (os.path.abspath(it.file), it.line) in hits:
                it.dropped = "contaminated_dropped"
    return report_summary(report)


def _largest_remainder(total: int, weights: list[float]) -> list[int]:
    """Integers proportional to ``weights`` summing to ``total`` (ties: earlier sources first)."""
    s = sum(weights)
    if total <= 0 or s <= 0:
        return [0] * len(weights)
    ideal = [total * w / s for w in weights]
    out = [math.floor(x) for x in ideal]
    for i in sorted(range(len(ideal)), key=lambda i: (out[i] - ideal[i], i))[: total - sum(out)]:
        out[i] += 1
    return out


def _allocate(plans: list[SourcePlan], config: MixConfig) -> None:
    """Set the draws (``base``) and rows of every source, then apply the synthetic cap."""
    for p in plans:
        if p.counts["available"] == 0 and (p.config.weight is not None or p.config.count):
            where = f"sources.{p.index} ({p.config.label})"
            raise MixConfigError(f"{where}: no records left after the filters")
        if p.config.count is not None:
            p.base, p.rows = p.config.count, _times(p.config.count, p.config.upsample)
    weighted = [p for p in plans if p.config.weight is not None]
    weights = [p.config.weight for p in weighted]
    if weighted and config.total is None:
        # The largest weighted part in which no source has to draw a record twice.
        room = [p.counts["available"] * sum(weights) / w for p, w in zip(weighted, weights, strict=True)]
        size = math.floor(min(room) + 1e-9)
        for p, base in zip(weighted, _largest_remainder(size, weights), strict=True):
            p.base, p.rows = base, _times(base, p.config.upsample)
    elif weighted:
        counted = sum(p.rows for p in plans if p.config.count is not None)
        if counted > config.total:
            raise MixConfigError(f"total: {config.total} is below the {counted} rows of the count sources")
        upsampled = [w * p.config.upsample for p, w in zip(weighted, weights, strict=True)]
        for p, rows in zip(weighted, _largest_remainder(config.total - counted, upsampled), strict=True):
            p.base, p.rows = min(rows, math.ceil(rows / p.config.upsample - 1e-9)), rows
    for p in plans:
        p.counts |= {"sampled": p.base, "upsampled": p.rows}
    synthetic = [p for p in plans if p.config.synthetic]
    s, f = sum(p.rows for p in synthetic), config.max_synthetic_fraction
    # s' / (n + s') <= f  <=>  s' <= f * n / (1 - f)
    allowed = s if f >= 1 else min(s, math.floor(f * (sum(p.rows for p in plans) - s) / (1 - f) + 1e-9))
    shares = _largest_remainder(allowed, [p.rows for p in synthetic])
    capped = dict(zip(map(id, synthetic), shares, strict=True))
    for p in plans:
        rows = capped[id(p)] if p.config.synthetic and allowed < s else p.rows
        p.counts |= {"synthetic_capped": p.rows - rows, "final": rows}
        p.base, p.rows = min(p.base, rows), rows


def _times(n: int, factor: float) -> int:
    return math.floor(n * factor + 0.5)


def _draw(p: SourcePlan, seed: int) -> list[_Item]:
    """``base`` draws (no record twice until all are used), copied to fill ``rows``."""
    pool, rng = p.kept, random.Random(f"{seed}:{p.index}:{p.config.path}")
    if p.rows == 0:
        return []
    n = len(pool)
    draws = [i for _ in range(p.base // n) for i in range(n)] + rng.sample(range(n), p.base % n)
    copies = [p.rows // p.base] * p.base
    for j in rng.sample(range(p.base), p.rows % p.base):
        copies[j] += 1
    return [pool[i] for i, c in zip(draws, copies, strict=True) for _ in range(c)]


def _split(plan: MixPlan) -> tuple[list[tuple[SourcePlan, _Item]], list[tuple[SourcePlan, _Item]]]:
    """Shuffle records (all copies of one content together) and fill validation to its target."""
    groups: dict[str, list[tuple[SourcePlan, _Item]]] = {}
    for p in plan.sources:
        for it in _draw(p, plan.config.seed):
            groups.setdefault(it.key, []).append((p, it))
    rng = random.Random(f"{plan.config.seed}:split")
    keys = list(groups)
    rng.shuffle(keys)
    train, val, target = [], [], plan.validation_target
    for k in keys:
        (val if len(val) + len(groups[k]) <= target else train).extend(groups[k])
    rng.shuffle(train)
    if _overlap(train, val):
        raise RuntimeError("a record is in both train and validation")  # by construction: never
    for p in plan.sources:
        p.counts["train"] = sum(1 for q, _ in train if q is p)
        p.counts["validation"] = sum(1 for q, _ in val if q is p)
    return train, val


def _overlap(train: list[tuple[SourcePlan, _Item]], validation: list[tuple[SourcePlan, _Item]]) -> int:
    """Records (by content) present in both splits: 0, or the mix is wrong."""
    return len({it.key for _, it in train} & {it.key for _, it in validation})


def build_mix(config: MixConfig, tokenizer: Any = None, render: Any = None,
              plan: MixPlan | None = None) -> dict[str, Any]:  # fmt: skip
    """Write the mix into ``config.output_dir`` (replaced only on success); return the manifest.

    ``tokenizer`` adds token statistics; ``render(messages, tools, max_length)`` (the chat
    template with loss masks) adds trainable-token counts and the template checks.
    """
    plan = plan or plan_mix(config)
    train, val = _split(plan)
    out = Path(config.output_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    try:
        manifest = _write_all(tmp, out, plan, {"train": train, "validation": val}, tokenizer, render)
        _swap(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _swap(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.replace(tmp, out)
        return
    old = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.old"
    os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _write_all(tmp: Path, out: Path, plan: MixPlan, splits: dict[str, list], tokenizer: Any,
               render: Any) -> dict[str, Any]:  # fmt: skip
    outputs, records = {}, {}
    for split, rows in splits.items():
        path = tmp / f"{split}.jsonl"
        records[split] = [it.record for _, it in rows]
        n = write_jsonl(path, records[split])
        path.chmod(0o644)  # write_jsonl's temp file is private (0600); a dataset is not
        outputs[split] = {"file": path.name, "records": n, "sha256": sha256_file(path)}
    c, tokens = plan.config, None
    if tokenizer is not None or render is not None:
        tokens = {"tokenizer": c.model or getattr(tokenizer, "name_or_path", None), "max_len": c.max_len}
        tokens |= {split: token_stats(recs, tokenizer, render, c.max_len) for split, recs in records.items()}
    keys = [it.key for rows in splits.values() for _, it in rows]
    # Upsampled copies are wanted repeats, not a data bug.
    severities = {"exact_duplicate": "info"} if len(keys) > len(set(keys)) else {}
    cfg = ValidateConfig(render=render, max_len=c.max_len, eval_sets=list(plan.eval_files),
                         near_dup_threshold=c.dedup.threshold, ngram_n=c.ngram_n, severities=severities)  # fmt: skip
    report = validate_files([tmp / f"{split}.jsonl" for split in splits], cfg)
    validation = json.loads(json.dumps(report_summary(report)).replace(str(tmp), str(out)))
    manifest = manifest_dict(plan, outputs, _overlap(*splits.values()), tokens, validation)
    write_card(tmp, manifest)
    return manifest
