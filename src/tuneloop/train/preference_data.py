"""Preference data for the DPO family, rendered with the model's own chat template.

TRL's preference trainers take *standard* (string) rows: ``prompt``, ``chosen``,
``rejected`` (KTO: ``prompt``, ``completion``, ``label``). We render them ourselves
rather than hand TRL conversational rows, because TRL would then re-apply the
tokenizer's template and ignore our tool-call rendering (Hermes ``<tool_call>``
blocks for templates without native tools):

- ``prompt`` = ``render_text(tokenizer, prompt, tools, add_generation_prompt=True)``;
- an answer (``chosen``, ``rejected``, ``completion``) = the text that follows the
  prompt in the full rendering of prompt+answer, up to and including the answer's
  last end-of-turn token. The full rendering goes through ``render_for_training``
  (prompt assistant turns at weight 0), so its guards hold for every answer: the
  prompt is a text and token prefix, the answer has trainable tokens, and its
  end-of-turn token is one of them.

So ``prompt + chosen`` is exactly what the model sees at inference followed by the
answer it should give. Two adjustments keep that true after TRL tokenizes the
strings: a BOS the template rendered is dropped when the tokenizer adds its own
(TRL tokenizes with ``add_special_tokens=True``), and ``max_prompt_length`` keeps the
last tokens of the prompt (TRL 1.16 has no such option). TRL appends
``tokenizer.eos_token`` to answers that do not end with it; ``answers_without_eos``
counts those (0 for ChatML models, where the end-of-turn token is the EOS).

An answer of several turns (assistant, tool result, assistant) is one completion:
TRL's completion mask then covers the tool result's tokens as well.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneloop.data import (
    DataError,
    LabeledExample,
    PreferencePair,
    read_records,
    to_chat_messages,
    tools_as_dicts,
)
from tuneloop.models.chat_template import RenderError, render_for_training, render_text

Record = PreferencePair | LabeledExample


@dataclass
class PreferenceSplit:
    """Rendered rows (TRL standard format plus a ``record`` id) and their token counts."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    answer_tokens: dict[str, list[int]] = field(default_factory=dict)
    """Tokens per answer column: chosen/rejected, or completion for KTO."""
    truncated_prompts: int = 0
    """Prompts cut to ``max_prompt_length`` (kept from the left)."""
    too_long: int = 0
    """Rows whose prompt+answer exceeds ``max_length`` (TRL cuts the answer's end)."""
    answers_without_eos: int = 0
    """Answers TRL will append ``tokenizer.eos_token`` to."""

    def summary(self) -> dict[str, Any]:
        """Counts and mean token lengths (what ``--dry-run`` prints and the manifest keeps)."""

        def mean(xs: list[int]) -> float:
            return round(sum(xs) / len(xs), 1) if xs else 0.0

        out: dict[str, Any] = {"records": len(self.rows), "mean_prompt_tokens": mean(self.prompt_tokens)}
        for name, lengths in self.answer_tokens.items():
            out[f"mean_{name}_tokens"] = mean(lengths)
        if "chosen" in self.answer_tokens:
            longer = sum(c > r for c, r in zip(self.answer_tokens["chosen"], self.answer_tokens["rejected"], strict=True))
            out["chosen_longer_share"] = round(longer / len(self.rows), 3) if self.rows else 0.0
        if self.rows and "label" in self.rows[0]:
            out["desirable"] = sum(bool(r["label"]) for r in self.rows)
            out["undesirable"] = len(self.rows) - out["desirable"]
        out.update(truncated_prompts=self.truncated_prompts, too_long=self.too_long,
                   answers_without_eos=self.answers_without_eos)  # fmt: skip
        return out


def pairs_to_labeled(pairs: list[PreferencePair]) -> list[LabeledExample]:
    """KTO examples from pairs: each chosen answer is desirable, each rejected one is not."""
    out = []
    for p in pairs:
        for answer, label in ((p.chosen, True), (p.rejected, False)):
            out.append(LabeledExample(prompt=p.prompt, completion=answer, label=label, tools=p.tools,
                                      metadata=p.metadata, id=p.id))  # fmt: skip
    return out


def read_preference_records(files: list[Path], labeled: bool) -> list[tuple[str, Record]]:
    """``(file:line, record)`` for every line. PreferencePair always; LabeledExample only
    when ``labeled`` (KTO). Any other record is a :class:`DataError` naming its line."""
    wanted = (PreferencePair, LabeledExample) if labeled else (PreferencePair,)
    records = []
    for path in files:
        for row, record in read_records(path):
            if not isinstance(record, wanted):
                need = "PreferencePair or LabeledExample" if labeled else "PreferencePair (prompt/chosen/rejected)"
                raise DataError(row.file, row.line, f"expected a {need} record, got {type(record).__name__}")
            records.append((f"{row.file}:{row.line}", record))
    return records


