"""Layers C and D of the scorecard and Python tasks, on scripted models: the assistant
solver runs real tools, agent_success grades what ran, attempts give pass@k / pass^k,
pairwise tasks judge both orders against a baseline, rubric grading, paired comparison
with a baseline, and the scorecard errors of the new fields."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tuneloop.data.records import EvalSample
from tuneloop.eval.agent import agent_success
from tuneloop.eval.runner import compare, run_scorecard
from tuneloop.eval.scoring import Completion
from tuneloop.eval.stats import pass_at_k, pass_hat_k
from tuneloop.eval.tasks import ScorecardError, load_samples, load_scorecard, task
from tuneloop.runtime.backends.fake import FakeModel

CALC = "What is 37 * 91 + 5?"


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def sample(**kw) -> EvalSample:
    return EvalSample.model_validate({"id": "s", "input": [{"role": "user", "content": "q"}], **kw})


# ----------------------------------------------------------------------- agent_success


def test_agent_success_needs_the_tool_to_have_run() -> None:
    s = sample(target="3372", metadata={"expected_tools": ["calculator"]})
    ran = [
        {"name": "calculator", "arguments": {"expression": "37*91+5"}, "ok": True, "result": "3372"}
    ]
    assert agent_success(s, Completion(text="It is 3,372.", tool_calls=ran)).passed
    # The right number without running the tool is not task success.
    assert not agent_success(s, Completion(text="It is 3372.")).passed
    failed_call = [{**ran[0], "ok": False}]
    assert not agent_success(s, Completion(text="3372", tool_calls=failed_call)).passed
    assert not agent_success(s, Completion(text="It is 3371.", tool_calls=ran)).passed
    assert not agent_success(
        s, Completion(text="3372", tool_calls=ran, error="MaxStepsError")
    ).passed


def test_agent_success_text_targets_forbidden_tools_and_call_limits() -> None:
    s = sample(target=["Birch hall"], metadata={"expected_tools": ["read_file"],
               "forbidden_tools": ["calculator"], "max_tool_calls": 1})  # fmt: skip
    read = {"name": "read_file", "arguments": {"path": "x"}, "ok": True, "result": "..."}
    assert agent_success(
        s, Completion(text="Lunch is in the birch Hall.", tool_calls=[read])
    ).passed
    assert not agent_success(s, Completion(text="In the Birchwood", tool_calls=[read])).passed
    attempted_calc = [{"name": "calculator", "arguments": None, "rejected": "not_allowed"}]
    assert not agent_success(s, Completion(text="Birch hall", tool_calls=[read],
                                           attempted_tool_calls=attempted_calc)).passed  # fmt: skip
    assert not agent_success(s, Completion(text="Birch hall", tool_calls=[read, read])).passed
    with pytest.raises(ValueError, match="target"):
        agent_success(sample(metadata={"expected_tools": ["x"]}), Completion(text=""))
    with pytest.raises(ValueError, match="expected_tools"):
        agent_success(sample(target="1", metadata={"expected_tools": 3}), Completion(text=""))


# ----------------------------------------------------------------------- assistant solver


def calculator_agent(messages, config) -> str:
    """Calls the calculator on the first step, then answers with the tool's result."""
    last = messages[-1]
    if last["role"] == "tool":
        return f"The answer is {last['content']}."
    return (
        '<tool_call>{"name": "calculator", "arguments": {"expression": "37 * 91 + 5"}}</tool_call>'
    )


def test_assistant_solver_runs_the_tool_and_agent_success_passes(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "agent.jsonl", [
        {"id": "a1", "input": [{"role": "user", "content": CALC}], "target": "3372",
         "metadata": {"expected_tools": ["calculator"], "category": "calc"}},
    ])  # fmt: skip
    (tmp_path / "card.yaml").write_text(
        "name: agent\ntasks:\n  - name: agent\n    layer: D\n    files: [agent.jsonl]\n"
        "    scorers: [agent_success]\n    solver: assistant\n    tools: [calculator]\n"
        "    attempts: 3\n    temperature: 0.5\n    pass_k: [1, 3]\n"
    )
    card = load_scorecard(tmp_path / "card.yaml")
    model = FakeModel(calculator_agent, repeat_last=True)
    results = run_scorecard(card, model, out_dir=tmp_path / "out", cache=None)
    entry = results["tasks"]["agent"]
    row = entry["samples"][0]
    assert row["output"] == "The answer is 3372."
    assert row["tool_calls"][0]["name"] == "calculator" and row["tool_calls"][0]["result"] == "3372"
    assert len(row["attempts"]) == 3
    assert entry["metrics"]["agent_success"]["mean"] == 1.0
    assert entry["metrics"]["pass@3"]["mean"] == 1.0 and entry["metrics"]["pass^3"]["mean"] == 1.0
    # Attempt i samples with seed + i: each call carried its own seed.
    seeds = {c[1].seed for c in model.calls}
    assert seeds == {0, 1, 2}


