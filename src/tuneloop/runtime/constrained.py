"""Constrained JSON decoding for the local engine, with llguidance.

A JSON schema is compiled once into an llguidance grammar for the model's tokenizer
(:func:`compile_json_schema`); :class:`JsonSchemaLogitsProcessor` then keeps one
matcher per batch row and, before every sampling step, sets the logit of every token
the grammar forbids to ``-inf``. The output is therefore JSON valid against the
schema unless ``max_new_tokens`` cuts it off first (``finish_reason="length"``),
which the runtime's repair loop handles like any other invalid answer.

The JSON is compact (no whitespace between tokens of the JSON syntax): a small model
otherwise happily spends its whole token budget on newlines and spaces. A schema may
still opt in through llguidance's own ``"x-guidance": {"whitespace_flexible": true}``.

We apply the mask with a few plain tensor operations rather than
``llguidance.torch.apply_token_bitmask_inplace``, which goes through
``torch.compile`` (seconds of compilation on the first call, on CPU).
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any

import llguidance
import llguidance.hf
import torch
from llguidance import LLMatcher
from transformers import LogitsProcessor

from tuneloop.runtime.backends.errors import GrammarError

_JSON_OPTIONS = {"whitespace_flexible": False}
"""Compile options for every schema: compact JSON, ``,`` and ``:`` separators."""

_tokenizers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_tokenizers_lock = threading.Lock()


@dataclass(frozen=True)
class JsonGrammar:
    """A JSON schema compiled for one tokenizer: what a logits processor needs."""

    schema: dict
    """The schema as given."""
    grammar: str
    """The llguidance grammar (its serialized form) for the schema."""
    tokenizer: llguidance.LLTokenizer
    """The llguidance view of the model's tokenizer, EOS tokens included."""
    digits: _DigitTable | None = None
    """Which tokens are digits, for the digit-run cap (see ``MAX_DIGIT_RUN``)."""


def compile_json_schema(
    tokenizer: Any, schema: dict, eos_token_ids: list[int] | None = None
) -> JsonGrammar:
    """Compile ``schema`` for the Hugging Face (fast) ``tokenizer``.

    ``eos_token_ids`` are the tokens that end generation (default: the tokenizer's
    EOS); they are the only tokens allowed once the JSON is complete. The llguidance
    tokenizer takes ~0.3 s to build for a 49k vocabulary, so it is cached per HF
    tokenizer object. Raises :class:`GrammarError` for a schema llguidance rejects
    (unknown type or format, bad regex, unsatisfiable bounds, unsupported keyword).
    """
    if not isinstance(schema, dict):
        raise GrammarError(f"a JSON schema must be an object (dict), got {type(schema).__name__}")
    return _compile(
        lambda: LLMatcher.grammar_from_json_schema(schema, defaults=_JSON_OPTIONS),
        schema, tokenizer, eos_token_ids, "JSON schema",
    )  # fmt: skip


def _compile(make_grammar, schema: dict, tokenizer, eos_token_ids, what: str) -> JsonGrammar:
    """Build a grammar with ``make_grammar()`` and check it against the tokenizer."""
    lltok = _ll_tokenizer(tokenizer, eos_token_ids)
    try:
        grammar = make_grammar()
    except (ValueError, TypeError) as exc:
        raise GrammarError(f"cannot compile {what}: {exc}") from exc
    is_error, messages = LLMatcher.validate_grammar_with_warnings(grammar, lltok)
    if is_error:
        raise GrammarError(f"cannot compile {what}: {'; '.join(messages)}")
    return JsonGrammar(schema=schema, grammar=grammar, tokenizer=lltok, digits=_digit_table(lltok))


