"""``tuneloop data validate``: each seeded defect trips exactly its check, on its line.

The fixtures are JSONL files written here: clean lines interleaved with one defect
per line, so the expected findings are a set of ``(file, check, line)`` worked out
by reading the file top to bottom (each defect's line is written next to it).
Duplicates, contamination and PII run through the real :mod:`tuneloop.data.dedup`,
:mod:`tuneloop.data.contamination` and :mod:`tuneloop.data.pii`.
"""

from __future__ import annotations

import copy
import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tuneloop.data.checks import ALL_CHECKS
from tuneloop.data.validate import ValidateConfig, parse_severities, validate_files

# ---------------------------------------------------------------------- fixtures


def user(text):
    return {"role": "user", "content": text}


def assistant(text, calls=None):
    m = {"role": "assistant", "content": text}
    if calls:
        m["tool_calls"] = calls
    return m


def conv(*messages, **extra):
    return {"messages": list(messages), **extra}


def call(name, arguments, id=None):
    c = {"type": "function", "function": {"name": name, "arguments": arguments}}
    return {**c, "id": id} if id else c


CALC = {
    "type": "function",
    "function": {
        "name": "calculator", "description": "Evaluate arithmetic.",
        "parameters": {"type": "object", "properties": {"expression": {"type": "string"}},
                       "required": ["expression"], "additionalProperties": False},
    },
}  # fmt: skip

CLEAN = [
    conv(user("What is the capital of France?"), assistant("Paris is the capital of France.")),
    conv(user("Name a primary colour."), assistant("Red is one of the primary colours.")),
    conv(
        user("How do bees make honey?"),
        assistant("They collect nectar and evaporate it in the hive."),
    ),
    conv(user("Translate 'gato' from Spanish."), assistant("It means cat.")),
    conv(user("Suggest a name for a goldfish."), assistant("How about Bubbles?")),
    conv(
        user("Why is the sky blue?"),
        assistant("Air scatters short blue wavelengths of sunlight most."),
    ),
    conv(user("Give me a synonym for happy."), assistant("Joyful.")),
]

LONG_TEXT = (
    "Write a short story about a lighthouse keeper who discovers that the lamp she tends every night "
    "is also watched by a family of owls living in the rafters above the lantern room, and how over "
    "one long winter she learns their habits, names each of them after a famous sailor, keeps a "
    "notebook of their comings and goings, and finally, when a storm knocks out the power across the "
    "whole coast, follows the owls' calls to find the spare generator hidden in the old boathouse so "
    "that the light keeps turning and the fishing boats come safely home before dawn breaks over the bay"
)
LONG = conv(user(LONG_TEXT), assistant("Once upon a time, a keeper and her owls kept the light."))
NEAR = conv(user(LONG_TEXT.replace("spare generator", "backup generator")), LONG["messages"][1])

EVAL_QUESTION = (
    "In which year did the first crewed mission land on the Moon, and who was the commander "
    "who stepped out first onto its surface?"
)
EVAL_LINE = {"id": "e1", "input": [user(EVAL_QUESTION)], "target": "1969, Neil Armstrong"}