def flaky_agent(messages, config) -> str:
    """Passes on even seeds only: 2 of 4 attempts (seeds 0..3)."""
    last = messages[-1]
    if last["role"] == "tool":
        return f"The answer is {last['content']}." if config.seed % 2 == 0 else "No idea."
    return (
        '<tool_call>{"name": "calculator", "arguments": {"expression": "37 * 91 + 5"}}</tool_call>'
    )


def test_pass_at_k_and_pass_hat_k_come_from_the_attempts(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "agent.jsonl", [
        {"id": "a1", "input": [{"role": "user", "content": CALC}], "target": "3372",
         "metadata": {"expected_tools": ["calculator"]}},
    ])  # fmt: skip
    (tmp_path / "card.yaml").write_text(
        "name: flaky\ntasks:\n  - name: agent\n    layer: D\n    files: [agent.jsonl]\n"
        "    scorers: [agent_success]\n    solver: assistant\n    tools: [calculator]\n"
        "    attempts: 4\n    temperature: 1.0\n    pass_k: [1, 2, 4]\n"
    )
    results = run_scorecard(load_scorecard(tmp_path / "card.yaml"),
                            FakeModel(flaky_agent, repeat_last=True), out_dir=tmp_path / "o",
                            cache=None)  # fmt: skip
    metrics = results["tasks"]["agent"]["metrics"]
    # n=4, c=2: pass@1 = 0.5, pass@2 = 1 - C(2,2)/C(4,2) = 5/6, pass^2 = C(2,2)/C(4,2) = 1/6.
    assert metrics["agent_success"]["mean"] == 0.5
    assert math.isclose(metrics["pass@1"]["mean"], 0.5)
    assert math.isclose(metrics["pass@2"]["mean"], 5 / 6) and math.isclose(
        pass_at_k(4, 2, 2), 5 / 6
    )
    assert math.isclose(metrics["pass^2"]["mean"], 1 / 6) and math.isclose(
        pass_hat_k(4, 2, 2), 1 / 6
    )
    assert metrics["pass@4"]["mean"] == 1.0 and metrics["pass^4"]["mean"] == 0.0
    row = results["tasks"]["agent"]["samples"][0]
    assert row["scores"]["agent_success"]["passed"] is False  # not every attempt passed
    assert "(2/4 attempts passed)" in row["scores"]["agent_success"]["explanation"]


