"""In-flight (continuous) batching for the local transformers engine.

One background thread owns the model. Each loop iteration it

1. drops cancelled and timed-out rows;
2. admits waiting requests (up to ``max_batch`` rows in all) and prefills them
   together in one left-padded forward pass, samples their first token, and merges
   their KV cache into the running batch (left-padding the shorter side);
3. runs one decode step for every active row (one token each), applies each row's
   grammar (constrained JSON / tool calls), samples with each row's own settings;
4. retires finished rows (EOS, stop string, ``max_new_tokens``) and trims cache
   columns that have become padding for every remaining row.

So a new request waits at most one decode step before it starts, never for the
batch to finish. ``max_batch=1`` is the sequential baseline (same code path).

Results go to each :class:`Job`'s asyncio queue through ``call_soon_threadsafe``;
the HTTP layer reads them with :meth:`Job.events`. Rows carry their own LoRA adapter
name; peft's ``adapter_names`` runs a mixed batch in one forward pass.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch

from tuneloop.runtime.types import GenerationOutput, is_sampled


class QueueFullError(RuntimeError):
    """The waiting queue is at ``max_queue``: the caller should retry later (HTTP 429)."""


class GenerationTimeout(RuntimeError):
    """A request ran past its deadline and was stopped."""


@dataclass
class SamplingParams:
    """What one request asks of the decoder."""

    max_new_tokens: int = 16
    temperature: float = 0.0
    """0 is greedy."""
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    grammar: Any = None
    """A compiled :class:`~tuneloop.runtime.constrained.JsonGrammar`, or None."""
    adapter: str | None = None
    """LoRA adapter name, None for the base model."""
    timeout_s: float | None = None


@dataclass
class Job:
    """One generation in the scheduler; the HTTP layer holds it while it runs."""

    prompt: list[int]
    params: SamplingParams
    loop: asyncio.AbstractEventLoop
    name: str = "local"
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    created: float = field(default_factory=time.perf_counter)
    tokens: list[int] = field(default_factory=list)
    text: str = ""
    emitted: int = 0
    first_token_at: float | None = None
    finished: bool = False
    cancelled: bool = False
    processor: Any = None
    generator: torch.Generator | None = None

    def cancel(self) -> None:
        """Stop generating (client went away); safe from any thread."""
        self.cancelled = True

    def _send(self, item: tuple) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            pass

    async def events(self):
        """Yield ``("text", str)`` pieces, then ``("done", GenerationOutput)`` or
        ``("error", exception)``."""
        while True:
            item = await self.queue.get()
            yield item
            if item[0] != "text":
                return


def _cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class BatchScheduler:
    """Continuous batching over a causal LM (optionally a peft model with adapters)."""

    def __init__(self, model, tokenizer, eos_token_ids: list[int], *, max_batch: int = 16,
                 max_queue: int = 64, name: str = "local", on_step=None):  # fmt: skip
        self.model = model
        self.tokenizer = tokenizer
        self.eos_token_ids = set(eos_token_ids)
        self.max_batch = max(1, max_batch)
        self.max_queue = max_queue
        self.name = name
        self.on_step = on_step
        """Called as ``on_step(waiting, active)`` after each step (metrics gauges)."""
        self.tokenizer_lock = threading.Lock()
        """HF fast tokenizers are not safe to use from two threads at once."""
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._uses_adapters = bool(getattr(model, "peft_config", None))
        self._waiting: deque[Job] = deque()
        self._rows: list[Job] = []
        self._cache = None
        self._mask: torch.Tensor | None = None
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="tuneloop-scheduler", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ public

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @property
    def active(self) -> int:
        return len(self._rows)

    def submit(self, prompt: list[int], params: SamplingParams, loop) -> Job:
        """Queue a generation; raises :class:`QueueFullError` when the queue is full."""
        job = Job(prompt=list(prompt), params=params, loop=loop, name=self.name)
        if params.grammar is not None:
            from tuneloop.runtime.constrained import JsonSchemaLogitsProcessor

            job.processor = JsonSchemaLogitsProcessor(params.grammar, 1)
        if is_sampled(params.temperature):
            job.generator = torch.Generator()
            if params.seed is not None:
                job.generator.manual_seed(params.seed)
            else:
                job.generator.seed()
        with self._cond:
            if self._stopping or not self._thread.is_alive():
                raise QueueFullError("the server is shutting down")
            if len(self._waiting) >= self.max_queue:
                raise QueueFullError(f"{len(self._waiting)} requests already waiting")
            self._waiting.append(job)
            self._cond.notify()
        return job

    def shutdown(self, timeout: float = 60.0) -> None:
        """Stop admitting new work, let queued and running requests finish, then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ loop

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._rows and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._waiting and not self._rows:
                    return
                room = self.max_batch - len(self._rows)
                admit = [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]
            try:
                admit = [j for j in admit if not self._expired(j)]
                with torch.inference_mode():
                    self._drop_expired()
                    if admit:
                        self._prefill(admit)
                    if self._rows:
                        self._decode()
            except Exception as exc:  # a failed step fails its rows, never the thread
                for job in self._rows + admit:
                    if not job.finished:
                        job.finished = True
                        job._send(("error", exc))
                self._rows, self._cache, self._mask = [], None, None
            if self.on_step is not None:
                self.on_step(len(self._waiting), len(self._rows))

    def _expired(self, job: Job) -> bool:
        """Finish ``job`` if it was cancelled or ran out of time; True when it did."""
        if job.cancelled:
            job.finished = True
            job._send(("error", asyncio.CancelledError()))
            return True
        limit = job.params.timeout_s
        if limit is not None and time.perf_counter() - job.created > limit:
            job.finished = True
            job._send(("error", GenerationTimeout(f"generation took longer than {limit:g} s")))
            return True
        return False

    def _drop_expired(self) -> None:
        if any(self._expired(j) for j in list(self._rows) if not j.finished):
            self._retire()

    def _forward(self, input_ids, mask, positions, cache, adapters):
        kwargs: dict = {}
        if self._uses_adapters:
            kwargs["adapter_names"] = [a or "__base__" for a in adapters]
        out = self.model(
            input_ids=input_ids, attention_mask=mask, position_ids=positions,
            cache=cache, use_cache=True, logits_to_keep=1, **kwargs,
        )  # fmt: skip
        return out.logits[:, -1, :].float(), out.cache

    def _prefill(self, jobs: list[Job]) -> None:
        from transformers import DynamicCache

        width = max(len(j.prompt) for j in jobs)
        ids = torch.full((len(jobs), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(jobs), width), dtype=torch.long)
        for row, job in enumerate(jobs):
            ids[row, width - len(job.prompt) :] = torch.tensor(job.prompt, dtype=torch.long)
            mask[row, width - len(job.prompt) :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        logits, cache = self._forward(
            ids, mask, positions, DynamicCache(), [j.params.adapter for j in jobs]
        )
        self._merge(cache, mask, jobs)
        for row, job in enumerate(jobs):
            self._accept(job, self._sample(job, logits[row : row + 1]))
        self._retire()

    def _merge(self, cache, mask: torch.Tensor, jobs: list[Job]) -> None:
        """Append the new rows' cache and mask to the running batch, left-padding."""
        if self._cache is None:
            self._cache, self._mask, self._rows = cache, mask, list(jobs)
            return
        old_w, new_w = self._mask.shape[1], mask.shape[1]
        width = max(old_w, new_w)

        def pad(t: torch.Tensor, w: int) -> torch.Tensor:
            if w == width:
                return t
            shape = list(t.shape)
            shape[-2 if t.dim() == 4 else -1] = width - w
            return torch.cat([t.new_zeros(shape), t], dim=-2 if t.dim() == 4 else -1)

        for old, new in zip(self._cache.layers, cache.layers, strict=True):
            old.keys = torch.cat([pad(old.keys, old_w), pad(new.keys, new_w)], dim=0)
            old.values = torch.cat([pad(old.values, old_w), pad(new.values, new_w)], dim=0)
        self._mask = torch.cat([pad(self._mask, old_w), pad(mask, new_w)], dim=0)
        self._rows.extend(jobs)

    def _decode(self) -> None:
        rows = self._rows
        ids = torch.tensor([[j.tokens[-1]] for j in rows], dtype=torch.long)
        positions = torch.tensor([[len(j.prompt) + len(j.tokens) - 1] for j in rows])
        self._mask = torch.cat([self._mask, self._mask.new_ones((len(rows), 1))], dim=-1)
        logits, self._cache = self._forward(
            ids, self._mask, positions, self._cache, [j.params.adapter for j in rows]
        )
        for row, job in enumerate(rows):
            self._accept(job, self._sample(job, logits[row : row + 1]))
        self._retire()

    def _sample(self, job: Job, logits: torch.Tensor) -> int:
        if job.processor is not None:
            done = torch.tensor([job.tokens], dtype=torch.long).reshape(1, len(job.tokens))
            logits = job.processor(done, logits)
        p = job.params
        if not is_sampled(p.temperature):
            return int(logits.argmax(-1))
        probs = torch.softmax(logits[0] / p.temperature, dim=-1)
        if p.top_p < 1.0:
            sorted_p, order = probs.sort(descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < p.top_p
            probs = torch.zeros_like(probs).scatter(0, order[keep], sorted_p[keep])
        return int(torch.multinomial(probs, 1, generator=job.generator))

    def _accept(self, job: Job, token: int) -> None:
        """Record a sampled token; finish the job or stream the text it completes."""
        now = time.perf_counter()
        if job.first_token_at is None:
            job.first_token_at = now
        if token in self.eos_token_ids:
            return self._finish(job, "stop", eos=True)
        job.tokens.append(token)
        with self.tokenizer_lock:
            text = self.tokenizer.decode(job.tokens, skip_special_tokens=True)
        cut, hit = _cut_at_stop(text, job.params.stop)
        job.text = cut
        if hit:
            return self._finish(job, "stop")
        if len(job.tokens) >= job.params.max_new_tokens:
            return self._finish(job, "length")
        hold = max((len(s) for s in job.params.stop), default=0)
        safe = len(cut) - hold
        while safe > job.emitted and cut[safe - 1] == "\ufffd":  # an incomplete UTF-8 char
            safe -= 1
        if safe > job.emitted:
            job._send(("text", cut[job.emitted : safe]))
            job.emitted = safe

    def _finish(self, job: Job, reason: str, eos: bool = False) -> None:
        job.finished = True
        if len(job.text) > job.emitted:
            job._send(("text", job.text[job.emitted :]))
            job.emitted = len(job.text)
        now = time.perf_counter()
        job._send(("done", GenerationOutput(
            text=job.text, finish_reason=reason, prompt_tokens=len(job.prompt),
            completion_tokens=len(job.tokens) + (1 if eos else 0), latency_s=now - job.created,
            time_to_first_token_s=(job.first_token_at or now) - job.created, model=job.name,
        )))  # fmt: skip

    def _retire(self) -> None:
        """Remove finished rows from the batch and trim all-padding cache columns."""
        keep = [i for i, j in enumerate(self._rows) if not j.finished]
        if len(keep) == len(self._rows):
            return
        if not keep:
            self._rows, self._cache, self._mask = [], None, None
            return
        index = torch.tensor(keep, dtype=torch.long)
        self._rows = [self._rows[i] for i in keep]
        self._mask = self._mask[index]
        start = int((self._mask.cumsum(-1) == 0).sum(-1).min())  # leading pad columns
        self._mask = self._mask[:, start:]
        for layer in self._cache.layers:
            layer.keys = layer.keys[index, :, start:]
            layer.values = layer.values[index, :, start:]