def split_records(records: list, fraction: float, seed: int) -> tuple[list, list]:
    """Seeded hold-out of ``fraction`` of the records (at least one when fraction > 0).

    Records are split before KTO unpairs them, so both answers of a pair land on one side.
    """
    records = list(records)
    random.Random(seed).shuffle(records)
    n_eval = max(1, round(len(records) * fraction)) if fraction > 0 and len(records) > 1 else 0
    return records[n_eval:], records[:n_eval]


def _drop_auto_bos(tokenizer, text: str) -> str:
    """Drop a rendered BOS when the tokenizer adds one itself, so TRL's tokenization has one."""
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and tokenizer.bos_token_id in tokenizer("", add_special_tokens=True)["input_ids"]:
        return text[len(bos):]
    return text


def _cut_prompt(tokenizer, prompt: str, max_prompt_length: int | None) -> tuple[str, bool]:
    """Keep the last ``max_prompt_length`` tokens of ``prompt`` (cut at a token boundary)."""
    if max_prompt_length is None:
        return prompt, False
    enc = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
    n = len(enc["input_ids"])
    if n <= max_prompt_length:
        return prompt, False
    return prompt[enc["offset_mapping"][n - max_prompt_length][0]:], True


def render_answer(tokenizer, prompt: list[dict], answer: list[dict], tools: list[dict] | None) -> tuple[str, str]:
    """``(prompt_text, answer_text)`` such that ``prompt_text + answer_text`` is the full
    rendering of prompt+answer up to the answer's last end-of-turn token.

    Raises :class:`RenderError` when the template breaks a guard (see the module docstring).
    """
    prompt_text = render_text(tokenizer, prompt, tools, add_generation_prompt=True)
    context = [{**m, "weight": 0} if m.get("role") == "assistant" else m for m in prompt]
    rendered = render_for_training(tokenizer, context + answer, tools)
    if not rendered.text.startswith(prompt_text):
        raise RenderError("prompt_not_prefix", "the rendered prompt is not a text prefix of prompt+answer")
    enc = tokenizer(rendered.text, add_special_tokens=False, return_offsets_mapping=True)
    if enc["input_ids"] != rendered.input_ids:  # render_for_training tokenized the same text
        raise RenderError("template_error", "tokenizing the rendered text twice gave different ids")
    end = enc["offset_mapping"][rendered.assistant_spans[-1][1] - 1][1]
    return prompt_text, rendered.text[len(prompt_text):end]


def render_records(records: list[tuple[str, Record]], tokenizer, kto: bool, max_length: int,
                   max_prompt_length: int | None = None) -> PreferenceSplit:  # fmt: skip
    """Render records into TRL standard rows. ``kto``: LabeledExample rows (pairs unpaired
    with :func:`pairs_to_labeled`); otherwise PreferencePair rows."""
    split = PreferenceSplit(answer_tokens={"completion": []} if kto else {"chosen": [], "rejected": []})
    eos = tokenizer.eos_token

    def n_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    for record_id, record in records:
        examples = pairs_to_labeled([record]) if kto and isinstance(record, PreferencePair) else [record]
        for ex in examples:
            tools = tools_as_dicts(ex.tools)
            prompt_msgs = to_chat_messages(ex.prompt)
            answers = ({"completion": ex.completion} if kto else {"chosen": ex.chosen, "rejected": ex.rejected})
            row: dict[str, Any] = {}
            try:
                for name, msgs in answers.items():
                    prompt, row[name] = render_answer(tokenizer, prompt_msgs, to_chat_messages(msgs), tools)
            except RenderError as exc:
                file, _, line = record_id.rpartition(":")
                raise DataError(file, int(line), f"[{exc.check}] {exc}", name) from None
            prompt, cut = _cut_prompt(tokenizer, _drop_auto_bos(tokenizer, prompt), max_prompt_length)
            row["prompt"] = prompt
            if kto:
                row["label"] = bool(ex.label)
            row["record"] = record_id
            split.truncated_prompts += cut
            p = n_tokens(prompt)
            split.prompt_tokens.append(p)
            lengths = {name: n_tokens(row[name]) for name in answers}
            for name, n in lengths.items():
                split.answer_tokens[name].append(n)
                split.answers_without_eos += bool(eos) and not row[name].endswith(eos)
            split.too_long += p + max(lengths.values()) > max_length
            split.rows.append(row)
    return split


def to_dataset(split: PreferenceSplit, with_record: bool = True):
    """A ``datasets.Dataset`` of the rows (the ``record`` column tracks batch provenance)."""
    from datasets import Dataset

    rows = split.rows if with_record else [{k: v for k, v in r.items() if k != "record"} for r in split.rows]
    return Dataset.from_list(rows)