def tool_call_schema(tools: list[dict], tool_choice: str = "required") -> dict:
    """JSON Schema of one Hermes tool call ``{"name": ..., "arguments": {...}}``.

    ``tool_choice`` is ``required`` (any of ``tools``) or one tool's name.
    """
    options = []
    for spec in tools:
        fn = spec.get("function", spec)
        if tool_choice not in ("required", "auto") and fn.get("name") != tool_choice:
            continue
        params = fn.get("parameters") or {"type": "object"}
        options.append({
            "type": "object",
            "properties": {"name": {"const": fn["name"]}, "arguments": params},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        })  # fmt: skip
    if not options:
        raise GrammarError(f"tool_choice {tool_choice!r} names no offered tool")
    return options[0] if len(options) == 1 else {"anyOf": options}


def compile_tool_call(
    tokenizer: Any, tools: list[dict], tool_choice: str, eos_token_ids: list[int] | None = None
) -> JsonGrammar:
    """A grammar for exactly one ``<tool_call>\\n{json}\\n</tool_call>`` block (Hermes
    text form, as :mod:`tuneloop.models.chat_template` renders calls), the JSON
    constrained to the offered tools' names and argument schemas."""
    schema = tool_call_schema(tools, tool_choice)
    inner = {**schema, "x-guidance": {"whitespace_flexible": False}}
    lark = 'start: "<tool_call>\\n" call "\\n</tool_call>"\ncall: %json ' + json.dumps(inner)
    return _compile(
        lambda: llguidance.grammar_from("lark", lark), schema, tokenizer, eos_token_ids,
        "the tool-call grammar",
    )  # fmt: skip


MAX_DIGIT_RUN = 16
"""Longest run of digits the processor lets a row write while the grammar allows
anything else. JSON numbers have no length limit, and a small model happily writes
``11.1111111...`` until ``max_new_tokens`` (measured on the default model); 16 digits
is more than a float64 holds. Only applied when the grammar leaves another token."""


@dataclass(frozen=True)
class _DigitTable:
    starts_with_digit: torch.Tensor
    """bool[vocab]: tokens whose text begins with a digit."""
    all_digits: list[int]
    """Per token: its digit count if its text is only digits, else -1."""
    trailing: list[int]
    """Per token: how many digits its text ends with."""


_digit_tables: dict[int, tuple[llguidance.LLTokenizer, _DigitTable]] = {}
"""By ``id`` of the llguidance tokenizer, which the entry keeps alive (so the id is never reused)."""


def _digit_table(lltok: llguidance.LLTokenizer) -> _DigitTable:
    key = id(lltok)
    entry = _digit_tables.get(key)
    table = entry[1] if entry else None
    if table is None:
        starts, alls, trailing = [], [], []
        for token in range(lltok.vocab_size):
            text = lltok.decode_bytes([token]).decode("utf-8", errors="replace")
            stripped = text.rstrip("0123456789")
            starts.append(bool(text) and text[0].isascii() and text[0].isdigit())
            alls.append(len(text) if text and not stripped else -1)
            trailing.append(len(text) - len(stripped))
        table = _DigitTable(torch.tensor(starts, dtype=torch.bool), alls, trailing)
        _digit_tables[key] = (lltok, table)
    return table


def _ll_tokenizer(tokenizer: Any, eos_token_ids: list[int] | None) -> llguidance.LLTokenizer:
    eos = tuple(eos_token_ids) if eos_token_ids else (tokenizer.eos_token_id,)
    with _tokenizers_lock:
        per_eos = _tokenizers.setdefault(tokenizer, {})
        if eos not in per_eos:
            per_eos[eos] = llguidance.hf.from_tokenizer(tokenizer, eos_token=list(eos))
        return per_eos[eos]


