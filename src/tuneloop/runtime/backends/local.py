"""Local transformers engine: batched generation with left padding, stop strings, streaming.

Prompts are rendered with the tokenizer's own chat template through
:mod:`tuneloop.models.chat_template`, the same code that renders training data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from tuneloop.models.chat_template import encode_prompt
from tuneloop.runtime.types import (
    GenerationConfig,
    GenerationOutput,
    Message,
    StreamChunk,
    is_sampled,
)


class _FirstTokenClock:
    """A generate() streamer that only records when the first new token arrives."""

    def __init__(self) -> None:
        self.calls = 0
        self.first_token_at: float | None = None

    def put(self, value) -> None:
        self.calls += 1
        if self.calls == 2 and self.first_token_at is None:  # call 1 is the prompt
            self.first_token_at = time.perf_counter()

    def end(self) -> None:
        pass


class _StopOnStrings:
    """Stop a row once its *generated* text contains a stop string.

    transformers' ``stop_strings`` also matches text that straddles the prompt
    (a prompt ending in a newline plus one generated newline matches "\\n\\n"),
    which stops generation early; OpenAI semantics only look at the completion.
    """

    def __init__(self, tokenizer, stops: list[str], prompt_width: int):
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.prompt_width = prompt_width

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = [
            any(s in self.tokenizer.decode(row[self.prompt_width :], skip_special_tokens=True)
                for s in self.stops)
            for row in input_ids.tolist()
        ]  # fmt: skip
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class LocalEngine:
    """A :class:`~tuneloop.runtime.types.ChatModel` running a transformers causal LM in-process."""

    supports_json_schema = True
    """``config.json_schema``, and ``tool_choice`` ``required`` or a tool name, are
    enforced while decoding (llguidance grammars, see ``constrained``)."""

    def __init__(self, model, tokenizer, name: str = "local"):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self._lock = threading.Lock()  # one generate() at a time on a shared model
        gen = model.generation_config
        eos = gen.eos_token_id
        self.eos_token_ids: list[int] = (
            [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
        )
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in self.eos_token_ids:
            self.eos_token_ids.append(tokenizer.eos_token_id)
        self.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos_token_ids[0]
        )
        self.last_json_processor = None
        """The JSON-schema logits processor of the latest constrained call (its ``time_s``
        and ``calls`` measure the grammar's overhead, for benchmarks)."""

    @classmethod
    def from_ref(cls, ref: str, dtype: str = "float32") -> LocalEngine:
        """Load any model reference (embedded name, folder, .gguf, hub id)."""
        from tuneloop.models.resolve import load_model_and_tokenizer

        model, tokenizer, resolved = load_model_and_tokenizer(ref, dtype)
        return cls(model, tokenizer, name=resolved.name)

    # ------------------------------------------------------------------ token counts

    @property
    def context_window(self) -> int | None:
        """The model's maximum sequence length (prompt + answer)."""
        return getattr(self.model.config, "max_position_embeddings", None)

    def count_text(self, text: str) -> int:
        """Exact tokens of ``text`` alone, as this tokenizer encodes it."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_prompt(self, messages: list[Message], tools: list[dict] | None = None) -> int:
        """Exact tokens of the rendered prompt (the length ``generate`` would feed)."""
        return len(encode_prompt(self.tokenizer, messages, tools))

    # ------------------------------------------------------------------ generation

    def _gen_kwargs(self, config: GenerationConfig, input_len: int, batch_size: int = 1) -> dict:
        from transformers import GenerationConfig as HFGenerationConfig

        sample = is_sampled(config.temperature)
        hf = HFGenerationConfig(
            max_new_tokens=config.max_new_tokens,
            do_sample=sample,
            temperature=config.temperature if sample else None,
            top_p=config.top_p if sample else None,
            top_k=None,
            eos_token_id=self.eos_token_ids,
            pad_token_id=self.pad_token_id,
        )
        kwargs: dict = {"generation_config": hf}
        if config.stop:
            from transformers import StoppingCriteriaList

            kwargs["stopping_criteria"] = StoppingCriteriaList(
                [_StopOnStrings(self.tokenizer, config.stop, input_len)]
            )
        grammar = None
        if config.json_schema is not None:
            from tuneloop.runtime.constrained import compile_json_schema

            grammar = compile_json_schema(self.tokenizer, config.json_schema, self.eos_token_ids)
        elif config.tools and config.tool_choice not in ("auto", "none"):
            from tuneloop.runtime.constrained import compile_tool_call

            grammar = compile_tool_call(
                self.tokenizer, config.tools, config.tool_choice, self.eos_token_ids
            )
        if grammar is not None:
            from transformers import LogitsProcessorList

            from tuneloop.runtime.constrained import JsonSchemaLogitsProcessor

            processor = JsonSchemaLogitsProcessor(grammar, batch_size)
            self.last_json_processor = processor
            kwargs["logits_processor"] = LogitsProcessorList([processor])
        return kwargs

    def generate(
        self, messages: list[Message], config: GenerationConfig | None = None
    ) -> GenerationOutput:
        """Complete one conversation."""
        return self.generate_batch([messages], config)[0]

    def generate_batch(
        self, conversations: list[list[Message]], config: GenerationConfig | None = None
    ) -> list[GenerationOutput]:
        """Complete several conversations in one left-padded batch."""
        import torch

        config = config or GenerationConfig()
        prompts = [encode_prompt(self.tokenizer, m, config.tools) for m in conversations]
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):
            input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[row, width - len(ids) :] = 1
        clock = _FirstTokenClock()
        with self._lock, torch.inference_mode():
            if config.seed is not None:
                torch.manual_seed(config.seed)
            start = time.perf_counter()
            kwargs = self._gen_kwargs(config, width, len(prompts))
            out = self.model.generate(
                input_ids=input_ids, attention_mask=attention, streamer=clock, **kwargs
            )
            latency = time.perf_counter() - start
        ttft = clock.first_token_at - start if clock.first_token_at else None
        results = []
        for row, prompt in enumerate(prompts):
            new = out[row, width:].tolist()
            n_tokens, hit_eos = len(new), False
            for k, tok in enumerate(new):
                if tok in self.eos_token_ids:
                    n_tokens, hit_eos = k, True
                    break
            text = self.tokenizer.decode(new[:n_tokens], skip_special_tokens=True)
            text, hit_stop = _cut_at_stop(text, config.stop)
            done = hit_eos or hit_stop
            results.append(
                GenerationOutput(
                    text=text,
                    finish_reason="stop" if done else "length",
                    prompt_tokens=len(prompt),
                    completion_tokens=n_tokens + (1 if hit_eos else 0),
                    latency_s=latency,
                    time_to_first_token_s=ttft,
                    model=self.name,
                )
            )
        return results

    def stream(
        self, messages: list[Message], config: GenerationConfig | None = None
    ) -> Iterator[StreamChunk]:
        """Yield text as it is generated; the last chunk carries the full output."""
        import torch
        from transformers import TextIteratorStreamer

        config = config or GenerationConfig()
        prompt = encode_prompt(self.tokenizer, messages, config.tools)
        streamer = TextIteratorStreamer(
            self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600
        )
        ids = torch.tensor([prompt], dtype=torch.long)
        result: dict = {}
        kwargs = self._gen_kwargs(config, len(prompt))  # a bad schema raises here, not mid-stream

        def run() -> None:
            with self._lock, torch.inference_mode():
                if config.seed is not None:
                    torch.manual_seed(config.seed)
                try:
                    result["out"] = self.model.generate(
                        input_ids=ids,
                        attention_mask=torch.ones_like(ids),
                        streamer=streamer,
                        **kwargs,
                    )
                except BaseException as exc:  # surfaced to the consumer below
                    result["error"] = exc
                    streamer.end()

        start = time.perf_counter()
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        text, emitted, ttft = "", 0, None
        hold = max((len(s) for s in config.stop), default=0)
        stopped = False
        for piece in streamer:
            if stopped or not piece:
                continue
            if ttft is None:
                ttft = time.perf_counter() - start
            text += piece
            cut, stopped = _cut_at_stop(text, config.stop)
            # Hold back a tail that could still become a stop string.
            safe = len(cut) if stopped else max(emitted, len(cut) - hold)
            if safe > emitted:
                yield StreamChunk(text=cut[emitted:safe])
                emitted = safe
        worker.join()
        if "error" in result:
            raise result["error"]
        latency = time.perf_counter() - start
        final, hit_stop = _cut_at_stop(text, config.stop)
        if len(final) > emitted:
            yield StreamChunk(text=final[emitted:])
        new = result["out"][0, len(prompt) :].tolist()
        n_tokens = next((k for k, t in enumerate(new) if t in self.eos_token_ids), None)
        hit_eos = n_tokens is not None
        output = GenerationOutput(
            text=final,
            finish_reason="stop" if hit_eos or hit_stop else "length",
            prompt_tokens=len(prompt),
            completion_tokens=(n_tokens + 1) if hit_eos else len(new),
            latency_s=latency,
            time_to_first_token_s=ttft,
            model=self.name,
        )
        yield StreamChunk(finish_reason=output.finish_reason, output=output)
