"""``tuneloop serve``: an OpenAI-compatible server over a local model or an upstream engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tuneloop.cli._common import err, fail, user_errors
from tuneloop.models.registry import DEFAULT_MODEL


def _adapters(values: list[str]) -> dict[str, Path]:
    adapters: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            fail(f"--adapter {value!r}: expected NAME=PATH")
        if not Path(path).is_dir():
            fail(f"--adapter {name}: {path} is not a folder")
        adapters[name] = Path(path)
    return adapters


def serve(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Model reference; with --backend openai, the upstream's model name.",
        ),
    ] = DEFAULT_MODEL,
    adapter: Annotated[
        list[str] | None,
        typer.Option(
            "--adapter", help="NAME=PATH of a LoRA adapter, served as model NAME (repeatable)."
        ),
    ] = None,
    backend: Annotated[
        str,
        typer.Option(
            help="local (transformers, batched), openai (an upstream server) or llamacpp "
            "(the model exported to GGUF and served by a supervised llama.cpp server)."
        ),
    ] = "local",
    upstream: Annotated[
        str | None, typer.Option(help="Base URL of the OpenAI-compatible upstream.")
    ] = None,
    upstream_api_key: Annotated[
        str | None, typer.Option("--upstream-api-key", envvar="TUNELOOP_UPSTREAM_API_KEY")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but loopback needs --api-key.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="TUNELOOP_API_KEY", help="Bearer key clients must send."),
    ] = None,
    max_queue: Annotated[
        int, typer.Option("--max-queue", min=0, help="Waiting requests before 429.")
    ] = 64,
    max_batch: Annotated[
        int, typer.Option("--max-batch", min=1, help="Rows decoded together (1 = no batching).")
    ] = 16,
    request_timeout: Annotated[
        float, typer.Option("--request-timeout", min=0.1, help="Seconds per request.")
    ] = 600.0,
    max_tokens: Annotated[
        int,
        typer.Option("--default-max-tokens", min=1, help="max_tokens when a request sets none."),
    ] = 512,
    trace_db: Annotated[
        Path | None,
        typer.Option("--trace-db", help="Trace store (default: $TUNELOOP_HOME/traces.db)."),
    ] = None,
    no_trace: Annotated[
        bool, typer.Option("--no-trace", help="Do not record requests as traces.")
    ] = False,
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="torch CPU threads (1 is often fastest on a busy 2-core machine).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option("--log-level")] = "info",
) -> None:
    """Serve chat completions over HTTP (OpenAI API): streaming, tools, response_format,
    adapters by model name, /metrics, traces. Ctrl-C drains in-flight requests."""
    from tuneloop.serve import ChatModelBackend, ServeOptions, create_app, is_loopback
    from tuneloop.serve.server import run_server

    if not is_loopback(host) and not api_key:
        fail(f"--host {host} is reachable from other machines: set --api-key (or TUNELOOP_API_KEY)")
    adapters = _adapters(adapter or [])
    if backend not in ("local", "openai", "llamacpp"):
        fail(f"--backend {backend!r}: expected local, openai or llamacpp")
    if backend == "llamacpp" and (upstream or adapters):
        fail("--backend llamacpp serves one model: merge adapters first (tuneloop merge), no --upstream")
    if backend == "openai" and not upstream:
        fail("--backend openai needs --upstream URL")
    if backend == "openai" and adapters:
        fail(
            "--adapter works with --backend local; serve adapters from the upstream engine instead"
        )
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    sink = None
    if not no_trace:
        from tuneloop.tracing import TraceSink, default_store_path

        sink = TraceSink(trace_db or default_store_path())
    llama_server = None
    try:
        if backend == "llamacpp":
            from tuneloop.serve.llamacpp import LlamaCppServer, gguf_for

            with err.status(f"exporting {model} to GGUF (cached after the first time)..."):
                gguf_path, served_name = gguf_for(model)
            with err.status("starting the llama.cpp server..."):
                llama_server = LlamaCppServer(gguf_path, threads=threads, model_name=served_name)
                llama_server.start()
            upstream, model = llama_server.base_url, served_name
        if backend in ("openai", "llamacpp"):
            from tuneloop.runtime.backends.openai_http import OpenAIChatModel
            from tuneloop.serve.backends import upstream_client

            slots = max(max_queue, 1)
            llm = OpenAIChatModel(
                upstream, model=model, api_key=upstream_api_key, timeout=request_timeout,
                client=upstream_client(request_timeout, slots),
                schema_format="llamacpp" if backend == "llamacpp" else "json_schema",
            )  # fmt: skip
            served = ChatModelBackend(llm, max_concurrency=slots)
        else:
            from tuneloop.serve import LocalBackend, load_local_model

            with err.status(f"loading {model}..."):
                m, tok, name = load_local_model(model, adapters)
            served = LocalBackend(
                m, tok, name, list(adapters), max_batch=max_batch, max_queue=max_queue
            )
    except (*user_errors(), ValueError, RuntimeError) as exc:
        if llama_server is not None:
            llama_server.stop()
        fail(str(exc))
    options = ServeOptions(request_timeout_s=request_timeout, default_max_tokens=max_tokens)
    app = create_app(served, api_key=api_key, options=options, trace_sink=sink)
    err.print(f"serving {', '.join(served.names)} on http://{host}:{port}/v1", highlight=False)
    import signal
    import sys

    # uvicorn drains in-flight requests, restores these handlers and re-raises the
    # signal: exiting through SystemExit(0) makes a requested stop a clean exit and lets
    # the finally below stop the llama.cpp child.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    try:
        run_server(app, host=host, port=port, log_level=log_level)
    finally:
        if llama_server is not None:
            llama_server.stop()
