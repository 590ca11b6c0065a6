"""A trained Bradley-Terry reward model: load it, score answers, use it as a GRPO reward.

One rendering, used by training and scoring alike: the prompt and the answer go
through :func:`~tuneloop.train.preference_data.render_answer` (the chat template, tool
calls included), so the scored text is the prompt as the model sees it at inference
followed by the answer up to its end-of-turn token. Text longer than ``max_length``
keeps its *last* tokens, because a sequence classifier reads its score at the last
token, and the answer's end is what is being judged.

The pad token must differ from the end-of-turn token: transformers reads the score at
the last token that is not padding, so with ``pad == <|im_end|>`` (SmolLM2's default)
the score would be read one token early. :func:`use_distinct_pad_token` picks another
special token; the run saves that tokenizer, so loading gets the same choice.

    rm = RewardModel.load("runs/smollm2-reward")
    rm.score([[{"role": "user", "content": "2+2?"}]], ["4."])        # -> [1.7]
    grpo_reward = rm.reward_function(weight=0.5)                       # f(prompts, completions, **kw)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuneloop.data import DataError, Message, tools_as_dicts
from tuneloop.models.chat_template import RenderError
from tuneloop.train.preference_data import render_answer

META_FILE = "reward_model.json"
"""Written into ``final/`` by the recipe: max_length, and the base model (folder and reference)."""
PAD_CANDIDATES = ("<|endoftext|>", "<|finetune_right_pad_id|>", "<pad>", "<|pad|>")


def use_distinct_pad_token(tokenizer) -> None:
    """Make ``tokenizer.pad_token`` differ from the EOS / end-of-turn token when the vocabulary allows."""
    if tokenizer.pad_token is not None and tokenizer.pad_token != tokenizer.eos_token:
        return
    vocab = tokenizer.get_vocab()
    for token in (tokenizer.unk_token, *PAD_CANDIDATES):
        if token and token in vocab and token != tokenizer.eos_token:
            tokenizer.pad_token = token
            return
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token


def _messages(value: str | list, role: str) -> list[dict]:
    """A plain string is one message of ``role``; messages (records or dicts) are normalised."""
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return [
        (m if isinstance(m, Message) else Message.model_validate(m)).to_json_dict() for m in value
    ]


def encode(tokenizer, prompt: str | list, answer: str | list, tools: list[dict] | None = None,
           max_length: int | None = None) -> tuple[list[int], bool]:  # fmt: skip
    """``(input_ids, truncated)`` of prompt+answer as the reward model reads it (see the module docstring).

    Raises :class:`~tuneloop.models.chat_template.RenderError` when the template breaks a guard.
    """
    prompt_text, answer_text = render_answer(tokenizer, _messages(prompt, "user"), _messages(answer, "assistant"),
                                             tools)  # fmt: skip
    ids = tokenizer(prompt_text + answer_text, add_special_tokens=False)[
        "input_ids"
    ]  # BOS, if any, is rendered
    if max_length is not None and len(ids) > max_length:
        return ids[-max_length:], True
    return ids, False


def pairwise_summary(chosen: list[float], rejected: list[float]) -> dict[str, Any]:
    """Held-out accuracy (share of pairs with r(chosen) > r(rejected); ties count as wrong)
    and the distribution of margins r(chosen) - r(rejected)."""
    import numpy as np

    margins = np.asarray(chosen, dtype=float) - np.asarray(rejected, dtype=float)
    if not len(margins):
        return {"pairs": 0, "accuracy": None, "margin": None}
    q = np.percentile(margins, [5, 25, 50, 75, 95])
    return {
        "pairs": int(len(margins)), "accuracy": float((margins > 0).mean()), "ties": int((margins == 0).sum()),
        "margin": {"mean": float(margins.mean()), "std": float(margins.std()),
                   **{f"p{p}": float(v) for p, v in zip((5, 25, 50, 75, 95), q, strict=True)}},
        "mean_chosen_reward": float(np.mean(chosen)), "mean_rejected_reward": float(np.mean(rejected)),
    }  # fmt: skip


@dataclass
class PairSplit:
    """Encoded pairs (``chosen_ids``, ``rejected_ids``, optional ``margin``, ``record`` id)."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    truncated: int = 0
    """Pairs with a side longer than max_length (its first tokens were dropped)."""

    def summary(self) -> dict[str, Any]:
        """Counts and mean token lengths (what ``--dry-run`` prints and the manifest keeps)."""
        n = len(self.rows)
        chosen = [len(r["chosen_ids"]) for r in self.rows]
        rejected = [len(r["rejected_ids"]) for r in self.rows]
        return {"records": n, "mean_chosen_tokens": round(sum(chosen) / n, 1) if n else 0.0,
                "mean_rejected_tokens": round(sum(rejected) / n, 1) if n else 0.0,
                "chosen_longer_share": round(sum(c > r for c, r in zip(chosen, rejected, strict=True)) / n, 3)
                if n else 0.0, "truncated": self.truncated}  # fmt: skip


