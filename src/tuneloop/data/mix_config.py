"""The typed config of ``tuneloop data mix``. YAML holds values only; ``--set`` overrides.

    name: demo
    output_dir: out/data/demo
    sources:
      - {path: data/sft/general.jsonl, weight: 3, license: CC-BY-4.0}
      - {path: data/sft/failures.jsonl, count: 40, upsample: 3}
    eval_sets: [data/eval/**/*.jsonl]
    validation_fraction: 0.1

``load_mix_config`` checks more than the types: every path or glob must match a file,
and an existing ``output_dir`` must be an earlier mix output (it is replaced whole).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class MixConfigError(ValueError):
    """The mix config is wrong; the message names the field (and the file, when loaded from one)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class SourceConfig(_Strict):
    """One input dataset."""

    path: str = Field(min_length=1)
    """JSONL file or glob, relative to the working directory."""
    name: str | None = None
    """Label in the data card and ``metadata.source`` of records that have none (default: file stem)."""
    weight: float | None = Field(None, gt=0)
    """Relative share of the sampled records among weighted sources, before upsampling."""
    count: int | None = Field(None, ge=0)
    """Exact number of records drawn from this source, before upsampling."""
    upsample: float = Field(1.0, ge=1.0)
    """Times each drawn record appears in the output, e.g. 3 for mined failures."""
    synthetic: bool = False
    """Model-generated data: counts toward ``max_synthetic_fraction``."""
    license: str | None = None
    """Licence of the data; recorded in the card and in ``metadata.license`` of records lacking one."""
    dedup: bool = True
    """Deduplicate this source (exact, within itself) and let it take part in cross-source dedup."""

    @model_validator(mode="after")
    def _one_size(self) -> SourceConfig:
        if (self.weight is None) == (self.count is None):
            raise ValueError("set exactly one of weight or count")
        return self

    @property
    def label(self) -> str:
        return self.name or (self.path if glob.has_magic(self.path) else Path(self.path).stem)


class DedupConfig(_Strict):
    """Dedup beyond the exact within-source pass every source with ``dedup: true`` gets."""

    cross_source: bool = True
    """Also drop exact copies of a record kept from an earlier source."""
    near: bool = False
    """Also drop near-duplicates (MinHash estimate of Jaccard similarity), within and across sources."""
    threshold: float = Field(0.85, gt=0.0, le=1.0)
    """Similarity from which two records are near-duplicates (the later one is dropped)."""


class MixConfig(_Strict):
    """A training mix: sources, sizes, filters and the train/validation split."""

    name: str = Field(min_length=1, pattern=r"^[\w.-]+$")
    """Name of the mix (default: the config file's stem)."""
    output_dir: Path
    """Folder written with train.jsonl, validation.jsonl, manifest.json and DATA_CARD.md; replaced whole."""
    seed: int = 0
    """Seed of sampling, upsampling remainders, the shuffle and the split."""
    sources: list[SourceConfig] = Field(min_length=1)
    """Input datasets."""
    total: int | None = Field(None, ge=1)
    """Output rows (train + validation) before the synthetic cap. Default: the largest mix in
    which no weighted source repeats a record (plus the count sources' rows)."""
    max_synthetic_fraction: float = Field(1.0, ge=0.0, le=1.0)
    """Largest share of output rows from ``synthetic`` sources; excess synthetic rows are dropped."""
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    """Share of output rows held out for validation."""
    validation_count: int | None = Field(None, ge=0)
    """Exact validation rows instead of ``validation_fraction``."""
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    """Cross-source and near-duplicate removal."""
    eval_sets: list[str] = Field(default_factory=list)
    """Eval files or globs; training records sharing an n-gram with them are dropped."""
    ngram_n: int = Field(13, ge=1)
    """Word n-gram length of the contamination check."""
    drop_invalid: bool = False
    """Drop (and count) records failing the schema instead of stopping with file:line."""
    max_len: int | None = Field(None, ge=1)
    """Training sequence length: checked on the outputs and reported in token statistics."""
    model: str | None = None
    """Model whose tokenizer and chat template give token statistics (optional)."""

    @model_validator(mode="after")
    def _one_split(self) -> MixConfig:
        if self.validation_count is not None and "validation_fraction" in self.model_fields_set:
            raise ValueError("set validation_fraction or validation_count, not both")
        return self


def load_mix_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> MixConfig:
    """Read a YAML mix config, apply ``key=value`` overrides (dotted: ``sources.0.weight=2``),
    validate it and check its files exist. Errors name the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise MixConfigError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise MixConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise MixConfigError(f"{path}: expected a mapping of keys to values")
    for item in overrides:
        _override(data, item)
    data.setdefault("name", path.stem)
    try:
        config = MixConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(map(str, e['loc'])) or '<config>'}: "
                 + ("unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, "))
                 for e in exc.errors()]  # fmt: skip
        raise MixConfigError("\n".join(lines)) from None
    try:
        resolve_files(config)
    except MixConfigError as exc:
        raise MixConfigError(f"{path}: {exc}") from None
    return config


def _override(data: dict, item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise MixConfigError(f"--set {item!r}: expected key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    *parents, last = key.strip().split(".")
    node: Any = data
    try:
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        node[int(last) if isinstance(node, list) else last] = value
    except (ValueError, IndexError, TypeError, AttributeError):
        raise MixConfigError(f"--set {item!r}: no such key path") from None


def _expand(pattern: str) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(os.path.expanduser(pattern), recursive=True) if Path(p).is_file())


def resolve_files(config: MixConfig) -> tuple[list[list[Path]], list[Path]]:
    """The files of each source and the eval files; a pattern matching nothing is an error,
    and so is an ``output_dir`` that exists but is no earlier mix output."""
    patterns = {f"sources.{i}.path": s.path for i, s in enumerate(config.sources)}
    patterns |= {f"eval_sets.{i}": p for i, p in enumerate(config.eval_sets)}
    found = {where: _expand(pattern) for where, pattern in patterns.items()}
    for where, files in found.items():
        if not files:
            raise MixConfigError(f"{where}: no file matches {patterns[where]!r}")
    out = config.output_dir
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "manifest.json").is_file())):
        raise MixConfigError(f"output_dir: {out} exists and is not a mix output folder; refusing to replace it")
    files = list(found.values())
    n = len(config.sources)
    return files[:n], [f for fs in files[n:] for f in fs]


def config_yaml(config: MixConfig) -> str:
    """The resolved config as YAML (what ``--dry-run`` prints and the manifest holds as JSON)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