# (line, defect) — a blank line 11 checks that blank lines still count.
TRAIN = [
    (1, CLEAN[0]),
    (2, b'{"messages": [\n'),  # schema: invalid JSON
    (3, LONG),
    (4, b'{"messages": "caf\xe9"}\n'),  # schema: not UTF-8
    (5, conv({"role": "bot", "content": "Hi"}, assistant("Hello."))),  # schema: unknown role
    (6, conv(user("   "), assistant("Could you say that again?"))),  # empty_turn
    (7, conv(user("Hi."), user("Are you there?"), assistant("Yes, I am here."))),  # role_order
    (8, conv(user("Just a statement, no answer follows."))),  # no_assistant
    (9, CLEAN[0]),  # exact_duplicate of line 1
    (10, NEAR),  # near_duplicate of line 3
    (12, conv(user(EVAL_QUESTION), assistant("It landed in 1969 and the commander was Neil Armstrong."))),  # contamination
    (13, CLEAN[1]),
    (14, conv(user("Repeat after me: the quick brown fox jumps over the lazy dog."),
              assistant("The quick brown fox jumps over the lazy dog."))),  # label_leakage
    (15, conv(user("Email jane.doe@example.com the minutes."), assistant("Done, I sent them."))),  # pii
    (16, conv(user("Weather in Oslo?"), assistant(None, [call("weather", {"city": "Oslo"}, "w1")]),
              {"role": "tool", "tool_call_id": "w1", "content": "rain"}, assistant("It is raining."),
              tools=[CALC])),  # tool_call_unknown
    (17, conv(user("What is six times seven?"), assistant(None, [call("calculator", {"expr": 3})]),
              {"role": "tool", "content": "42"}, assistant("Forty-two."), tools=[CALC])),  # tool_args_invalid (schema)
    (18, conv(user("What is two plus two?"), assistant(None, [call("calculator", "two plus")]),
              {"role": "tool", "content": "4"}, assistant("Four."), tools=[CALC])),  # tool_args_invalid (JSON)
    (19, conv(user("Any news?"), {"role": "tool", "content": "none"}, assistant("No news today."))),  # role_order
    (20, conv(user("What is nine minus one?"), assistant(None, [call("calculator", {"expression": "9-1"}, "c1")]),
              {"role": "tool", "tool_call_id": "c1", "content": "8"}, assistant("Eight."), tools=[CALC])),
    (21, conv(user("What is ten over two?"), assistant(None, [call("calculator", {"expression": "10/2"}, "c1")]),
              {"role": "tool", "tool_call_id": "c9", "content": "5"}, assistant("Five."), tools=[CALC])),  # role_order (id)
    (22, conv(user("Say something."), assistant(" \n"))),  # empty_turn
    (23, CLEAN[2]),
]  # fmt: skip

LINE = dict(TRAIN)

PAIRS = [
    (1, {"prompt": [user("Pick a fruit.")], "chosen": [assistant("An apple.")], "rejected": [assistant("No.")]}),
    (2, {"prompt": [user("Pick a tree.")], "chosen": [assistant("Oak.")], "rejected": [assistant("Oak.")]}),  # pair_identical
    (3, {"prompt": [user("Pick a river.")], "chosen": [assistant("The Nile.")], "rejected": [assistant("")]}),  # pair_empty_side
    (4, {"prompt": [user("Pick a bird.")], "chosen": [assistant("A robin.")], "rejected": [assistant("A crow, I think.")]}),
]  # fmt: skip

OTHER = [(1, CLEAN[3]), (2, LONG)]  # exact_duplicate of train.jsonl:3, across files


def write_jsonl(path: Path, lines) -> Path:
    """Write ``(line, record-or-raw-bytes)``; gaps in line numbers become blank lines."""
    chunks, current = [], 1
    for line_no, value in lines:
        while current < line_no:
            chunks.append(b"\n")
            current += 1
        chunks.append(value if isinstance(value, bytes) else (json.dumps(value) + "\n").encode())
        current += 1
    path.write_bytes(b"".join(chunks))
    return path


def found(report, root: Path) -> set[tuple[str, str, int | None]]:
    return {(Path(f.file).relative_to(root).as_posix(), f.check, f.line) for f in report.findings}


@pytest.fixture
def seeded(tmp_path):
    return {
        "train": write_jsonl(tmp_path / "train.jsonl", TRAIN),
        "pairs": write_jsonl(tmp_path / "pairs.jsonl", PAIRS),
        "other": write_jsonl(tmp_path / "other.jsonl", OTHER),
        "eval": write_jsonl(tmp_path / "eval.jsonl", [(1, EVAL_LINE)]),
    }


