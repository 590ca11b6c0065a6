"""``tuneloop annotate``: serve the annotation app; export judgements; sample prompts for it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import err, fail, out, user_errors
from tuneloop.hosts import is_loopback

annotate_app = typer.Typer(
    help="Human annotation: blind pairwise comparisons, trace review, the failure queue.",
    invoke_without_command=True,
)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Annotation store (default: $TUNELOOP_HOME/annotations.db)."),
]


def _default_db() -> Path:
    home = Path(os.environ.get("TUNELOOP_HOME") or Path.home() / ".cache" / "tuneloop")
    return home / "annotations.db"


def _report_import(kind: str, path: Path, report) -> None:
    for line in report.errors:
        err.print("[bold red]error:[/] ", end="")
        err.print(line, highlight=False, markup=False, soft_wrap=True)
    bad = f", {len(report.errors)} bad row(s) skipped" if report.errors else ""
    out.print(f"{path}: {report.added} new {kind} item(s), {report.existing} already present{bad}",
              highlight=False)  # fmt: skip


@annotate_app.callback()
def serve(
    ctx: typer.Context,
    db: DbOption = None,
    traces_db: Annotated[
        Path | None, typer.Option("--traces-db", help="Trace store to review (enables /traces).")
    ] = None,
    pairs: Annotated[
        Path | None, typer.Option("--pairs", help="Import comparison pairs from this JSONL first.")
    ] = None,
    queue: Annotated[
        Path | None, typer.Option("--queue", help="Import mine's annotation_queue.jsonl first.")
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to bind.")] = 8765,
    token: Annotated[
        str | None,
        typer.Option("--token", help="Require this token (also $TUNELOOP_ANNOTATE_TOKEN)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the blind left/right order.")] = 0,
) -> None:
    """Serve the annotation app (when no subcommand is given)."""
    if ctx.invoked_subcommand is not None:
        return
    token = token or os.environ.get("TUNELOOP_ANNOTATE_TOKEN") or None
    if not is_loopback(host) and not token:
        fail(f"--host {host} is reachable from other machines; pass --token (or set "
             "TUNELOOP_ANNOTATE_TOKEN) so only annotators can use the app")  # fmt: skip
    from tuneloop.annotate import AnnotationStore, create_app
    from tuneloop.tracing import TraceStore

    try:
        store = AnnotationStore(db or _default_db())
        if pairs is not None:
            _report_import("pair", pairs, store.import_pairs_jsonl(pairs))
        if queue is not None:
            _report_import("queue", queue, store.import_queue(queue))
    except user_errors() as exc:
        fail(str(exc))
    trace_store = TraceStore(traces_db) if traces_db is not None else None
    app = create_app(store, trace_store=trace_store, token=token, seed=seed)
    import uvicorn

    shown = f"http://{host}:{port}/" + (f"?token={token}" if token else "")
    out.print(f"annotate at {shown} (store: {store.path})", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="warning")


@annotate_app.command("export")
def export_cmd(
    output: Annotated[Path, typer.Option("--output", "-o", help="PreferencePair JSONL to write.")],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON only.")] = False,
) -> None:
    """Write majority verdicts as preference pairs; print counts and annotator agreement."""
    from tuneloop.annotate import AnnotationStore

    path = db or _default_db()
    if not path.is_file():
        fail(f"{path}: no annotation store (pass --db)")
    report = AnnotationStore(path).export_pairs(output)
    if as_json:
        typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
        return
    ag = report.agreement
    out.print(f"wrote {report.written} pair(s) to {output}: {report.judged_items} judged item(s), "
              f"{report.ties} tie(s), {report.splits} split(s), {report.skipped} skipped",
              highlight=False)  # fmt: skip
    if ag.items:
        kappa = "n/a" if ag.kappa is None else f"{ag.kappa:.3f}"
        out.print(f"agreement over {ag.items} item(s) with 2+ annotators: {ag.raw:.1%} raw, "
                  f"Cohen's kappa {kappa}", highlight=False)  # fmt: skip
    else:
        out.print("agreement: no item was judged by two or more annotators", highlight=False)


@annotate_app.command("judge-agreement")
def judge_agreement_cmd(
    judge: Annotated[str, typer.Option("--judge", help="Judge model reference.")],
    db: DbOption = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="The judge is on an OpenAI-compatible server.")
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="TUNELOOP_API_KEY")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON only.")] = False,
) -> None:
    """Judge every human-judged pair with a judge model (both orders) and report how
    often it agrees with the human majority (percent and Cohen's kappa)."""
    from tuneloop.annotate import AnnotationStore
    from tuneloop.annotate.agreement import judge_agreement

    path = db or _default_db()
    if not path.is_file():
        fail(f"{path}: no annotation store (pass --db)")
    try:
        if base_url:
            from tuneloop.runtime.backends.openai_http import OpenAIChatModel

            model = OpenAIChatModel(base_url, model=judge, api_key=api_key)
        else:
            from tuneloop.runtime.backends.local import LocalEngine

            model = LocalEngine.from_ref(judge)
        report = judge_agreement(AnnotationStore(path), model)
    except (ValueError, *user_errors()) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    if not report["n"]:
        out.print("no pair item has a human verdict yet: nothing to compare", highlight=False)
        return
    kappa = "n/a" if report["kappa"] is None else f"{report['kappa']:.3f}"
    out.print(f"judge {judge} vs human majority over {report['n']} item(s): "
              f"{report['agreement']:.1%} agreement, Cohen's kappa {kappa}", highlight=False)  # fmt: skip


def read_prompts(path: Path) -> list[list[dict]]:
    """Prompts from JSONL: ``{"messages": [...]}`` or ``{"prompt": "text"}`` per line."""
    from tuneloop.annotate.store import as_messages
    from tuneloop.data.io import DataError, read_jsonl

    prompts = []
    for row in read_jsonl(path):
        value = row.data.get("messages", row.data.get("prompt"))
        try:
            prompts.append(as_messages(value, "user", "messages/prompt"))
        except ValueError as exc:
            raise DataError(row.file, row.line, str(exc)) from None
    return prompts


@annotate_app.command("sample")
def sample_cmd(
    model: Annotated[str, typer.Option("--model", help="Model reference to sample from.")],
    prompts: Annotated[Path, typer.Option("--prompts", help="Prompts JSONL.")],
    n: Annotated[int, typer.Option("-n", min=2, help="Samples per prompt.")] = 4,
    top: Annotated[
        int | None, typer.Option("--top", min=1, help="Queue only the K most uncertain.")
    ] = None,
    schema: Annotated[
        Path | None, typer.Option("--schema", help="JSON Schema the answers should satisfy.")
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0)] = 0.8,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    db: DbOption = None,
) -> None:
    """Sample answers, rank prompts by how much the samples disagree, queue comparisons."""
    from tuneloop.annotate import AnnotationStore, queue_samples, sample_for_annotation
    from tuneloop.runtime.backends.local import LocalEngine

    try:
        rows = read_prompts(prompts)
        schema_dict = json.loads(schema.read_text()) if schema is not None else None
        engine = LocalEngine.from_ref(model)
        sampled = sample_for_annotation(engine, rows, n=n, temperature=temperature, seed=seed,
                                        schema=schema_dict)  # fmt: skip
        store = AnnotationStore(db or _default_db())
        ids = queue_samples(store, sampled, top=top)
    except (ValueError, *user_errors()) as exc:
        fail(str(exc))
    out.print(f"sampled {len(rows)} prompt(s) x {n}; queued {len(ids)} comparison(s) in "
              f"{store.path}", highlight=False)  # fmt: skip
