"""Annotation: store, blind judging API, token auth, escaping, export + agreement, sampling, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tuneloop.annotate import (
    AnnotationStore,
    cohen_kappa,
    create_app,
    jaccard,
    majority,
    queue_samples,
    sample_for_annotation,
    shown_left,
)
from tuneloop.cli import app as cli_app
from tuneloop.runtime.assistant import Assistant
from tuneloop.runtime.backends.fake import FakeModel
from tuneloop.runtime.tools import ToolRegistry
from tuneloop.tracing import TraceSink, TraceStore
from tuneloop.train.preference_data import read_preference_records

PROMPT = [{"role": "user", "content": "Capital of France?"}]


@pytest.fixture
def store(tmp_path) -> AnnotationStore:
    return AnnotationStore(tmp_path / "ann.db")


def add_items(store: AnnotationStore, n: int) -> list[str]:
    return [
        store.add_pair(f"question {i}?", f"answer one {i}", f"answer two {i}") for i in range(n)
    ]


def judge(client, iid, annotator, choice, seed=0, **extra):
    body = {"item_id": iid, "annotator": annotator, "choice": choice,
            "shown_left": shown_left(seed, iid, annotator), **extra}  # fmt: skip
    return client.post("/api/judge", json=body)


# ------------------------------------------------------------------ store


def test_add_pair_is_idempotent_and_next_item_orders_by_priority(store):
    first = store.add_pair(PROMPT, "Paris.", "Lyon.")
    assert store.add_pair(PROMPT, "Paris.", "Lyon.") == first
    assert store.progress("ann") == (0, 1)
    urgent = store.add_pair(PROMPT, "Paris!", "Nice.", priority=5)
    assert store.next_item("ann").id == urgent
    store.record(urgent, "ann", "a", "b")
    assert store.next_item("ann").id == first
    assert store.next_item("bob").id == urgent  # judged by someone else only
    assert store.progress("ann") == (1, 2)


def test_import_pairs_reports_bad_rows_with_file_line_and_keeps_good_ones(store, tmp_path):
    path = tmp_path / "pairs.jsonl"
    good = {"prompt": PROMPT, "responses": ["Paris.", [{"role": "assistant", "content": "Lyon."}]]}
    path.write_text("\n".join([
        json.dumps(good),
        "{not json",
        json.dumps({"prompt": PROMPT, "responses": ["only one"]}),
        json.dumps({"prompt": PROMPT, "responses": ["x", [{"role": "user", "content": "y"}]]}),
        json.dumps({**good, "responses": ["Rome.", "Madrid."]}),
    ]) + "\n")  # fmt: skip
    report = store.import_pairs_jsonl(path)
    assert (report.added, report.existing, len(report.errors)) == (2, 0, 3)
    assert report.errors[0].startswith(f"{path}:2: invalid JSON")
    assert report.errors[1].startswith(f"{path}:3: ") and "exactly two" in report.errors[1]
    assert report.errors[2].startswith(f"{path}:4: ") and "assistant" in report.errors[2]
    again = store.import_pairs_jsonl(path)
    assert (again.added, again.existing) == (0, 2)


# ------------------------------------------------------------------ app


def test_sides_are_seeded_and_roughly_balanced(store):
    ids = add_items(store, 200)
    sides = [shown_left(7, i, "alice") for i in ids]
    assert sides == [shown_left(7, i, "alice") for i in ids]
    assert 70 <= sides.count("b") <= 130
    assert [shown_left(7, i, "bob") for i in ids] != sides  # per annotator too
    app = create_app(store, seed=7)
    assert app.state.shown_left(ids[0], "alice") == sides[0]


def test_judge_converts_displayed_side_to_canonical_verdict(store):
    ids = add_items(store, 40)
    client = TestClient(create_app(store, seed=0))
    b_left = next(i for i in ids if shown_left(0, i, "ann") == "b")
    a_left = next(i for i in ids if shown_left(0, i, "ann") == "a")
    r = judge(client, b_left, "ann", "left", tags=["correct"], note="fine")
    assert r.status_code == 200 and r.json()["verdict"] == "b"
    assert judge(client, a_left, "ann", "right").json()["verdict"] == "b"
    j = store.judgements(b_left)[0]
    assert (j.verdict, j.shown_left, j.tags, j.note) == ("b", "b", ["correct"], "fine")
    assert judge(client, b_left, "ann", "left").status_code == 409  # judged once only


def test_compare_page_serves_the_seeded_side_and_progress(store):
    iid = store.add_pair(PROMPT, "RESPONSE-A", "RESPONSE-B")
    client = TestClient(create_app(store, seed=3))
    page = client.get("/compare", params={"annotator": "ann"}).text
    left = shown_left(3, iid, "ann")
    first, second = ("RESPONSE-A", "RESPONSE-B") if left == "a" else ("RESPONSE-B", "RESPONSE-A")
    assert page.index(first) < page.index(second)
    assert "0 / 1" in page
    judge(client, iid, "ann", "tie", seed=3)
    done = client.get("/compare", params={"annotator": "ann"}).text
    assert "All done" in done and "1 / 1" in done


def test_shown_left_mismatch_and_malformed_requests_are_rejected(store):
    (iid,) = add_items(store, 1)
    client = TestClient(create_app(store, seed=0))
    wrong = "a" if shown_left(0, iid, "ann") == "b" else "b"
    ok = {
        "item_id": iid,
        "annotator": "ann",
        "choice": "left",
        "shown_left": shown_left(0, iid, "ann"),
    }
    for body, status in [
        ({**ok, "shown_left": wrong}, 400),
        ({**ok, "item_id": "nope"}, 404),
        ({**ok, "choice": "up"}, 422),
        ({k: v for k, v in ok.items() if k != "annotator"}, 422),
        ({**ok, "annotator": "  "}, 400),
        ({**ok, "note": "x" * 10_001}, 422),
    ]:  # fmt: skip
        r = client.post("/api/judge", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["error"]
    assert (
        client.post(
            "/api/judge", content=b"{nope", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    assert client.get("/compare").status_code == 400
    assert store.judgements() == []


def test_token_is_required_by_query_cookie_or_bearer(store):
    client = TestClient(create_app(store, token="s3cret"))
    assert client.get("/").status_code == 401
    assert client.get("/", params={"token": "wrong"}).status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    fresh = TestClient(create_app(store, token="s3cret"))
    assert fresh.get("/", params={"token": "s3cret"}).status_code == 200
    assert fresh.get("/compare", params={"annotator": "a"}).status_code == 200  # by cookie now
    assert (
        TestClient(create_app(store, token="s3cret")).post("/api/judge", json={}).status_code == 401
    )


def test_model_text_is_html_escaped(store):
    store.add_pair("<b>hi</b>", "<script>alert(1)</script>", "fine")
    page = TestClient(create_app(store)).get("/compare", params={"annotator": "<img src=x>"}).text
    assert (
        "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    )
    assert "<b>hi</b>" not in page and "<img src=x>" not in page


def _failed_trace(db: Path) -> str:
    sink = TraceSink(db)
    result = Assistant(FakeModel("I don't know."), ToolRegistry([]), sink=sink).run(
        "Capital of France?"
    )
    sink.close()
    return result.run_id


def test_queue_correction_reaches_trace_feedback(store, tmp_path):
    db = tmp_path / "traces.db"
    trace_id = _failed_trace(db)
    queue = tmp_path / "annotation_queue.jsonl"
    queue.write_text(json.dumps({"trace_id": trace_id, "model": "fake", "reasons": ["thumbs_down"],
                                 "prompt": PROMPT, "outputs": ["I don't know."], "answer": None,
                                 "errors": ["<oops>"]}) + "\n")  # fmt: skip
    assert store.import_queue(queue).added == 1
    traces = TraceStore(db)
    client = TestClient(create_app(store, trace_store=traces))
    page = client.get("/queue", params={"annotator": "ann"}).text
    assert "I don&#x27;t know." in page and "&lt;oops&gt;" in page
    (item,) = [store.next_item("ann", "queue")]
    r = client.post("/api/queue", data={"item_id": item.id, "annotator": "ann", "action": "correct",
                                        "correction": "Paris."}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    (fb,) = traces.feedback_for(trace_id)
    assert (fb.correction, fb.annotator, fb.tags) == ("Paris.", "ann", ["thumbs_down"])
    assert store.progress("ann", "queue") == (1, 1)
    assert "Trace" in client.get(f"/traces/{trace_id}").text
    r = client.post(f"/traces/{trace_id}/feedback", data={"rating": "up", "tags": "good, short"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and traces.feedback_for(trace_id)[-1].tags == ["good", "short"]
    assert client.post(f"/traces/{trace_id}/feedback", data={}).status_code == 400


# ------------------------------------------------------------------ export + agreement


def test_majority_and_kappa_by_hand():
    assert majority(["a", "a", "b"]) == "a"
    assert majority(["a", "b"]) is None
    assert majority(["skip", "tie"]) == "tie"
    raw, kappa = cohen_kappa([("a", "a"), ("a", "b"), ("b", "b"), ("tie", "tie")])
    assert raw == pytest.approx(3 / 4) and kappa == pytest.approx(7 / 11)  # docstring working


def test_export_majority_ties_splits_and_agreement(store, tmp_path):
    """Items (alice, bob, carol): i0 a,a,b -> chosen a; i1 b,b -> chosen b; i2 tie,tie -> tie;
    i3 a,b -> split; i4 skip -> skipped.

    Comparisons (alice, bob): i0 (a,a) i1 (b,b) i2 (tie,tie) i3 (a,b); (alice, carol): i0 (a,b);
    (bob, carol): i0 (a,b). 6 pairs, 3 agree: raw 1/2. First-rater marginals a 4, b 1, tie 1;
    second a 1, b 4, tie 1: p_e = (4*1 + 1*4 + 1*1) / 36 = 1/4; kappa = (1/2 - 1/4) / (3/4) = 1/3.
    """
    ids = add_items(store, 5)
    votes = {0: {"alice": "a", "bob": "a", "carol": "b"}, 1: {"alice": "b", "bob": "b"},
             2: {"alice": "tie", "bob": "tie"}, 3: {"alice": "a", "bob": "b"}, 4: {"alice": "skip"}}  # fmt: skip
    for i, by in votes.items():
        for who, verdict in by.items():
            store.record(ids[i], who, verdict, "a")
    out = tmp_path / "prefs.jsonl"
    report = store.export_pairs(out)
    assert (report.written, report.ties, report.splits, report.skipped) == (2, 1, 1, 1)
    assert report.agreement.items == 4 and report.agreement.pairs == 6
    assert report.agreement.raw == pytest.approx(1 / 2)
    assert report.agreement.kappa == pytest.approx(1 / 3)
    records = {r.metadata.item_id: r for _, r in read_preference_records([out], labeled=False)}
    assert records[ids[0]].chosen[0].content == "answer one 0"
    assert records[ids[1]].chosen[0].content == "answer two 1"
    assert records[ids[1]].rejected[0].content == "answer one 1"
    meta = records[ids[0]].metadata
    assert meta.source == "tuneloop-annotate" and meta.annotators == ["alice", "bob", "carol"]
    assert meta.votes == {"alice": "a", "bob": "a", "carol": "b"}


# ------------------------------------------------------------------ sampling


def test_sampling_ranks_disagreeing_prompt_above_agreeing_one(store):
    def respond(messages, config):
        if "agree" in messages[-1]["content"]:
            return "Paris is the capital."
        return ["Paris.", "It is Lyon, I think", "no idea at all", "Marseille maybe"][config.seed]

    prompts = [[{"role": "user", "content": "agree please"}], [{"role": "user", "content": "vary"}]]
    sampled = sample_for_annotation(FakeModel(respond, repeat_last=True), prompts, n=4, seed=0)
    assert sampled[0].disagreement == 0 and sampled[1].disagreement > 0.8
    ids = queue_samples(store, sampled, top=5)
    assert len(ids) == 1  # the agreeing prompt has nothing to compare
    item = store.next_item("ann")
    assert item.prompt == prompts[1] and item.priority == pytest.approx(sampled[1].uncertainty)


def test_schema_failures_add_to_uncertainty():
    outs = ['{"n": 1}', '{"n": 1}', "not json", '{"n": "x"}']
    model = FakeModel(lambda m, c: outs[c.seed], repeat_last=True)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    (s,) = sample_for_annotation(model, [PROMPT], n=4, schema=schema)
    assert s.schema_failure_rate == 0.5
    assert s.uncertainty == pytest.approx(s.disagreement + 0.5)
    assert jaccard("the cat sat", "the dog sat") == 0.5


# ------------------------------------------------------------------ CLI


def test_cli_refuses_public_host_without_token(tmp_path, monkeypatch):
    monkeypatch.delenv("TUNELOOP_ANNOTATE_TOKEN", raising=False)
    r = CliRunner().invoke(
        cli_app, ["annotate", "--db", str(tmp_path / "a.db"), "--host", "0.0.0.0"]
    )
    assert r.exit_code == 1 and "--token" in r.output


def test_cli_export(store, tmp_path):
    ids = add_items(store, 2)
    store.record(ids[0], "alice", "b", "a")
    store.record(ids[0], "bob", "b", "b")
    out = tmp_path / "out.jsonl"
    r = CliRunner().invoke(cli_app, ["annotate", "export", "-o", str(out), "--db", str(store.path)])
    assert r.exit_code == 0, r.output
    assert "wrote 1 pair(s)" in r.output and "100.0% raw" in r.output
    r = CliRunner().invoke(
        cli_app, ["annotate", "export", "-o", str(out), "--db", str(store.path), "--json"]
    )
    assert json.loads(r.output)["written"] == 1
    assert len(read_preference_records([out], labeled=False)) == 1


def test_cli_sample_queues_the_uncertain_prompt(store, tmp_path, monkeypatch):
    from tuneloop.runtime.backends import local

    replies = ["Paris.", "Lyon, I think", "no idea", "Marseille maybe"]
    model = FakeModel(lambda m, c: replies[c.seed], repeat_last=True)
    monkeypatch.setattr(local.LocalEngine, "from_ref", classmethod(lambda cls, ref: model))
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Capital of France?"}) + "\n"
                       + json.dumps({"messages": PROMPT}) + "\n")  # fmt: skip
    r = CliRunner().invoke(cli_app, ["annotate", "sample", "--model", "m", "--prompts", str(prompts),
                                     "--top", "1", "--db", str(store.path)])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "queued 1 comparison(s)" in r.output and store.progress("x") == (0, 1)
    prompts.write_text('{"prompt": 3}\n')
    r = CliRunner().invoke(
        cli_app, ["annotate", "sample", "--model", "m", "--prompts", str(prompts)]
    )
    assert r.exit_code == 1 and f"{prompts}:1" in r.output