SEEDED_EXPECTED = {
    ("train.jsonl", "schema", 2), ("train.jsonl", "schema", 4), ("train.jsonl", "schema", 5),
    ("train.jsonl", "empty_turn", 6), ("train.jsonl", "role_order", 7), ("train.jsonl", "no_assistant", 8),
    ("train.jsonl", "exact_duplicate", 9), ("train.jsonl", "near_duplicate", 10),
    ("train.jsonl", "contamination", 12), ("train.jsonl", "label_leakage", 14), ("train.jsonl", "pii", 15),
    ("train.jsonl", "tool_call_unknown", 16), ("train.jsonl", "tool_args_invalid", 17),
    ("train.jsonl", "tool_args_invalid", 18), ("train.jsonl", "role_order", 19),
    ("train.jsonl", "role_order", 21), ("train.jsonl", "empty_turn", 22),
    ("pairs.jsonl", "pair_identical", 2), ("pairs.jsonl", "pair_empty_side", 3),
    ("other.jsonl", "exact_duplicate", 2),
}  # fmt: skip


# ------------------------------------------------------------------------- tests


def test_each_seeded_defect_trips_exactly_its_check(seeded, tmp_path):
    files = [seeded["train"], seeded["pairs"], seeded["other"]]
    report = validate_files(files, ValidateConfig(eval_sets=[seeded["eval"]]))
    assert found(report, tmp_path) == SEEDED_EXPECTED
    assert not report.ok
    assert report.records == 22 + 4 + 2  # non-blank lines, bad ones included
    assert report.stats["files"][str(seeded["train"])] == {
        "lines": 22,
        "records": 19,
        "invalid": 3,
        "kinds": {"conversation": 19},
    }
    assert report.stats["contamination"] == {str(seeded["eval"]): 1}
    assert report.stats["duplicates"] == {"exact": 2, "near": 1}


def test_findings_say_what_and_where(seeded, tmp_path):
    report = validate_files(
        [seeded["train"], seeded["other"]], ValidateConfig(eval_sets=[seeded["eval"]])
    )
    by = {(f.check, Path(f.file).name, f.line): f for f in report.findings}
    assert "invalid JSON" in by["schema", "train.jsonl", 2].message
    assert "UTF-8" in by["schema", "train.jsonl", 4].message
    assert by["schema", "train.jsonl", 5].field == "messages.0.role"
    assert by["empty_turn", "train.jsonl", 6].field == "messages.0.content"
    assert "two user turns" in by["role_order", "train.jsonl", 7].message
    assert by["exact_duplicate", "train.jsonl", 9].message == f"duplicate of {seeded['train']}:1"
    assert by["exact_duplicate", "other.jsonl", 2].message == f"duplicate of {seeded['train']}:3"
    assert f"{seeded['train']}:3" in by["near_duplicate", "train.jsonl", 10].message
    assert str(seeded["eval"]) in by["contamination", "train.jsonl", 12].message
    pii = by["pii", "train.jsonl", 15]
    assert "email" in pii.message and "jane.doe@example.com" not in pii.message
    assert "'weather'" in by["tool_call_unknown", "train.jsonl", 16].message
    schema_msg = by["tool_args_invalid", "train.jsonl", 17].message
    assert "'expression' is a required property" in schema_msg and "$" in schema_msg
    assert "not valid JSON" in by["tool_args_invalid", "train.jsonl", 18].message
    assert by["role_order", "train.jsonl", 21].field == "messages.2.tool_call_id"
    assert by["empty_turn", "train.jsonl", 22].field == "messages.1.content"
    # sorted file by file, line by line
    keys = [(f.file, f.line) for f in report.findings]
    assert keys == sorted(keys, key=lambda k: (Path(k[0]).name != "train.jsonl", k[1]))


