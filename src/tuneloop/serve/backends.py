"""What the HTTP layer generates with: the batched local engine, or any ChatModel.

Both expose one async call, :meth:`run`, that yields ``("text", piece)`` items and
ends with ``("done", GenerationOutput)``; closing the iterator early (the client went
away) cancels the generation.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tuneloop.runtime.types import GenerationConfig, Message
from tuneloop.serve.scheduler import BatchScheduler, SamplingParams


class AdapterLoadError(ValueError):
    """An adapter folder that peft cannot load."""


def load_local_model(ref: str, adapters: dict[str, Path] | None = None):
    """``(model, tokenizer, name)`` with every LoRA adapter loaded under its name."""
    from tuneloop.models.resolve import load_model_and_tokenizer

    model, tokenizer, resolved = load_model_and_tokenizer(ref)
    if adapters:
        import warnings

        from peft import PeftModel

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                items = list(adapters.items())
                model = PeftModel.from_pretrained(model, str(items[0][1]), adapter_name=items[0][0],
                                                  is_trainable=False)  # fmt: skip
                for name, path in items[1:]:
                    model.load_adapter(str(path), adapter_name=name, is_trainable=False)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise AdapterLoadError(f"cannot load adapter: {exc}".replace("\n", " ")) from exc
    model.eval()
    return model, tokenizer, resolved.name


class LocalBackend:
    """The transformers model behind a :class:`BatchScheduler` (continuous batching)."""

    supports_json_schema = True
    """Response schemas and forced tool calls are enforced while decoding (llguidance)."""
    repairs_schema = False
    """Constrained output needs no repair loop (only a max_tokens cut-off breaks it)."""

    def __init__(self, model, tokenizer, name: str, adapters: list[str] | None = None, *,
                 max_batch: int = 16, max_queue: int = 64, on_step=None):  # fmt: skip
        from tuneloop.runtime.backends.local import LocalEngine

        self.engine = LocalEngine(model, tokenizer, name=name)
        """Token counting and the context window (its generate() is not used here)."""
        self.names = [name, *(adapters or [])]
        self.scheduler = BatchScheduler(
            model, tokenizer, self.engine.eos_token_ids, max_batch=max_batch,
            max_queue=max_queue, name=name, on_step=on_step,
        )  # fmt: skip

    @property
    def context_window(self) -> int | None:
        return self.engine.context_window

    def count_prompt(self, messages: list[Message], tools: list[dict] | None) -> int:
        from tuneloop.models.chat_template import encode_prompt

        with self.scheduler.tokenizer_lock:
            return len(encode_prompt(self.engine.tokenizer, messages, tools))

    def _prepare(self, messages, config: GenerationConfig, adapter: str | None, timeout_s):
        """Prompt ids and sampling parameters (compiles the grammar: may raise GrammarError)."""
        from tuneloop.models.chat_template import encode_prompt

        tok, eos = self.engine.tokenizer, self.engine.eos_token_ids
        with self.scheduler.tokenizer_lock:
            prompt = encode_prompt(tok, messages, config.tools)
            grammar = None
            if config.json_schema is not None:
                from tuneloop.runtime.constrained import compile_json_schema

                grammar = compile_json_schema(tok, config.json_schema, eos)
            elif config.tools and config.tool_choice not in ("auto", "none"):
                from tuneloop.runtime.constrained import compile_tool_call

                grammar = compile_tool_call(tok, config.tools, config.tool_choice, eos)
        params = SamplingParams(
            max_new_tokens=config.max_new_tokens, temperature=config.temperature,
            top_p=config.top_p, stop=list(config.stop), seed=config.seed, grammar=grammar,
            adapter=adapter, timeout_s=timeout_s,
        )  # fmt: skip
        return prompt, params

    async def run(self, messages: list[Message], config: GenerationConfig, *,
                  adapter: str | None = None, timeout_s: float | None = None,
                  stream: bool = True) -> AsyncIterator[tuple]:  # fmt: skip
        """Submit to the scheduler; raises QueueFullError at once when the queue is full."""
        if config.json_schema is not None or (
            config.tools and config.tool_choice not in ("auto", "none")
        ):
            prompt, params = await asyncio.to_thread(
                self._prepare, messages, config, adapter, timeout_s
            )
        else:
            prompt, params = self._prepare(messages, config, adapter, timeout_s)
        job = self.scheduler.submit(prompt, params, asyncio.get_running_loop())
        try:
            async for item in job.events():
                if item[0] == "error":
                    raise item[1]
                yield item
        finally:
            if not job.finished:
                job.cancel()

    async def close(self) -> None:
        await asyncio.to_thread(self.scheduler.shutdown)


def upstream_client(timeout: float = 600.0, max_connections: int = 64):
    """An ``httpx.Client`` for an upstream engine: TCP_NODELAY (a request's headers and
    body go out as separate writes; with Nagle's algorithm and the server's delayed ACK
    that costs ~40 ms per request) and a pool as large as the concurrency."""
    import socket

    import httpx

    transport = httpx.HTTPTransport(
        socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
    )
    return httpx.Client(transport=transport, timeout=timeout)


class ChatModelBackend:
    """Any :class:`~tuneloop.runtime.types.ChatModel` (an upstream OpenAI-compatible
    server, a FakeModel in tests), run in worker threads. Calls are not batched here:
    the upstream engine batches."""

    repairs_schema = True
    """Outputs are validated against a response schema and repaired within a budget."""

    def __init__(self, model, names: list[str] | None = None, *, max_concurrency: int = 64):
        self.model = model
        self.names = names or [model.name]
        self.supports_json_schema = bool(getattr(model, "supports_json_schema", False))
        self._slots = asyncio.Semaphore(max_concurrency)
        # asyncio's default executor has min(32, cores + 4) threads: too few to keep
        # an upstream engine busy, so calls get a pool sized to the concurrency.
        self._pool = ThreadPoolExecutor(max_concurrency, thread_name_prefix="tuneloop-upstream")
        self.context_window = getattr(model, "context_window", None)

    def count_prompt(self, messages: list[Message], tools: list[dict] | None) -> int | None:
        count = getattr(self.model, "count_prompt", None)
        return count(messages, tools) if count is not None else None

    async def run(self, messages: list[Message], config: GenerationConfig, *,
                  adapter: str | None = None, timeout_s: float | None = None,
                  stream: bool = True) -> AsyncIterator[tuple]:  # fmt: skip
        async with self._slots:
            if not stream:
                loop = asyncio.get_running_loop()
                output = await loop.run_in_executor(
                    self._pool, self.model.generate, messages, config
                )
                yield ("done", output)
                return
            loop = asyncio.get_running_loop()
            queue: asyncio.Queue = asyncio.Queue()
            stop = threading.Event()

            def pump() -> None:
                try:
                    for chunk in self.model.stream(messages, config):
                        if stop.is_set():
                            return
                        item = (
                            ("done", chunk.output)
                            if chunk.output is not None
                            else ("text", chunk.text)
                        )
                        loop.call_soon_threadsafe(queue.put_nowait, item)
                except Exception as exc:  # handed to the consumer
                    loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))

            loop.run_in_executor(self._pool, pump)
            try:
                while True:
                    item = await queue.get()
                    if item[0] == "error":
                        raise item[1]
                    if item[0] == "text" and not item[1]:
                        continue
                    yield item
                    if item[0] == "done":
                        return
            finally:
                stop.set()  # the worker stops at its next chunk and closes the upstream stream

    async def close(self) -> None:
        self._pool.shutdown(wait=True)
        close = getattr(self.model, "close", None)
        if close is not None:
            close()