def test_the_assistant_solver_enforces_the_sample_schema(tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    write_jsonl(tmp_path / "s.jsonl", [
        {"id": "j1", "input": [{"role": "user", "content": "Capital of France as JSON"}],
         "schema": schema, "target": {"city": "Paris"}},
    ])  # fmt: skip
    (tmp_path / "card.yaml").write_text(
        "name: schema\ntasks:\n  - name: schema\n    layer: A\n    files: [s.jsonl]\n"
        "    scorers: [json_schema]\n    solver: assistant\n"
    )
    # First answer is not JSON; the repair loop feeds the error back and the second passes.
    model = FakeModel(["Paris!", '{"city": "Paris"}'])
    results = run_scorecard(load_scorecard(tmp_path / "card.yaml"), model,
                            out_dir=tmp_path / "o", cache=None)  # fmt: skip
    row = results["tasks"]["schema"]["samples"][0]
    assert json.loads(row["output"]) == {"city": "Paris"}
    assert row["scores"]["json_schema"]["passed"] is True
    assert len(model.calls) == 2


# ----------------------------------------------------------------------- layer C


OPEN = [{"id": f"o{i}", "input": [{"role": "user", "content": f"Question {i}"}],
         "reference": "ref", "metadata": {"category": "open"}} for i in range(4)]  # fmt: skip


def judged_card(tmp_path: Path, mode: str) -> Path:
    write_jsonl(tmp_path / "open.jsonl", OPEN)
    path = tmp_path / f"{mode}.yaml"
    path.write_text(f"name: judged\ntasks:\n  - name: {mode}\n    layer: C\n    files: [open.jsonl]\n"
                    f"    judge: {{mode: {mode}}}\n")  # fmt: skip
    return path


def content_judge(messages, config) -> str:
    """Prefers the answer containing GOOD, wherever it is placed."""
    text = messages[-1]["content"]
    a_part = text.split("[Assistant A's answer]")[-1].split("[End of Assistant A's answer]")[0]
    return "[[A]]" if "GOOD" in a_part else "[[B]]"


def test_pairwise_task_judges_both_orders_against_the_baseline(tmp_path: Path) -> None:
    card = load_scorecard(judged_card(tmp_path, "pairwise"))
    model = FakeModel(lambda m, c: "GOOD answer" if m[-1]["content"] != "Question 3" else "meh",
                      repeat_last=True)  # fmt: skip
    baseline = FakeModel(lambda m, c: "plain answer" if m[-1]["content"] != "Question 3" else "GOOD",
                         repeat_last=True)  # fmt: skip
    results = run_scorecard(card, model, out_dir=tmp_path / "o", cache=None, baseline=baseline,
                            judge=FakeModel(content_judge, repeat_last=True))  # fmt: skip
    entry = results["tasks"]["pairwise"]
    outcomes = [s["scores"]["win_rate"]["value"] for s in entry["samples"]]
    assert outcomes == [1.0, 1.0, 1.0, 0.0]
    assert entry["metrics"]["win_rate"]["mean"] == 0.75
    assert entry["pairwise"]["wins"] == 3 and entry["pairwise"]["losses"] == 1
    assert entry["samples"][0]["baseline_output"] == "plain answer"
    assert "win rate" in (tmp_path / "o" / "report.html").read_text()


def test_a_judge_that_always_prefers_position_a_yields_only_ties(tmp_path: Path) -> None:
    card = load_scorecard(judged_card(tmp_path, "pairwise"))
    results = run_scorecard(card, FakeModel(["x"], repeat_last=True), out_dir=tmp_path / "o",
                            cache=None, baseline=FakeModel(["y"], repeat_last=True),
                            judge=FakeModel(["[[A]]"], repeat_last=True))  # fmt: skip
    entry = results["tasks"]["pairwise"]
    assert {s["scores"]["win_rate"]["value"] for s in entry["samples"]} == {0.5}
    assert entry["pairwise"]["ties"] == 4


def test_pairwise_without_a_baseline_is_skipped_with_a_reason(tmp_path: Path) -> None:
    card = load_scorecard(judged_card(tmp_path, "pairwise"))
    results = run_scorecard(card, FakeModel(["x"], repeat_last=True), out_dir=tmp_path / "o",
                            cache=None)  # fmt: skip
    entry = results["tasks"]["pairwise"]
    assert "baseline" in entry["skipped"] and entry["metrics"] == {} and entry["n"] == 0


def test_rubric_grades_and_invalid_judge_outputs_are_errors_not_zeros(tmp_path: Path) -> None:
    card = load_scorecard(judged_card(tmp_path, "rubric"))
    ratings = iter(["Rating: [[10]]", "Rating: [[4]]", "no idea", "Rating: [[1]]"])
    judge = FakeModel(lambda m, c: next(ratings), repeat_last=True)
    results = run_scorecard(card, FakeModel(["answer"], repeat_last=True), out_dir=tmp_path / "o",
                            cache=None, judge=judge)  # fmt: skip
    entry = results["tasks"]["rubric"]
    assert entry["errors"] == 1
    assert math.isclose(entry["metrics"]["rubric"]["mean"], (1.0 + 3 / 9 + 0.0) / 3)
    assert entry["samples"][2]["scores"]["rubric"]["explanation"].startswith("error: ")
    assert results["judge"]["name"] == judge.name


# ----------------------------------------------------------------------- baseline comparison


def test_a_baseline_run_gives_paired_differences(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "m.jsonl", [
        {"id": f"m{i}", "input": [{"role": "user", "content": f"{i}+1"}], "target": str(i + 1)}
        for i in range(6)
    ])  # fmt: skip
    (tmp_path / "card.yaml").write_text("name: math\ntasks:\n  - name: math\n    layer: A\n"
                                        "    files: [m.jsonl]\n    scorers: [exact_match]\n")  # fmt: skip
    good = FakeModel(lambda m, c: str(int(m[-1]["content"].split("+")[0]) + 1), repeat_last=True)
    bad = FakeModel(lambda m, c: "0", repeat_last=True)
    results = run_scorecard(load_scorecard(tmp_path / "card.yaml"), good, out_dir=tmp_path / "o",
                            cache=None, baseline=bad)  # fmt: skip
    diff = results["comparison"]["math/exact_match"]
    assert diff["candidate"] == 1.0 and diff["baseline"] == 0.0 and diff["difference"] == 1.0
    assert diff["low"] == 1.0 and diff["n"] == 6
    baseline = json.loads((tmp_path / "o" / "baseline" / "results.json").read_text())
    assert baseline["tasks"]["math"]["metrics"]["exact_match"]["mean"] == 0.0
    assert "Candidate vs baseline" in (tmp_path / "o" / "report.html").read_text()
    # Results without shared sample ids compare nothing.
    other = {"tasks": {"math": {"metrics": {"exact_match": {}}, "samples": []}}}
    assert compare(results, other) == {}


# ----------------------------------------------------------------------- Python tasks, errors


@task("tests.doubling")
def doubling() -> list[dict]:
    return [{"id": f"d{i}", "input": [{"role": "user", "content": f"double {i}"}],
             "target": str(2 * i)} for i in range(3)]  # fmt: skip


def test_python_task_by_name(tmp_path: Path) -> None:
    (tmp_path / "card.yaml").write_text("name: py\ntasks:\n  - name: dbl\n    layer: A\n"
                                        "    python: tests.doubling\n    scorers: [numeric_match]\n")  # fmt: skip
    card = load_scorecard(tmp_path / "card.yaml")
    assert [s.id for s in load_samples(card.tasks[0])] == ["d0", "d1", "d2"]
    model = FakeModel(lambda m, c: str(2 * int(m[-1]["content"].split()[-1])), repeat_last=True)
    results = run_scorecard(card, model, out_dir=tmp_path / "o", cache=None)
    assert results["tasks"]["dbl"]["metrics"]["numeric_match"]["mean"] == 1.0


def test_imports_register_tasks_and_scorers_from_a_py_file(tmp_path: Path) -> None:
    (tmp_path / "mytasks.py").write_text(
        "from tuneloop.eval import Score, scorer, task\n"
        "@scorer('tests.always_yes')\n"
        "def yes(sample, completion):\n    return Score.binary(completion.text == 'yes')\n"
        "@task('tests.yes_task')\n"
        "def yes_task():\n"
        "    return [{'id': 'y', 'input': [{'role': 'user', 'content': 'say yes'}]}]\n"
    )
    (tmp_path / "card.yaml").write_text("name: py\nimports: [mytasks.py]\ntasks:\n  - name: y\n"
                                        "    layer: A\n    python: tests.yes_task\n"
                                        "    scorers: [tests.always_yes]\n")  # fmt: skip
    card = load_scorecard(tmp_path / "card.yaml")
    results = run_scorecard(card, FakeModel(["yes"]), out_dir=tmp_path / "o", cache=None)
    assert results["tasks"]["y"]["metrics"]["tests.always_yes"]["mean"] == 1.0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    layer: A\n    scorers: [exact_match]\n", "exactly one of files, python or lm_eval"),
        ("    layer: C\n    files: [x.jsonl]\n", "layer C needs judge"),
        ("    layer: A\n    files: [x.jsonl]\n    scorers: [exact_match]\n    judge: {mode: rubric}\n",
         "judge goes with layer C"),
        ("    layer: A\n    files: [x.jsonl]\n    scorers: [exact_match]\n    tools: [calculator]\n",
         "solver: assistant"),
        ("    layer: D\n    files: [x.jsonl]\n    scorers: [agent_success]\n    attempts: 2\n"
         "    pass_k: [3]\n", "outside 1..attempts"),
        ("    layer: A\n    python: nope\n    scorers: [exact_match]\n", "unknown task 'nope'"),
        ("    layer: D\n    files: [x.jsonl]\n    scorers: [agent_success]\n    solver: assistant\n"
         "    tools_root: missing-folder\n", "tasks[0].tools_root: 'missing-folder' is not a folder"),
    ],
)  # fmt: skip
def test_scorecard_errors_name_the_field(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "x.jsonl").write_text("")
    path = tmp_path / "card.yaml"
    path.write_text("name: bad\ntasks:\n  - name: t\n" + body)
    with pytest.raises(
        ScorecardError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
    ) as err:
        load_scorecard(path)
    assert str(path) in str(err.value)


def test_a_bad_import_names_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "card.yaml"
    path.write_text("name: bad\nimports: [no_such_module_xyz]\ntasks:\n  - name: t\n    layer: A\n"
                    "    python: x\n    scorers: [exact_match]\n")  # fmt: skip
    with pytest.raises(ScorecardError, match=r"imports\[0\]: cannot import 'no_such_module_xyz'"):
        load_scorecard(path)
