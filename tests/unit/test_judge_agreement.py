"""Judge-human agreement over an annotation store: the judge judges each human-judged
pair in both orders and is compared with the human majority (percent and kappa)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tuneloop.annotate import AnnotationStore
from tuneloop.annotate.agreement import judge_agreement
from tuneloop.cli import app
from tuneloop.runtime.backends.fake import FakeModel


def content_judge(messages, config) -> str:
    """Prefers the answer containing GOOD wherever it appears; else says tie."""
    text = messages[-1]["content"]
    a_part = text.split("[Assistant A's answer]")[-1].split("[End of Assistant A's answer]")[0]
    b_part = text.split("[Assistant B's answer]")[-1].split("[End of Assistant B's answer]")[0]
    if "GOOD" in a_part:
        return "[[A]]"
    return "[[B]]" if "GOOD" in b_part else "[[C]]"


@pytest.fixture
def store(tmp_path: Path) -> AnnotationStore:
    s = AnnotationStore(tmp_path / "ann.db")
    # human majority: a, b, a (the judge says tie: a disagreement), tie; one split (left out)
    items = [("q1", "GOOD one", "bad"), ("q2", "bad", "GOOD two"), ("q3", "fine", "also fine"),
             ("q4", "same", "same too"), ("q5", "x", "y")]  # fmt: skip
    votes = [["a", "a"], ["b", "b", "a"], ["a"], ["tie"], ["a", "b"]]
    for (prompt, a, b), vs in zip(items, votes, strict=True):
        iid = s.add_pair(prompt, a, b)
        for k, v in enumerate(vs):
            s.record(iid, f"ann{k}", v, "a")
    return s


def test_judge_agreement_against_the_human_majority(store: AnnotationStore) -> None:
    report = judge_agreement(store, FakeModel(content_judge, repeat_last=True))
    assert report["n"] == 4  # the split item has no majority
    # judge: a, b, tie, tie vs human a, b, a, tie -> 3/4 agree
    assert report["agreement"] == 0.75
    # kappa: p_o = 3/4; judge marginals a 1/4 b 1/4 tie 2/4; human a 2/4 b 1/4 tie 1/4
    # p_e = 2/16 + 1/16 + 2/16 = 5/16; kappa = (12/16 - 5/16) / (11/16) = 7/11
    assert report["kappa"] == pytest.approx(7 / 11)
    assert {i["human"] for i in report["items"]} == {"a", "b", "tie"}


def test_cli_reports_agreement_and_fails_without_a_store(
    tmp_path: Path, store, monkeypatch
) -> None:
    from tuneloop.runtime.backends import local

    monkeypatch.setattr(local.LocalEngine, "from_ref",
                        classmethod(lambda cls, ref, **kw: FakeModel(content_judge, repeat_last=True)))  # fmt: skip
    result = CliRunner().invoke(app, ["annotate", "judge-agreement", "--judge", "x", "--db",
                                      str(store.path), "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["agreement"] == 0.75
    missing = CliRunner().invoke(app, ["annotate", "judge-agreement", "--judge", "x", "--db",
                                       str(tmp_path / "none.db")])  # fmt: skip
    assert missing.exit_code != 0 and "no annotation store" in missing.output
