"""A scripted :class:`~tuneloop.runtime.types.ChatModel` for tests.

Like pydantic-ai's ``TestModel``/``FunctionModel`` or inspect_ai's ``mockllm``: the
test says what the model will answer, and then checks what the code under test did
with it and what it sent::

    model = FakeModel(["Paris.", lambda messages, config: messages[-1]["content"].upper()])
    model.generate([{"role": "user", "content": "Capital of France?"}]).text  # "Paris."
    model.generate([{"role": "user", "content": "shout"}]).text  # "SHOUT"
    model.calls[0][0]  # the messages of the first call

Tokens are approximated by whitespace-separated words, so ``max_new_tokens=3`` keeps
the first three words of a scripted answer.
"""

from __future__ import annotations

import copy
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from tuneloop.runtime.types import GenerationConfig, GenerationOutput, Message, StreamChunk

Responder = Callable[[list[Message], GenerationConfig], str | GenerationOutput]
ScriptedOutput = str | GenerationOutput | Responder


class FakeModelExhausted(RuntimeError):
    """The code under test asked a :class:`FakeModel` for more outputs than were scripted."""


class FakeModel:
    """A model that answers from a script, one item per ``generate`` call.

    Each item is a ``str`` (the completion text; ``config.stop`` and
    ``config.max_new_tokens`` are applied to it), a ``GenerationOutput`` (returned as
    it is, for full control over ``finish_reason``, ``tool_calls`` and usage), or a
    callable ``(messages, config) -> str | GenerationOutput`` (for answers that depend
    on the prompt). ``calls`` records a deep copy of every ``(messages, config)``.
    """

    def __init__(
        self,
        outputs: Sequence[ScriptedOutput] | ScriptedOutput,
        name: str = "fake",
        repeat_last: bool = False,
    ) -> None:
        # A bare string would otherwise be read as a list of one-character outputs.
        if isinstance(outputs, (str, GenerationOutput)) or callable(outputs):
            outputs = [outputs]
        self.name = name
        self.outputs: list[ScriptedOutput] = list(outputs)
        """The script; item ``i`` answers call ``i``."""
        self.repeat_last = repeat_last
        """When the script runs out, answer every further call with its last item."""
        self.calls: list[tuple[list[Message], GenerationConfig]] = []
        """Deep copies of the ``(messages, config)`` of every call, in order."""
        self._lock = threading.Lock()

    context_window: int | None = None
    """Set it to test context policies; tokens are whitespace-separated words."""

    supports_json_schema = False
    """``config.json_schema`` is not enforced: the script answers what it says."""

    def count_text(self, text: str) -> int:
        """Words in ``text``: the fake model's notion of a token."""
        return _count_words(text)

    def count_prompt(self, messages: list[Message], tools: list[dict] | None = None) -> int:
        """Words of every message plus 4 per message (role and delimiters) and the tool specs."""
        import json

        words = sum(_count_words(_content_text(m)) + 4 for m in messages)
        for m in messages:
            for call in m.get("tool_calls") or []:
                words += _count_words(json.dumps(call))
        return words + sum(_count_words(json.dumps(t)) for t in tools or [])

    @property
    def remaining(self) -> int:
        """How many scripted outputs have not been used yet."""
        return max(len(self.outputs) - len(self.calls), 0)

    def generate(
        self, messages: list[Message], config: GenerationConfig | None = None
    ) -> GenerationOutput:
        """Answer with the next scripted output."""
        config = config or GenerationConfig()
        start = time.perf_counter()
        with self._lock:
            item = self._next_item()
            self.calls.append((copy.deepcopy(messages), config.model_copy(deep=True)))
        result = item(messages, config) if callable(item) else item
        if isinstance(result, GenerationOutput):
            output = result.model_copy(deep=True)
            if not output.model:
                output.model = self.name
            return output
        if not isinstance(result, str):
            raise TypeError(f"FakeModel outputs must be str or GenerationOutput, got {result!r}")
        text, finish_reason = _apply_limits(result, config)
        return GenerationOutput(
            text=text,
            finish_reason=finish_reason,
            prompt_tokens=sum(_count_words(_content_text(m)) for m in messages),
            completion_tokens=_count_words(text),
            latency_s=time.perf_counter() - start,
            model=self.name,
        )

    def stream(
        self, messages: list[Message], config: GenerationConfig | None = None
    ) -> Iterator[StreamChunk]:
        """Yield the next scripted output a word at a time, then a final chunk with it whole."""
        start = time.perf_counter()
        output = self.generate(messages, config)
        pieces = _split_words(output.text)
        if pieces:
            output.time_to_first_token_s = time.perf_counter() - start
        for piece in pieces:
            yield StreamChunk(text=piece)
        yield StreamChunk(finish_reason=output.finish_reason, output=output)

    def generate_batch(
        self, conversations: list[list[Message]], config: GenerationConfig | None = None
    ) -> list[GenerationOutput]:
        """Answer each conversation in turn, consuming one scripted output each."""
        return [self.generate(c, config) for c in conversations]

    def _next_item(self) -> ScriptedOutput:
        index = len(self.calls)
        if index < len(self.outputs):
            return self.outputs[index]
        if self.repeat_last and self.outputs:
            return self.outputs[-1]
        raise FakeModelExhausted(
            f"FakeModel {self.name!r} was called {index + 1} times but has only "
            f"{len(self.outputs)} scripted output(s); add more outputs or pass repeat_last=True"
        )


def _apply_limits(text: str, config: GenerationConfig) -> tuple[str, str]:
    """Cut ``text`` at the first stop string, then at ``max_new_tokens`` words."""
    cuts = [i for i in (text.find(s) for s in config.stop if s) if i >= 0]
    if cuts:
        text = text[: min(cuts)]
    # A real engine stops at whichever comes first, so the length limit applies to
    # the text before the stop string.
    words = list(re.finditer(r"\S+", text))
    if len(words) > config.max_new_tokens:
        return text[: words[config.max_new_tokens - 1].end()], "length"
    return text, "stop"


def _content_text(message: Message) -> str:
    """The text of a message whose content is a string, None, or a list of parts."""
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content or ""


def _count_words(text: str) -> int:
    return len(text.split())


def _split_words(text: str) -> list[str]:
    """Split into pieces that each start with a word, so ``"".join`` gives ``text`` back."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p]