class JsonSchemaLogitsProcessor(LogitsProcessor):
    """Mask every token that would take a row's output outside the JSON grammar.

    One llguidance matcher per batch row. On each call it first feeds each matcher
    the tokens generated since the previous call, then allows only the tokens the
    grammar accepts next. Once a row's JSON is complete (its matcher has stopped),
    only EOS is allowed, so the row ends. transformers keeps calling with pad tokens
    for rows that have finished; a stopped matcher ignores them. A matcher that
    rejects a token (a row cut off by a stop string, then padded) counts as stopped
    too: it gets EOS only rather than an error in the middle of a batch.

    ``time_s`` and ``calls`` add up the time spent in the processor, for benchmarks.
    """

    def __init__(self, grammar: JsonGrammar, batch_size: int = 1):
        first = LLMatcher(grammar.tokenizer, grammar.grammar, log_level=0)
        if first.is_error():
            raise GrammarError(f"cannot compile JSON schema: {first.get_error()}")
        self.matchers = [first] + [first.deep_copy() for _ in range(batch_size - 1)]
        """One matcher per batch row."""
        self.eos_token_ids = list(grammar.tokenizer.eos_tokens)
        self.vocab_size = grammar.tokenizer.vocab_size
        """Tokens the grammar knows; any further logits (padded embeddings) are masked."""
        words = (self.vocab_size + 31) // 32
        self._bitmask = torch.zeros((batch_size, words), dtype=torch.int32)
        self._eos_only = torch.zeros(words * 32, dtype=torch.bool)
        self._eos_only[self.eos_token_ids] = True
        self._shifts = torch.arange(32, dtype=torch.int32)
        self._seen: int | None = None  # sequence length at the previous call
        self._digits = grammar.digits
        self._runs = [0] * batch_size  # digits at the end of each row's output
        self.time_s = 0.0
        """Total seconds spent in this processor (consuming tokens, computing masks)."""
        self.calls = 0
        """How many decoding steps it masked."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        start = time.perf_counter()
        if len(self.matchers) != input_ids.shape[0]:
            raise ValueError(
                f"processor built for {len(self.matchers)} rows called with {input_ids.shape[0]}"
            )
        if self._seen is not None:
            new = input_ids[:, self._seen :].tolist()
            for row, (matcher, tokens) in enumerate(zip(self.matchers, new, strict=True)):
                for token in tokens:
                    if matcher.is_stopped():
                        break  # finished row: the rest is padding
                    matcher.consume_token(token)
                    if self._digits is not None and token < len(self._digits.all_digits):
                        n = self._digits.all_digits[token]
                        self._runs[row] = (
                            self._runs[row] + n if n >= 0 else self._digits.trailing[token]
                        )
        self._seen = input_ids.shape[1]
        stopped, capped = [], []
        for row, matcher in enumerate(self.matchers):
            if matcher.is_stopped():  # also true in the error state
                stopped.append(row)
            else:
                mask = self._bitmask[row]
                matcher.unsafe_compute_mask_ptr(mask.data_ptr(), mask.numel() * 4)
                if self._runs[row] >= MAX_DIGIT_RUN:
                    capped.append(row)
        self._apply(scores, stopped, capped)
        self.time_s += time.perf_counter() - start
        self.calls += 1
        return scores

    def _apply(self, scores: torch.Tensor, stopped: list[int], capped: list[int] = ()) -> None:
        """Set the logits of disallowed tokens to -inf, in place (rows ``stopped``: all but
        EOS; rows ``capped``: no digit, unless a digit is all the grammar allows)."""
        rows, vocab = scores.shape
        width = min(vocab, self.vocab_size)
        # Bit k of int32 word w allows token 32 * w + k.
        bits = (self._bitmask.unsqueeze(-1) >> self._shifts) & 1
        allowed = bits.view(rows, -1)[:, :width].bool()
        if stopped:
            allowed[stopped] = self._eos_only[:width]
        for row in capped:
            no_digit = allowed[row] & ~self._digits.starts_with_digit[:width]
            if no_digit.any():
                allowed[row] = no_digit
        scores[:, :width].masked_fill_(~allowed.to(scores.device), float("-inf"))
        if vocab > width:
            scores[:, width:] = float("-inf")