def encode_pairs(
    records: list, tokenizer, max_length: int | None, margin_key: str | None = None
) -> PairSplit:
    """Encode ``(file:line, PreferencePair)`` records; render errors name the line and side."""
    split = PairSplit()
    for record_id, pair in records:
        row: dict[str, Any] = {}
        cut = False
        for side in ("chosen", "rejected"):
            try:
                row[f"{side}_ids"], side_cut = encode(tokenizer, pair.prompt, getattr(pair, side),
                                                      tools_as_dicts(pair.tools), max_length)  # fmt: skip
            except RenderError as exc:
                file, _, line = record_id.rpartition(":")
                raise DataError(file, int(line), f"[{exc.check}] {exc}", side) from None
            cut |= side_cut
        if margin_key:
            margin = (pair.metadata.model_extra or {}).get(margin_key)
            if not isinstance(margin, int | float) or isinstance(margin, bool):
                file, _, line = record_id.rpartition(":")
                raise DataError(file, int(line), f"margin_key: metadata.{margin_key} must be a number",
                                "metadata")  # fmt: skip
            row["margin"] = float(margin)
        split.truncated += cut
        split.rows.append({**row, "record": record_id})
    return split


@dataclass
class RewardModel:
    """A sequence classifier with one output (LoRA-wrapped or full) and its tokenizer."""

    model: Any
    tokenizer: Any
    max_length: int | None = None
    """Inputs longer than this keep their last tokens (the training run's max_length)."""

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> RewardModel:
        """Load a ``tuneloop train reward`` run folder (its ``final/``), a LoRA adapter
        folder, or a full sequence-classification model folder."""
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        folder = _model_folder(Path(path))
        meta = (
            json.loads((folder / META_FILE).read_text()) if (folder / META_FILE).is_file() else {}
        )
        if (folder / "adapter_config.json").is_file():
            from peft import PeftModel

            adapter = json.loads((folder / "adapter_config.json").read_text())
            if adapter.get("task_type") != "SEQ_CLS":
                raise ValueError(
                    f"{folder}: a {adapter.get('task_type')} adapter, not a reward model (SEQ_CLS)"
                )
            base = meta.get("base_model") or adapter.get("base_model_name_or_path")
            if (not base or not Path(base).is_dir()) and meta.get(
                "model"
            ):  # moved to another machine
                from tuneloop.models.resolve import resolve_model

                base = str(resolve_model(meta["model"], pull_missing=False).path)
            if not base or not Path(base).is_dir():
                raise ValueError(f"{folder}: base model folder {base!r} of the adapter is missing")
            tokenizer = AutoTokenizer.from_pretrained(
                folder if (folder / "tokenizer_config.json").is_file() else base
            )
            model = load_sequence_classifier(AutoModelForSequenceClassification, base, num_labels=1)
            model.config.pad_token_id = tokenizer.pad_token_id
            model = PeftModel.from_pretrained(model, str(folder))
        else:
            config = json.loads((folder / "config.json").read_text())
            if not any(a.endswith("ForSequenceClassification") for a in config.get("architectures") or []) \
                    or len(config.get("id2label") or {0: ""}) != 1:  # fmt: skip
                raise ValueError(
                    f"{folder}: not a reward model (a sequence classifier with one label)"
                )
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = load_sequence_classifier(AutoModelForSequenceClassification, folder)
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return cls(model.to(device).eval(), tokenizer, meta.get("max_length"))

    def encode(
        self, prompt: str | list, completion: str | list, tools: list[dict] | None = None
    ) -> list[int]:
        """Token ids of one prompt+completion, exactly as training rendered pairs."""
        return encode(self.tokenizer, prompt, completion, tools, self.max_length)[0]

    def score_ids(self, batch_ids: list[list[int]], batch_size: int = 8) -> list[float]:
        """Rewards of ready token-id sequences, right-padded in batches of ``batch_size``.
        Batches are formed in length order (little padding to compute), results in input order."""
        import torch

        pad = self.tokenizer.pad_token_id
        device = next(self.model.parameters()).device
        order = sorted(range(len(batch_ids)), key=lambda i: len(batch_ids[i]))
        out: list[float] = [0.0] * len(batch_ids)
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                width = max(len(batch_ids[i]) for i in chunk)
                ids = [batch_ids[i] + [pad] * (width - len(batch_ids[i])) for i in chunk]
                mask = [[1] * len(batch_ids[i]) + [0] * (width - len(batch_ids[i])) for i in chunk]
                logits = self.model(input_ids=torch.tensor(ids, device=device),
                                    attention_mask=torch.tensor(mask, device=device), use_cache=False).logits  # fmt: skip
                for i, value in zip(chunk, logits[:, 0].float().tolist(), strict=True):
                    out[i] = value
        return out

    def score(self, prompts: list, completions: list, batch_size: int = 8) -> list[float]:
        """One reward per (prompt, completion). Prompts: message lists or strings (one user
        turn); completions: strings or message lists (the assistant's answer)."""
        return self.score_ids(
            [self.encode(p, c) for p, c in zip(prompts, completions, strict=True)], batch_size
        )

    def reward_function(
        self, weight: float = 1.0, batch_size: int = 8
    ) -> Callable[..., list[float | None]]:
        """TRL's GRPO reward signature ``f(prompts, completions, **kwargs)``; a completion the
        chat template cannot render scores None (TRL ignores it) and counts in ``f.errors``."""
        from tuneloop.models.chat_template import RenderError

        def reward_model(prompts: list, completions: list, **kwargs: Any) -> list[float | None]:
            ids, ok = [], []
            for prompt, completion in zip(prompts, completions, strict=True):
                try:
                    ids.append(self.encode(prompt, completion))
                    ok.append(True)
                except RenderError:
                    reward_model.errors += 1  # type: ignore[attr-defined]
                    ok.append(False)
            scores = iter(self.score_ids(ids, batch_size))
            return [weight * next(scores) if good else None for good in ok]

        reward_model.errors = 0  # type: ignore[attr-defined]
        return reward_model


def _model_folder(path: Path) -> Path:
    for candidate in (path / "final", path):
        if (candidate / "adapter_config.json").is_file() or (candidate / "config.json").is_file():
            return candidate
    raise ValueError(
        f"{path}: neither a reward run folder (with final/), an adapter folder nor a model folder"
    )


def load_sequence_classifier(auto_cls, path, **kwargs):
    """from_pretrained without the 'newly initialized: score.weight' notice (the base is a causal LM)."""
    import torch
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return auto_cls.from_pretrained(path, dtype=torch.float32, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
