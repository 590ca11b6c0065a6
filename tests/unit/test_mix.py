"""``tuneloop data mix``: planned sizes worked out by hand, determinism, the split, the card,
and atomicity (a failed or refused mix leaves the output folder exactly as it was).

Sources are JSONL fixtures written here; every record is unique unless a test makes a
copy on purpose, and each record's text names its source and number, so outputs can be
counted per source from ``metadata.source``.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from functools import partial
from pathlib import Path

import pytest
import yaml

from tuneloop.data.dedup import normalize_text
from tuneloop.data.io import DataError
from tuneloop.data.mix import build_mix, plan_mix
from tuneloop.data.mix_card import DROP_STEPS
from tuneloop.data.mix_config import MixConfigError, load_mix_config

FRUITS = ["apple", "banana", "cherry", "damson", "elder", "fig", "grape", "huckleberry", "kiwi", "lemon"]


def _conv(user: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}


def _distinct(name: str, i: int) -> dict:
    """Record ``i`` of source ``name``: distinct words, so no two records are near-duplicates."""
    words = " ".join(f"{FRUITS[(i + k) % 10]}{i}{name}{k}" for k in range(6))
    return _conv(f"{name} question {i}: {words}?", f"{name} answer {i}: {words[::-1]}.")


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _source(tmp: Path, name: str, n: int) -> str:
    _write(tmp / f"{name}.jsonl", [_distinct(name, i) for i in range(n)])
    return f"{name}.jsonl"


def _config(tmp: Path, **data) -> Path:
    data.setdefault("output_dir", "out/mix")
    path = tmp / "mix.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _by_source(out: Path) -> Counter:
    rows = _read(out / "train.jsonl") + _read(out / "validation.jsonl")
    return Counter(r["metadata"]["source"] for r in rows)


def _key(row: dict) -> str:
    content = {k: v for k, v in row.items() if k not in ("metadata", "id")}
    return normalize_text(json.dumps(content, sort_keys=True))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tuneloop.cli", "data", "mix", *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working directory holding the fixtures; config paths are relative to it."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ------------------------------------------------------------------------ sizes


def test_weights_and_counts_give_planned_numbers(work):
    """a (50 records, weight 3), b (30, weight 1), c (40, count 10), no total.

    Weighted part = the largest size in which no weighted source repeats a record:
    min(50 * 4/3, 30 * 4/1) = 66.67 -> 66, split 3:1 = 49.5 : 16.5 -> floors 49, 16 and
    the one left over to the earlier source on the tie: a 50, b 16. c gives 10.
    Output 76 rows; validation round(0.1 * 76) = 8.
    """
    cfg = _config(work, sources=[{"path": _source(work, "a", 50), "weight": 3},
                                 {"path": _source(work, "b", 30), "weight": 1},
                                 {"path": _source(work, "c", 40), "count": 10}])  # fmt: skip
    manifest = build_mix(load_mix_config(cfg))
    finals = {s["name"]: s["counts"]["final"] for s in manifest["sources"]}
    assert finals == {"a": 50, "b": 16, "c": 10}
    assert _by_source(work / "out/mix") == finals
    assert manifest["outputs"]["validation"]["records"] == 8
    assert manifest["outputs"]["train"]["records"] == 68


def test_total_splits_the_room_left_by_count_sources(work):
    """total 40, c count 10 -> 30 rows for a:b = 3:1 = 22.5 : 7.5 -> 22, 7, +1 to a (tie, earlier)."""
    cfg = _config(work, total=40, sources=[{"path": _source(work, "a", 50), "weight": 3},
                                           {"path": _source(work, "b", 30), "weight": 1},
                                           {"path": _source(work, "c", 40), "count": 10}])  # fmt: skip
    plan = plan_mix(load_mix_config(cfg))
    assert [p.rows for p in plan.sources] == [23, 7, 10]
    assert plan.total == 40 and plan.validation_target == 4


def test_count_beyond_available_repeats_in_whole_passes(work):
    """count 7 of 3 records: 2 full passes (6) + 1 record a third time -> copies {3, 2, 2}."""
    cfg = _config(work, validation_fraction=0.0, sources=[{"path": _source(work, "a", 3), "count": 7}])
    build_mix(load_mix_config(cfg))
    copies = Counter(_key(r) for r in _read(work / "out/mix/train.jsonl"))
    assert sorted(copies.values()) == [2, 2, 3]


def test_upsampling_repeats_each_drawn_record(work):
    """f: 5 records, count 5, upsample 3 -> 15 rows, each record exactly 3 times (both splits
    together); g: weight 1 over 20 records -> all 20 once. Fraction: h count 4, upsample 1.5
    -> 6 rows: two records twice, two once."""
    cfg = _config(work, sources=[{"path": _source(work, "f", 5), "count": 5, "upsample": 3},
                                 {"path": _source(work, "g", 20), "weight": 1},
                                 {"path": _source(work, "h", 4), "count": 4, "upsample": 1.5}])  # fmt: skip
    manifest = build_mix(load_mix_config(cfg))
    rows = _read(work / "out/mix/train.jsonl") + _read(work / "out/mix/validation.jsonl")
    copies = {src: sorted(Counter(_key(r) for r in rows if r["metadata"]["source"] == src).values())
              for src in "fgh"}  # fmt: skip
    assert copies == {"f": [3] * 5, "g": [1] * 20, "h": [1, 1, 2, 2]}
    f = manifest["sources"][0]["counts"]
    assert (f["sampled"], f["upsampled"], f["final"]) == (5, 15, 15)


def test_synthetic_cap(work):
    """s synthetic 40 rows, n 60 rows, cap 0.25: s' <= 0.25 * 60 / 0.75 = 20 -> 20 of 80 rows."""
    cfg = _config(work, max_synthetic_fraction=0.25,
                  sources=[{"path": _source(work, "s", 40), "count": 40, "synthetic": True},
                           {"path": _source(work, "n", 60), "count": 60}])  # fmt: skip
    manifest = build_mix(load_mix_config(cfg))
    s = manifest["sources"][0]["counts"]
    assert (s["upsampled"], s["synthetic_capped"], s["final"]) == (40, 20, 20)
    assert _by_source(work / "out/mix") == {"s": 20, "n": 60}


