"""OpenAI-compatible HTTP serving: the assistant runtime's reliability layer over HTTP.

    backend = LocalBackend(*load_local_model("smollm2-135m-instruct"), max_batch=16)
    app = create_app(backend, api_key=None, trace_sink=TraceSink(default_store_path()))
    uvicorn.run(app, host="127.0.0.1", port=8000)

``LocalBackend`` batches concurrent requests in flight (:mod:`.scheduler`);
``ChatModelBackend`` puts any ChatModel (an upstream vLLM / llama.cpp server through
``OpenAIChatModel``, or a ``FakeModel``) behind the same app.
"""

from tuneloop.serve.app import create_app
from tuneloop.serve.backends import (
    AdapterLoadError,
    ChatModelBackend,
    LocalBackend,
    load_local_model,
)
from tuneloop.serve.completions import ServeOptions
from tuneloop.serve.metrics import ServeMetrics
from tuneloop.serve.protocol import APIError, ChatCompletionRequest
from tuneloop.serve.scheduler import BatchScheduler, QueueFullError, SamplingParams
from tuneloop.serve.server import is_loopback, serve_in_thread

__all__ = [
    "APIError",
    "AdapterLoadError",
    "BatchScheduler",
    "ChatCompletionRequest",
    "ChatModelBackend",
    "LocalBackend",
    "QueueFullError",
    "SamplingParams",
    "ServeMetrics",
    "ServeOptions",
    "create_app",
    "is_loopback",
    "load_local_model",
    "serve_in_thread",
]