def test_clean_file_passes(tmp_path):
    path = write_jsonl(tmp_path / "clean.jsonl", list(enumerate([*CLEAN, LINE[20]], start=1)))
    report = validate_files([path])
    assert report.findings == [] and report.ok
    rows = {r["check"]: r for r in report.summary()}
    assert all(r["status"] == "pass" for r in rows.values())
    # rendering and contamination only run when asked for
    assert "template_error" not in rows and "contamination" not in rows
    assert set(rows) == set(ALL_CHECKS) - {"contamination", "no_trainable_tokens", "eot_not_trainable",
                                           "prompt_not_prefix", "truncated", "truncated_all_answer",
                                           "template_error"}  # fmt: skip


def test_severity_override(seeded):
    warn_only = write_jsonl(seeded["train"].parent / "warn.jsonl", [(1, CLEAN[0]), (2, LINE[14])])
    assert validate_files([warn_only]).ok  # label_leakage is a warning
    report = validate_files([warn_only], ValidateConfig(severities={"label_leakage": "error"}))
    assert not report.ok
    assert [f.severity for f in report.findings] == ["error"]
    report = validate_files(
        [seeded["train"]],
        ValidateConfig(severities=parse_severities(["schema=info", "role_order=warning"])),
    )
    assert {f.severity for f in report.findings if f.check in ("schema", "role_order")} == {
        "info",
        "warning",
    }
    rows = {
        r["check"]: r
        for r in validate_files([warn_only], ValidateConfig(severities={"pii": "error"})).summary()
    }
    assert rows["pii"]["severity"] == "error"  # shown re-graded even when it passes


@pytest.mark.parametrize("spec", ["nope=error", "pii=fatal", "pii"])
def test_bad_severity_spec(spec):
    with pytest.raises(ValueError):
        parse_severities([spec])


def test_missing_file_is_an_input_error(tmp_path):
    from tuneloop.data.io import DataError

    with pytest.raises(DataError, match="no such file"):
        validate_files([tmp_path / "absent.jsonl"])


def test_system_prompt_inconsistent(tmp_path):
    def with_system(text, i):
        sys_turn = [{"role": "system", "content": text}] if text else []
        return conv(*sys_turn, *CLEAN[i]["messages"])

    lines = [(1, with_system("Be brief.", 0)), (2, with_system("Be brief.", 1)), (3, with_system("Be verbose.", 2)),
             (4, with_system("Be brief.", 3)), (5, with_system(None, 4)), (6, with_system("Be brief.", 5))]  # fmt: skip
    report = validate_files([write_jsonl(tmp_path / "s.jsonl", lines)])
    assert found(report, tmp_path) == {("s.jsonl", "system_prompt_inconsistent", 3),
                                       ("s.jsonl", "system_prompt_inconsistent", 5)}  # fmt: skip
    assert "4 of 6" in report.findings[0].message
    assert report.stats["system_prompts"][str(tmp_path / "s.jsonl")] == {
        "records": 6,
        "distinct": 3,
        "majority": 4,
    }
    # no majority prompt: a mixture, left alone
    mixed = [(1, with_system("A.", 0)), (2, with_system("B.", 1)), (3, with_system(None, 2))]
    assert validate_files([write_jsonl(tmp_path / "m.jsonl", mixed)]).findings == []


def test_length_bias(tmp_path):
    """12 pairs, chosen longer in 10: share 10/12 = 83% (outside 40-60%); each chosen is
    10 chars vs 5 rejected (ratio 2) except two where chosen has 5 vs 10 (ratio 0.5):
    mean ratio (10 * 2 + 2 * 0.5) / 12 = 21 / 12 = 1.75."""
    long_, short = "abcdefghij", "vwxyz"
    pairs = []
    for i in range(12):
        c, r = (long_, short) if i < 10 else (short, long_)
        pairs.append((i + 1, {"prompt": [user(f"Question {'abcdefghijkl'[i]}?")],
                              "chosen": [assistant(c)], "rejected": [assistant(r)]}))  # fmt: skip
    path = write_jsonl(tmp_path / "p.jsonl", pairs)
    report = validate_files([path])
    assert found(report, tmp_path) == {("p.jsonl", "length_bias", None)}
    assert report.stats["length_bias"][str(path)] == {
        "pairs": 12,
        "chosen_longer_share": 0.8333,
        "mean_length_ratio": 1.75,
    }
    # under 10 pairs the share says nothing: statistics only
    small = validate_files([write_jsonl(tmp_path / "q.jsonl", pairs[:9])])
    assert (
        small.findings == [] and small.stats["length_bias"][str(tmp_path / "q.jsonl")]["pairs"] == 9
    )