# ------------------------------------------------------------ determinism, split


def _three_sources(work: Path, **extra) -> Path:
    return _config(work, **extra, sources=[{"path": _source(work, "a", 40), "weight": 2},
                                           {"path": _source(work, "b", 30), "weight": 1},
                                           {"path": _source(work, "f", 6), "count": 6, "upsample": 3}])  # fmt: skip


def test_same_seed_gives_identical_bytes_other_seed_another_order(work):
    cfg = _three_sources(work, seed=7)
    build_mix(load_mix_config(cfg, ["output_dir=run1"]))
    build_mix(load_mix_config(cfg, ["output_dir=run2"]))
    build_mix(load_mix_config(cfg, ["output_dir=run3", "seed=8"]))
    for split in ("train.jsonl", "validation.jsonl"):
        assert (work / "run1" / split).read_bytes() == (work / "run2" / split).read_bytes()
    assert (work / "run1/train.jsonl").read_bytes() != (work / "run3/train.jsonl").read_bytes()
    # Sources used whole (a, and f x3) keep their records under another seed; b draws 20 of 30.
    rows = {r: _read(work / r / "train.jsonl") + _read(work / r / "validation.jsonl") for r in ("run1", "run3")}
    whole = {r: sorted(_key(x) for x in v if x["metadata"]["source"] != "b") for r, v in rows.items()}
    assert whole["run1"] == whole["run3"]
    picked = {r: {_key(x) for x in v if x["metadata"]["source"] == "b"} for r, v in rows.items()}
    assert len(picked["run1"]) == len(picked["run3"]) == 20 and picked["run1"] != picked["run3"]


def test_no_record_in_both_splits(work):
    """Upsampled copies (f x3) stay together: whole records go to one split."""
    manifest = build_mix(load_mix_config(_three_sources(work, validation_fraction=0.3)))
    train = {_key(r) for r in _read(work / "out/mix/train.jsonl")}
    val = {_key(r) for r in _read(work / "out/mix/validation.jsonl")}
    assert train and val and not train & val
    assert manifest["split"]["records_in_both_splits"] == 0
    assert manifest["outputs"]["validation"]["records"] == manifest["split"]["validation_target"]


