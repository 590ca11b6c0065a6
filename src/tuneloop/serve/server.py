"""Running the app with uvicorn: in the foreground (the CLI) or in a thread (tests, benchmarks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from tuneloop.hosts import is_loopback  # noqa: F401  (re-exported by tuneloop.serve)


def _config(app, host: str, log_level: str, access_log: bool):
    import uvicorn

    # timeout_graceful_shutdown: on SIGTERM/SIGINT uvicorn stops accepting, waits this
    # long for open requests, then the app's lifespan drains the scheduler.
    return uvicorn.Config(app, host=host, log_level=log_level, access_log=access_log,
                          timeout_graceful_shutdown=30, lifespan="on")  # fmt: skip


def run_server(app, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve until interrupted (SIGINT/SIGTERM drain in-flight requests first)."""
    import uvicorn

    config = _config(app, host, log_level, access_log=True)
    config.port = port
    uvicorn.Server(config).run()


@contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0,
                    log_level: str = "warning") -> Iterator[str]:  # fmt: skip
    """Serve ``app`` on a free port in a background thread; yields the base URL
    (``http://127.0.0.1:PORT``) and shuts the server down (draining) on exit."""
    import uvicorn

    # uvicorn binds the port itself (port 0: a free one). Handing it a pre-bound
    # socket instead cost ~40 ms per request here (delayed ACKs).
    config = _config(app, host, log_level, access_log=False)
    config.port = port
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(90)