# -------------------------------------------------------------------- rendering

MARKER_TEMPLATE = (
    "{% for m in messages %}"
    "{% if 'RAISE' in m['content'] %}{{ raise_exception('marker RAISE') }}{% endif %}"
    "{% if m['role'] == 'assistant' and 'NOEOT' in m['content'] %}"
    "{{ '<|im_start|>assistant\\n' + m['content'] + '\\n' }}"
    "{% else %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{% if 'DOUBLE' in messages[-1]['content'] %}"
    "{{ '<|im_start|>assistant\\n\\n' }}{% else %}{{ '<|im_start|>assistant\\n' }}{% endif %}{% endif %}"
)
"""ChatML that misbehaves on markers: RAISE fails, an assistant NOEOT turn has no
``<|im_end|>``, and after a user DOUBLE turn the generation prompt differs from
the stored assistant header."""


@pytest.fixture(scope="module")
def marker_render(tiny_tokenizer):
    from tuneloop.models.chat_template import render_for_training

    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = MARKER_TEMPLATE
    return functools.partial(render_for_training, tok)


LONG_ANSWER = "The capital of France is Paris. The capital of Italy is Rome. " * 8

RENDER_LINES = [
    (1, CLEAN[0]),
    (2, conv(user("Hello there!"), assistant(LONG_ANSWER))),  # truncated (warning)
    (3, conv(user(LONG_ANSWER), assistant("Rome."))),  # truncated_all_answer
    (4, conv(user("Hi"), {**assistant("Hello"), "weight": 0})),  # no_trainable_tokens
    (5, conv(user("Hi"), assistant("Hello NOEOT"))),  # eot_not_trainable
    (6, conv(user("Hi DOUBLE"), assistant("Hello"))),  # prompt_not_prefix
    (7, conv(user("Hi RAISE"), assistant("Hello"))),  # template_error
    (8, conv(user("Hi RAISE"), user("again"), assistant("Hello"))),  # role_order only: not rendered
    (9, CLEAN[1]),
    (10, {"prompt": [user("Pick a fruit.")], "chosen": [assistant("An apple.")],
          "rejected": [assistant("No NOEOT")]}),  # eot_not_trainable (rejected side)
]  # fmt: skip