def test_manifest_sha256_values_match_the_files(work):
    manifest = build_mix(load_mix_config(_three_sources(work)))
    out = work / "out/mix"
    for o in manifest["outputs"].values():
        assert _sha(out / o["file"]) == o["sha256"]
        assert len(_read(out / o["file"])) == o["records"]
    for s in manifest["sources"]:
        for f in s["files"]:
            assert _sha(work / f["path"]) == f["sha256"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    card = (out / "DATA_CARD.md").read_text()
    assert manifest["outputs"]["train"]["sha256"] in card and "| contaminated_dropped |" in card


def test_per_step_counts_add_up(work):
    """Every filter fires once or more: an invalid line (dropped), a copy within a, a copy of
    an a record in b, a near-copy in b, and a b record that an eval set contains."""
    a = [_distinct("a", i) for i in range(20)]
    a.insert(5, {"messages": [{"role": "robot", "content": "x"}]})  # invalid: dropped
    a.append(_distinct("a", 3))  # exact copy within a
    near = _distinct("b", 0)
    near["messages"][1]["content"] += " Indeed."  # near-copy of b 0
    b = [_distinct("b", i) for i in range(15)] + [_distinct("a", 7), near]
    leaked = "Summarise the passage on the history of the printing press in early modern Europe and its effects"
    b[4] = _conv(leaked, "b answer 4")  # shares 13-grams with the eval item below
    _write(work / "a.jsonl", a)
    _write(work / "b.jsonl", b)
    ev = {"id": "e1", "input": [{"role": "user", "content": leaked}]}
    _write(work / "eval.jsonl", [ev])
    cfg = _config(work, drop_invalid=True, eval_sets=["eval*.jsonl"], dedup={"near": True, "threshold": 0.7},
                  sources=[{"path": "a.jsonl", "weight": 1}, {"path": "b.jsonl", "count": 12, "upsample": 2}])  # fmt: skip
    m = build_mix(load_mix_config(cfg))
    ca, cb = (s["counts"] for s in m["sources"])
    assert (ca["read"], ca["invalid_dropped"], ca["duplicates_dropped"], ca["available"]) == (22, 1, 1, 20)
    assert (cb["read"], cb["cross_source_duplicates_dropped"], cb["near_duplicates_dropped"],
            cb["contaminated_dropped"], cb["available"]) == (17, 1, 1, 1, 14)  # fmt: skip
    for c in (ca, cb):
        assert c["read"] - sum(c[s] for s in DROP_STEPS) == c["available"]
        assert c["upsampled"] - c["synthetic_capped"] == c["final"] == c["train"] + c["validation"]
    assert (cb["sampled"], cb["upsampled"]) == (12, 24)
    assert m["totals"]["final"] == ca["final"] + cb["final"] == 44
    assert m["totals"]["train"] == m["outputs"]["train"]["records"]
    assert m["totals"]["validation"] == m["outputs"]["validation"]["records"]
    assert m["validation"]["ok"], m["validation"]


def test_token_statistics_with_a_tokenizer_and_render(work):
    from tuneloop.models import render_for_training
    from tuneloop.models.tiny import build_tiny_tokenizer

    tiny_tokenizer = build_tiny_tokenizer()  # the tokenizer alone: no model weights needed

    cfg = _config(work, sources=[{"path": _source(work, "a", 10), "weight": 1}], max_len=4096)
    m = build_mix(load_mix_config(cfg), tokenizer=tiny_tokenizer, render=partial(render_for_training, tiny_tokenizer))
    train = m["token_stats"]["train"]
    assert train["records"] == 9 and train["render_errors"] == 0 and train["over_max_len"] == 0
    assert 0 < train["trainable_tokens"] < train["tokens"]
    assert train["p50"] <= train["p95"] <= train["max"]
    assert "| trainable_tokens |" in (work / "out/mix/DATA_CARD.md").read_text()


# ------------------------------------------------------------ errors, atomicity


@pytest.mark.parametrize(("change", "field"), [
    ({"sources": [{"path": "a.jsonl", "wieght": 1}]}, "sources.0.wieght: unknown key"),
    ({"seed": "abc"}, "seed:"),
    ({"sources": [{"path": "missing*.jsonl", "weight": 1}]}, "sources.0.path: no file matches"),
    ({"sources": [{"path": "a.jsonl", "weight": 1, "count": 3}]}, "sources.0: set exactly one of weight or count"),
    ({"eval_sets": ["nope.jsonl"]}, "eval_sets.0: no file matches"),
])  # fmt: skip
def test_bad_config_names_file_and_field_and_leaves_output_alone(work, change, field):
    _source(work, "a", 10)
    good = _config(work, sources=[{"path": "a.jsonl", "weight": 1}])
    build_mix(load_mix_config(good))
    before = _snapshot(work / "out/mix")
    cfg = _config(work, **{"sources": [{"path": "a.jsonl", "weight": 1}], **change})
    with pytest.raises(MixConfigError) as exc:
        build_mix(load_mix_config(cfg))
    assert str(exc.value).startswith(f"{cfg}: ") and field in str(exc.value)
    assert _snapshot(work / "out/mix") == before


def test_bad_config_on_the_cli_is_one_line_and_exit_1(work):
    _source(work, "a", 10)
    cfg = _config(work, sources=[{"path": "a.jsonl", "weight": 1, "licence": "MIT"}])
    result = _cli(cfg.name, cwd=work)
    assert result.returncode == 1
    assert result.stderr.strip() == "error: mix.yaml: sources.0.licence: unknown key"
    assert not (work / "out").exists()


def test_schema_error_names_file_and_line_unless_dropped(work):
    _write(work / "a.jsonl", [_distinct("a", 0), {"messages": []}, _distinct("a", 1)])
    cfg = _config(work, sources=[{"path": "a.jsonl", "weight": 1}])
    with pytest.raises(DataError) as exc:
        plan_mix(load_mix_config(cfg))
    assert str(exc.value).startswith("a.jsonl:2: messages:") and "drop_invalid" in str(exc.value)
    plan = plan_mix(load_mix_config(cfg, ["drop_invalid=true"]))
    assert plan.sources[0].counts["invalid_dropped"] == 1


def test_failure_midway_leaves_no_output_and_no_temp_folder(work, monkeypatch):
    import tuneloop.data.mix as mix

    cfg = load_mix_config(_three_sources(work))
    calls = []

    def broken_writer(path, records):
        calls.append(path)
        Path(path).write_text("partial\n")
        raise OSError("disk full")

    monkeypatch.setattr(mix, "write_jsonl", broken_writer)
    with pytest.raises(OSError, match="disk full"):
        build_mix(cfg)
    assert calls and not (work / "out/mix").exists()
    assert list((work / "out").iterdir()) == []  # no .mix.*.tmp left behind


def test_failure_midway_keeps_the_previous_output(work, monkeypatch):
    import tuneloop.data.mix as mix

    cfg = load_mix_config(_three_sources(work))
    build_mix(cfg)
    before = _snapshot(work / "out/mix")
    monkeypatch.setattr(mix, "write_card", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        build_mix(load_mix_config(_three_sources(work), ["seed=5"]))
    assert _snapshot(work / "out/mix") == before
    assert [p.name for p in (work / "out").iterdir()] == ["mix"]


def test_success_replaces_the_previous_output_whole(work):
    cfg = load_mix_config(_three_sources(work))
    build_mix(cfg)
    (work / "out/mix/stale.txt").write_text("from an older mix")
    build_mix(cfg)
    assert sorted(p.name for p in (work / "out/mix").iterdir()) == [
        "DATA_CARD.md", "manifest.json", "train.jsonl", "validation.jsonl"]  # fmt: skip
    assert [p.name for p in (work / "out").iterdir()] == ["mix"]


def test_refuses_to_replace_a_folder_that_is_not_a_mix(work):
    (work / "out/mix").mkdir(parents=True)
    (work / "out/mix/notes.txt").write_text("mine")
    with pytest.raises(MixConfigError, match="output_dir: .* not a mix output"):
        load_mix_config(_three_sources(work))
    assert (work / "out/mix/notes.txt").read_text() == "mine"


def test_set_overrides_nested_keys(work):
    cfg = _three_sources(work)
    config = load_mix_config(cfg, ["sources.1.weight=5", "dedup.near=true", "validation_count=3"])
    assert config.sources[1].weight == 5 and config.dedup.near and config.validation_count == 3
    with pytest.raises(MixConfigError, match="--set 'sources.9.weight=1'"):
        load_mix_config(cfg, ["sources.9.weight=1"])


# ------------------------------------------------------------------------ CLI


def test_dry_run_prints_plan_and_writes_nothing(work):
    cfg = _three_sources(work)
    before = sorted(p.name for p in work.iterdir())
    result = _cli(cfg, "--dry-run", cwd=work)
    assert result.returncode == 0, result.stderr
    assert "resolved config" in result.stdout and "planned counts" in result.stdout
    # a:b = 2:1, limited by a: min(40 * 3/2, 30 * 3/1) = 60 -> 40 + 20; f 6 x 3 = 18; 78 rows.
    assert "output: 78 rows, about 8 for validation" in result.stdout
    assert sorted(p.name for p in work.iterdir()) == before


def test_cli_writes_the_mix(work):
    result = _cli(_three_sources(work), "--set", "output_dir=built", cwd=work)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((work / "built/manifest.json").read_text())
    assert manifest["outputs"]["train"]["sha256"] == _sha(work / "built/train.jsonl")
    assert "wrote built" in result.stdout


def test_double_star_patterns_reach_nested_folders(tmp_path):
    from tuneloop.data.mix_config import _expand
    from tuneloop.train.datasets import expand_files

    (tmp_path / "eval" / "security").mkdir(parents=True)
    for name in ("eval/a.jsonl", "eval/security/b.jsonl"):
        (tmp_path / name).write_text("{}\n")
    pattern = str(tmp_path / "eval" / "**" / "*.jsonl")
    expected = [tmp_path / "eval" / "a.jsonl", tmp_path / "eval" / "security" / "b.jsonl"]
    assert _expand(pattern) == expected
    assert expand_files([pattern], "eval_sets") == expected
