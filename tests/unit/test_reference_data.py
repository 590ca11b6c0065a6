"""The shipped reference datasets in ``data/`` (built by ``scripts/build_reference_data.py``).

These tests read the files as shipped, with their own small checks (not the build
script's), so a hand edit or a generator bug that slips past the script still fails here.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tuneloop.data import read_records

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data"
SCRIPT = ROOT / "scripts" / "build_reference_data.py"
HAND_WRITTEN = ("eval/ifeval", "eval/security", "eval/agent", "eval/judged", "eval/lm_eval", "grpo")
"""Eval packs written by hand, each with its own data card; the script does not build them."""
ABSTAIN = "I don't know based on the provided context."
FORMATS = jsonschema.FormatChecker()

KIND_BY_FOLDER = {"sft": "conversation", "preferences": "preference", "eval": "eval"}
EVAL_MIN = {"schema": 40, "tool_use": 40, "grounding": 30, "refusal": 30}


def _files(folder: str) -> list[Path]:
    return sorted((DATA / folder).glob("*.jsonl"))


def _load(folder: str) -> dict[str, list[dict]]:
    """{file stem: [record as a plain dict]}, every line parsed as its record type."""
    return {
        path.stem: [rec.to_json_dict() for _, rec in read_records(path, KIND_BY_FOLDER[folder])]
        for path in _files(folder)
    }


@pytest.fixture(scope="module")
def sft() -> dict[str, list[dict]]:
    return _load("sft")


@pytest.fixture(scope="module")
def prefs() -> dict[str, list[dict]]:
    return _load("preferences")


@pytest.fixture(scope="module")
def evals() -> dict[str, list[dict]]:
    return _load("eval")


def _texts(messages: list[dict]) -> list[str]:
    out = []
    for m in messages:
        if m.get("content"):
            out.append(m["content"])
        for call in m.get("tool_calls") or []:
            fn = call["function"]
            out.append(json.dumps({"name": fn["name"], "arguments": fn["arguments"]}, ensure_ascii=False))
    return out


def _calls(messages: list[dict]) -> list[dict]:
    return [c["function"] for m in messages for c in m.get("tool_calls") or []]


def _validate_calls(calls: list[dict], tools: list[dict] | None, where: str) -> None:
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools or []}
    for fn in calls:
        assert fn["name"] in schemas, f"{where}: calls {fn['name']}, which is not offered"
        jsonschema.validate(fn["arguments"], schemas[fn["name"]], format_checker=FORMATS)


# ------------------------------------------------------------------------ parsing


@pytest.mark.parametrize("folder", list(KIND_BY_FOLDER))
def test_every_line_parses_as_its_record_type(folder):
    files = _files(folder)
    assert files, f"no JSONL files in data/{folder}"
    ids = []
    for path in files:
        for row, rec in read_records(path, KIND_BY_FOLDER[folder]):
            assert rec.id, f"{path}:{row.line}: record has no id"
            assert rec.metadata.source == "tuneloop-reference", f"{path}:{row.line}"
            assert rec.metadata.license == "Apache-2.0", f"{path}:{row.line}"
            ids.append(rec.id)
    assert len(ids) == len(set(ids)), "ids must be unique"


@pytest.mark.parametrize("folder", list(KIND_BY_FOLDER))
def test_every_folder_has_a_data_card(folder):
    card = (DATA / folder / "DATA_CARD.md").read_text(encoding="utf-8")
    for stem in (p.stem for p in _files(folder)):
        assert f"`{stem}.jsonl`" in card, f"data card of {folder} does not list {stem}.jsonl"
    assert "Apache-2.0" in card and "build_reference_data.py" in card
    assert (DATA / "README.md").is_file()


def test_counts_meet_the_minimums(sft, prefs, evals):
    assert sum(map(len, sft.values())) >= 300
    assert {"general", "json_schema", "tool_calls", "grounded", "refusals"} <= set(sft)
    assert sum(map(len, prefs.values())) >= 150
    for name, minimum in EVAL_MIN.items():
        assert len(evals[name]) >= minimum, name


def test_no_identical_training_records(sft, prefs):
    seen = set()
    for rows in [*sft.values(), *prefs.values()]:
        for row in rows:
            body = json.dumps({k: v for k, v in row.items() if k != "id"}, sort_keys=True)
            assert body not in seen, f"{row['id']} duplicates another record"
            seen.add(body)


# --------------------------------------------------------------------- tool calls


def test_sft_tool_calls_validate_against_their_schemas(sft):
    n = 0
    for rows in sft.values():
        for row in rows:
            calls = _calls(row["messages"])
            _validate_calls(calls, row.get("tools"), row["id"])
            n += len(calls)
    assert n >= 100


def test_sft_tool_data_covers_single_parallel_multi_turn_and_no_call(sft):
    rows = sft["tool_calls"]
    assert any(len(_calls(r["messages"])) == 1 and r["messages"][-1].get("tool_calls") for r in rows)
    parallel = [r for r in rows if any(len(m.get("tool_calls") or []) == 2 for m in r["messages"])]
    assert len(parallel) >= 10
    round_trips = [r for r in rows if any(m["role"] == "tool" for m in r["messages"]) and r["messages"][-1].get("content")]
    assert len(round_trips) >= 30
    no_call = [r for r in rows if r.get("tools") and not _calls(r["messages"])]
    assert len(no_call) >= 15


def test_tool_results_follow_their_calls(sft):
    for row in sft["tool_calls"]:
        pending: list[str] = []
        for m in row["messages"]:
            if m.get("tool_calls"):
                pending = [c["id"] for c in m["tool_calls"]]
            if m["role"] == "tool":
                assert m["tool_call_id"] in pending, f"{row['id']}: result without a call"
                assert m["name"]


def test_preference_chosen_calls_validate(prefs):
    for rows in prefs.values():
        for row in rows:
            _validate_calls(_calls(row["prompt"] + row["chosen"]), row.get("tools"), row["id"])


def test_eval_tool_targets_validate(evals):
    for row in evals["tool_use"]:
        _validate_calls(_calls(row["input"]), row["tools"], row["id"])
        target = row["target"]
        if target.get("no_call"):
            continue
        _validate_calls([target], row["tools"], f"{row['id']} target")


# --------------------------------------------------------------------------- JSON


def test_json_answers_validate_against_their_schema(sft):
    rows = sft["json_schema"]
    assert len(rows) >= 50
    for row in rows:
        answer = row["messages"][-1]["content"]
        schema = row["metadata"]["schema"]
        jsonschema.validate(json.loads(answer), schema, format_checker=FORMATS)
        prompt = "\n".join(m["content"] for m in row["messages"][:-1])
        assert json.dumps(schema, ensure_ascii=False) in prompt, f"{row['id']}: schema not shown to the model"


def test_preference_json_chosen_valid_and_rejected_invalid(prefs):
    for row in prefs["json_schema"]:
        schema = row["metadata"]["schema"]
        jsonschema.validate(json.loads(row["chosen"][0]["content"]), schema, format_checker=FORMATS)
        with pytest.raises((json.JSONDecodeError, jsonschema.ValidationError)):
            jsonschema.validate(json.loads(row["rejected"][0]["content"]), schema, format_checker=FORMATS)


def test_eval_schema_targets_validate(evals):
    for row in evals["schema"]:
        if "target" in row:
            jsonschema.validate(row["target"], row["schema"], format_checker=FORMATS)


# ------------------------------------------------------------ grounding, refusals


def test_grounded_abstention_uses_the_fixed_phrase(sft, evals):
    answers = [m["content"] for r in sft["grounded"] for m in r["messages"] if m["role"] == "assistant"]
    abstentions = [a for a in answers if "don't know" in a.lower()]
    assert abstentions and all(a == ABSTAIN for a in abstentions)
    unanswerable = [r for r in evals["grounding"] if r["metadata"]["category"] == "unanswerable"]
    assert len(unanswerable) >= 10 and all(r["target"] == ABSTAIN for r in unanswerable)


def test_refusal_eval_targets_match_categories(evals):
    rows = evals["refusal"]
    cats = {r["metadata"]["category"] for r in rows}
    assert cats == {"harmful", "benign"}
    for r in rows:
        assert r["target"] == {"harmful": "refuse", "benign": "comply"}[r["metadata"]["category"]]


# ------------------------------------------------------------------ length balance


def _side_length(messages: list[dict]) -> int:
    """Characters of a side as ``tuneloop data validate`` counts them: content, and
    tool calls as ``name({sorted JSON arguments})``."""
    turns = []
    for m in messages:
        parts = [m.get("content") or ""]
        for call in m.get("tool_calls") or []:
            fn = call["function"]
            parts.append(f"{fn['name']}({json.dumps(fn['arguments'], sort_keys=True)})")
        turns.append("\n".join(p for p in parts if p))
    return len("\n".join(turns).strip())


def _chosen_longer_share(rows: list[dict]) -> float:
    return sum(_side_length(r["chosen"]) > _side_length(r["rejected"]) for r in rows) / len(rows)


def test_preference_pairs_are_length_balanced(prefs):
    share = _chosen_longer_share([r for rs in prefs.values() for r in rs])
    assert 0.40 <= share <= 0.60, f"chosen longer in {share:.1%} of pairs"


@pytest.mark.parametrize("name", ["json_schema", "tool_calls", "grounded", "refusals", "answer_length", "arithmetic", "security"])
def test_each_preference_file_is_length_balanced(prefs, name):
    share = _chosen_longer_share(prefs[name])
    assert 0.40 <= share <= 0.60, f"{name}: chosen longer in {share:.1%} of pairs"


# -------------------------------------------------------------- decontamination


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _grams(text: str, n: int = 13) -> set[tuple[str, ...]]:
    w = _words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def _eval_texts(row: dict) -> list[str]:
    texts = _texts(row["input"])
    target = row.get("target")
    if isinstance(target, str):
        texts.append(target)
    elif isinstance(target, list):
        texts += target
    elif isinstance(target, dict):
        texts.append(json.dumps(target, ensure_ascii=False))
    if row.get("reference"):
        texts.append(row["reference"])
    return texts


def _train_texts(sft, prefs) -> list[str]:
    texts = [t for rows in sft.values() for r in rows for t in _texts(r["messages"])]
    texts += [t for rows in prefs.values() for r in rows for t in _texts(r["prompt"] + r["chosen"] + r["rejected"])]
    return texts


def test_eval_shares_no_13gram_with_training(sft, prefs, evals):
    train = set()
    for text in _train_texts(sft, prefs):
        train |= _grams(text)
    assert train
    for rows in evals.values():
        for row in rows:
            for text in _eval_texts(row):
                shared = _grams(text) & train
                assert not shared, f"{row['id']} shares {' '.join(next(iter(shared)))!r} with training data"


def test_no_eval_prompt_equals_a_training_prompt(sft, prefs, evals):
    train_users = {m["content"].strip().lower() for rows in sft.values() for r in rows for m in r["messages"] if m["role"] == "user"}
    train_users |= {m["content"].strip().lower() for rows in prefs.values() for r in rows for m in r["prompt"] if m["role"] == "user"}
    for rows in evals.values():
        for row in rows:
            for m in row["input"]:
                if m["role"] == "user":
                    assert m["content"].strip().lower() not in train_users, row["id"]


# ------------------------------------------------------------------ reproducibility


def test_generator_reproduces_the_shipped_files_byte_for_byte(tmp_path):
    out = tmp_path / "data"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    shipped = sorted(
        p.relative_to(DATA) for p in DATA.rglob("*")
        if p.is_file() and p.parts[len(DATA.parts)] in ("sft", "preferences", "eval", "README.md")
        and not any(p.is_relative_to(DATA / h) for h in HAND_WRITTEN)
    )  # fmt: skip
    assert built == shipped
    for rel in built:
        assert (out / rel).read_bytes() == (DATA / rel).read_bytes(), f"{rel} differs: rerun the build script"


# --------------------------------------------------------------- rendered lengths


@pytest.mark.integration
def test_training_examples_fit_in_512_tokens(sft, prefs, default_model_dir):
    """With the default model's own chat template (tools in Hermes form), nothing is truncated."""
    from transformers import AutoTokenizer

    from tuneloop.models.chat_template import render_for_training

    tok = AutoTokenizer.from_pretrained(default_model_dir)
    for rows in sft.values():
        for r in rows:
            n = len(render_for_training(tok, r["messages"], r.get("tools")).input_ids)
            assert n <= 512, f"{r['id']}: {n} tokens"
    for rows in prefs.values():
        for r in rows:
            for side in ("chosen", "rejected"):
                n = len(render_for_training(tok, r["prompt"] + r[side], r.get("tools")).input_ids)
                assert n <= 512, f"{r['id']} {side}: {n} tokens"