def test_rendering_checks(marker_render, tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", RENDER_LINES)
    report = validate_files([path], ValidateConfig(render=marker_render, max_len=64))
    assert found(report, tmp_path) == {
        ("r.jsonl", "truncated", 2), ("r.jsonl", "truncated_all_answer", 3),
        ("r.jsonl", "no_trainable_tokens", 4), ("r.jsonl", "eot_not_trainable", 5),
        ("r.jsonl", "prompt_not_prefix", 6), ("r.jsonl", "template_error", 7),
        ("r.jsonl", "role_order", 8), ("r.jsonl", "eot_not_trainable", 10),
    }  # fmt: skip
    by = {(f.check, f.line): f for f in report.findings}
    assert by["truncated", 2].severity == "warning" and "--max-len 64" in by["truncated", 2].message
    assert by["eot_not_trainable", 10].field == "rejected"
    assert "marker RAISE" in by["template_error", 7].message
    stats = report.stats["rendering"]
    # rendered: lines 1, 2, 9 and line 10's chosen side
    assert (stats["rendered"], stats["truncated"], stats["truncated_pct"]) == (4, 1, 25.0)
    assert stats["tokens"]["max"] == 64


def test_rendering_clean_with_tiny_tokenizer(tiny_tokenizer, tmp_path):
    from tuneloop.models.chat_template import render_for_training

    render = functools.partial(render_for_training, tiny_tokenizer)
    path = write_jsonl(tmp_path / "c.jsonl", list(enumerate([*CLEAN, LINE[20]], start=1)))
    report = validate_files([path], ValidateConfig(render=render))
    assert report.ok and report.findings == []
    stats = report.stats["rendering"]
    assert stats["rendered"] == len(CLEAN) + 1 and stats["truncated"] == 0
    assert stats["trainable_tokens"]["min"] > 0


def test_template_not_incremental_is_reported_as_prompt_not_prefix(tmp_path):
    class NotIncremental(ValueError):
        check = "template_not_incremental"

    def render(messages, tools, max_length):
        raise NotIncremental("turn 1 is rewritten")

    path = write_jsonl(tmp_path / "t.jsonl", [(1, CLEAN[0])])
    report = validate_files([path], ValidateConfig(render=render))
    assert [(f.check, f.message) for f in report.findings] == [
        ("prompt_not_prefix", "turn 1 is rewritten")
    ]


# -------------------------------------------------------------------------- CLI


def tuneloop(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m tuneloop.cli data validate ...``, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "tuneloop.cli", "data", "validate", *map(str, args)],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_cli_exit_codes_and_json(seeded, tmp_path):
    clean = write_jsonl(tmp_path / "clean.jsonl", list(enumerate(CLEAN, start=1)))
    ok = tuneloop(clean)
    assert ok.returncode == 0, ok.stderr
    assert "pass" in ok.stdout and "OK" in ok.stdout

    bad = tuneloop(seeded["train"], seeded["pairs"], "--eval-sets", seeded["eval"], "--json")
    assert bad.returncode == 1, bad.stderr
    data = json.loads(bad.stdout)
    assert data["ok"] is False
    assert {(Path(f["file"]).name, f["check"], f["line"]) for f in data["findings"]} >= {
        ("train.jsonl", "schema", 2), ("train.jsonl", "contamination", 12), ("pairs.jsonl", "pair_identical", 2)
    }  # fmt: skip

    text = tuneloop(seeded["train"])
    assert text.returncode == 1
    assert "FAIL" in text.stdout and f"{seeded['train']}:2" in text.stdout.replace("\n", "")


def test_cli_severity_override(tmp_path):
    path = write_jsonl(tmp_path / "warn.jsonl", [(1, CLEAN[0]), (2, LINE[14])])
    assert tuneloop(path).returncode == 0
    assert tuneloop(path, "--severity", "label_leakage=error").returncode == 1
    bad = tuneloop(path, "--severity", "nope=error")
    assert bad.returncode == 1 and "unknown check 'nope'" in bad.stderr


def test_cli_missing_file(tmp_path):
    result = tuneloop(tmp_path / "absent.jsonl")
    assert result.returncode == 1
    assert "no such file" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_model_renders(tiny_model_dir, tmp_path):
    path = write_jsonl(
        tmp_path / "r.jsonl",
        [(1, CLEAN[0]), (2, conv(user("Hello there!"), assistant(LONG_ANSWER)))],
    )
    result = tuneloop(path, "--model", tiny_model_dir, "--max-len", 64, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["stats"]["rendering"]["truncated"] == 1
    assert [(f["check"], f["line"]) for f in data["findings"]] == [("truncated", 2)]


@pytest.mark.integration
def test_cli_default_model_renders(default_model_dir, tmp_path):
    path = write_jsonl(tmp_path / "clean.jsonl", list(enumerate(CLEAN, start=1)))
    result = tuneloop(path, "--model", default_model_dir, "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["stats"]["rendering"]["rendered"] == len(CLEAN)
