"""Best-of-n (rejection sampling): sample n answers per prompt, keep only verified ones.

A scorer is a reward (docs/rl.md): the same checks that grade the scorecard decide
which sampled answer is kept. Reads top to bottom::

    prompts = read_prompts(["data/grpo/json_prompts.jsonl"])   # EvalSample, file:line kept
    check_prompts(prompts, ["json_schema"])                     # a prompt a scorer cannot grade fails here
    candidates = sample_candidates(model, prompts, 8, generation, seed=0)  # seeds 0..7
    terms = [scorer_term("json_schema")]
    scored = [score_candidates(p, c, terms, 1.0) for p, c in zip(prompts, candidates)]
    best_of(scored[0])                                          # the best verified answer, or None

Ranking: mean scorer value, higher first; ties go to the shorter answer (completion
tokens), then to the earlier sample. A candidate is *verified* when no scorer failed
it (``Score.passed is False``) and its mean value is at least ``threshold``.

:func:`select_pair` picks a chosen/rejected pair from the same candidates for DPO; with
``length_control`` it picks pairs that do not teach "longer is better".
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tuneloop.data.io import DataError, read_records, write_jsonl
from tuneloop.data.records import (
    Conversation,
    EvalSample,
    PreferencePair,
    to_chat_messages,
    tools_as_dicts,
)
from tuneloop.eval.scoring import Completion, Score, get_scorer
from tuneloop.runtime.toolcalls import parse_output
from tuneloop.runtime.types import ChatModel, GenerationConfig, GenerationOutput, generate_many

BATCH_SIZE = 8
"""Conversations per ``generate_many`` call (as in eval: enough to batch on 2 CPU cores)."""


class BestOfNConfig(BaseModel):
    """How many answers to sample per prompt and how to judge them."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    n: int = Field(8, ge=1)
    """Answers sampled per prompt."""
    scorers: list[str] = Field(min_length=1)
    """Registered scorer names; a candidate's value is the mean of their values."""
    threshold: float = 1.0
    """Mean scorer value a candidate needs to count as verified."""
    temperature: float = Field(0.8, gt=0)
    """Sampling temperature (must sample, or all n answers are the same)."""
    max_new_tokens: int = Field(256, ge=1)
    """Token budget of each answer."""
    seed: int = 0
    """Sample i of every prompt uses seed ``seed + i``, so reruns reproduce."""


@dataclass
class Prompt:
    """An EvalSample and where it came from (``file:line``)."""

    sample: EvalSample
    where: str


@dataclass
class Candidate:
    """One sampled answer and its grades."""

    index: int
    """Which of the n samples (its seed is ``seed + index``)."""
    completion: Completion
    value: float
    """Mean of the scorer values."""
    verified: bool
    tokens: int
    """Completion tokens (the length used for tie-breaks and length control)."""
    scores: dict[str, float] = field(default_factory=dict)


def read_prompts(paths: list[str | Path], limit: int | None = None) -> list[Prompt]:
    """EvalSample records from JSONL files; the first bad line raises ``DataError`` (file:line: field)."""
    prompts = []
    for path in paths:
        for row, record in read_records(path, "eval"):
            prompts.append(Prompt(record, f"{row.file}:{row.line}"))
    if not prompts:
        raise DataError(", ".join(map(str, paths)), None, "no prompts")
    return prompts[:limit] if limit else prompts


def check_prompts(prompts: list[Prompt], scorers: list[str]) -> None:
    """Grade an empty answer for every prompt, so a prompt a scorer cannot grade (a
    json_schema prompt without ``schema``) fails before any generation, naming file:line."""
    fns = [get_scorer(name) for name in scorers]
    for prompt in prompts:
        for fn in fns:
            try:
                fn(prompt.sample, Completion(text=""))
            except ValueError as exc:
                file, _, line = prompt.where.rpartition(":")
                raise DataError(file, int(line), str(exc)) from None


def _completion(
    messages: list[dict], output: GenerationOutput, tools: list[dict] | None
) -> Completion:
    parsed = parse_output(output.text, output.tool_calls, tools_offered=bool(tools))
    return Completion(
        text=output.text,
        messages=[*messages, {"role": "assistant", "content": output.text}],
        attempted_tool_calls=[{"name": c.name, "arguments": c.arguments} for c in parsed.calls],
        error=output.text if output.finish_reason == "error" else None,
        metadata={
            "finish_reason": output.finish_reason,
            "completion_tokens": output.completion_tokens,
            "latency_s": output.latency_s,
        },  # fmt: skip
    )


def sample_candidates(model: ChatModel, prompts: list[Prompt], n: int, generation: GenerationConfig,
                      seed: int | None = None) -> list[list[Completion]]:  # fmt: skip
    """``n`` completions per prompt: sample i of every prompt with seed ``seed + i``, in
    batches of :data:`BATCH_SIZE` prompts that offer the same tools. ``seed=None`` keeps
    ``generation.seed`` (greedy evaluation needs none)."""
    out: list[list[Completion]] = [[] for _ in prompts]
    groups: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        groups.setdefault(
            json.dumps(tools_as_dicts(prompt.sample.tools), sort_keys=True), []
        ).append(i)
    for attempt in range(n):
        for positions in groups.values():
            tools = tools_as_dicts(prompts[positions[0]].sample.tools)
            config = generation.model_copy(update={"tools": tools or None, "json_schema": None,
                                                   "seed": generation.seed if seed is None else seed + attempt})  # fmt: skip
            for start in range(0, len(positions), BATCH_SIZE):
                chunk = positions[start : start + BATCH_SIZE]
                conversations = [to_chat_messages(prompts[i].sample.input) for i in chunk]
                outputs = generate_many(model, conversations, config)
                for i, messages, output in zip(chunk, conversations, outputs, strict=True):
                    out[i].append(_completion(messages, output, tools))
    return out


Term = tuple[str, float, Callable[[Prompt, list[Completion]], list[Score]]]
"""One grading term: ``(name, weight, grade)``; ``grade(prompt, completions)`` returns
one :class:`Score` per completion."""


def scorer_term(name: str, weight: float = 1.0) -> Term:
    """A registered scorer as a term (``KeyError`` names the known scorers)."""
    fn = get_scorer(name)
    return name, weight, lambda prompt, completions: [fn(prompt.sample, c) for c in completions]


def reward_model_term(path: str, weight: float = 1.0) -> Term:
    """A trained reward model as a term: its score is the value; it never fails a sample."""
    from tuneloop.train.reward_model import RewardModel  # optional component (issue 9)

    model = RewardModel.load(path)

    def grade(prompt: Prompt, completions: list[Completion]) -> list[Score]:
        messages = to_chat_messages(prompt.sample.input)
        values = model.score([messages] * len(completions), [c.text for c in completions])
        return [Score(value=float(v)) for v in values]

    return f"reward_model:{path}", weight, grade


def score_candidates(prompt: Prompt, completions: list[Completion], terms: list[Term],
                     threshold: float) -> list[Candidate]:  # fmt: skip
    """Grade each completion with every term: value = weighted mean of the values,
    verified = no term failed it (``passed is False``) and value >= ``threshold``."""
    graded = {name: grade(prompt, completions) for name, _, grade in terms}
    total = sum(weight for _, weight, _ in terms) or 1.0
    candidates = []
    for index, completion in enumerate(completions):
        scores = {name: graded[name][index] for name, _, _ in terms}
        value = sum(weight * scores[name].value for name, weight, _ in terms) / total
        verified = value >= threshold and all(s.passed is not False for s in scores.values())
        tokens = int(completion.metadata.get("completion_tokens") or len(completion.text.split()))
        candidates.append(Candidate(index, completion, value, verified, tokens,
                                    {k: s.value for k, s in scores.items()}))  # fmt: skip
    return candidates


def ranked(candidates: list[Candidate]) -> list[Candidate]:
    """Best first: higher value, then fewer tokens, then shorter text, then earlier sample."""
    return sorted(candidates, key=lambda c: (-c.value, c.tokens, len(c.completion.text), c.index))


def best_of(candidates: list[Candidate]) -> Candidate | None:
    """The best candidate when it is verified, else None (the prompt is rejected)."""
    best = ranked(candidates)[0] if candidates else None
    return best if best is not None and best.verified else None


class PairRule(BaseModel):
    """How a chosen/rejected pair is picked from one prompt's scored samples."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    strategy: str = Field("best_vs_worst", pattern="^best_vs_worst$")
    """``best_vs_worst``: chosen from the top-scoring samples, rejected from the bottom-scoring."""
    min_gap: float = Field(0.5, gt=0)
    """Skip the prompt when top value - bottom value is below this (no clear preference)."""
    length_control: bool = True
    """Chosen = the shortest top-scoring sample; rejected = the bottom-scoring sample
    closest in length to it, so pairs do not teach "longer is better". Off: chosen is
    still the shortest top sample, rejected the earliest bottom sample."""


def select_pair(candidates: list[Candidate], rule: PairRule) -> tuple[Candidate, Candidate] | None:
    """(chosen, rejected), or None when the score gap is below ``rule.min_gap``.

    Lengths are completion tokens; ties in length go to the earlier sample.
    """
    if not candidates:
        return None
    top = max(c.value for c in candidates)
    bottom = min(c.value for c in candidates)
    if top - bottom < rule.min_gap:
        return None
    chosen = ranked([c for c in candidates if c.value == top])[0]
    worst = [c for c in candidates if c.value == bottom]
    if rule.length_control:
        rejected = min(worst, key=lambda c: (abs(c.tokens - chosen.tokens), c.index))
    else:
        rejected = min(worst, key=lambda c: c.index)
    return chosen, rejected


def assistant_message(completion: Completion, tools: list[dict] | None) -> dict[str, Any]:
    """The answer as a record message: a written tool call becomes structured ``tool_calls``."""
    parsed = parse_output(completion.text, None, tools_offered=bool(tools))
    if tools and parsed.calls and not parsed.errors:
        calls = [
            {"type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in parsed.calls
        ]
        return {"role": "assistant", "content": parsed.content or None, "tool_calls": calls}
    return {"role": "assistant", "content": completion.text}


def sft_record(prompt: Prompt, best: Candidate, n: int, model: str) -> Conversation:
    """The accepted answer as a Conversation: the prompt's messages + the answer, tools kept."""
    tools = tools_as_dicts(prompt.sample.tools)
    return Conversation.model_validate({
        "id": f"{prompt.sample.id}-bon", "tools": tools,
        "messages": [*to_chat_messages(prompt.sample.input), assistant_message(best.completion, tools)],
        "metadata": {"source": "best-of-n", "prompt_id": prompt.sample.id, "score": best.value,
                     "scores": best.scores, "n": n, "sample_index": best.index, "model": model},
    })  # fmt: skip


def pair_record(
    prompt: Prompt, chosen: Candidate, rejected: Candidate, source: str, model: str
) -> PreferencePair:
    """A PreferencePair of two sampled answers, their scores in metadata."""
    tools = tools_as_dicts(prompt.sample.tools)
    return PreferencePair.model_validate({
        "id": f"{prompt.sample.id}-pair", "tools": tools, "prompt": to_chat_messages(prompt.sample.input),
        "chosen": [assistant_message(chosen.completion, tools)],
        "rejected": [assistant_message(rejected.completion, tools)],
        "metadata": {"source": source, "prompt_id": prompt.sample.id, "model": model,
                     "chosen_score": chosen.value, "rejected_score": rejected.value,
                     "chosen_tokens": chosen.tokens, "rejected_tokens": rejected.tokens},
    })  # fmt: skip


# ----------------------------------------------------------------------- the whole job


class OutputInvalid(ValueError):
    """The written records failed the data layer's validation; nothing was kept."""


def run_best_of_n(model: ChatModel, prompts: list[Prompt], config: BestOfNConfig, out_dir: str | Path,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Sample, score, keep verified bests; write ``out_dir`` (sft.jsonl, pairs.jsonl,
    manifest.json) all at once, after the records pass validation. Returns the manifest."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(f"{out_dir}: already exists; choose a new output folder")
    check_prompts(prompts, config.scorers)
    start = time.perf_counter()
    generation = GenerationConfig(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature
    )
    completions = sample_candidates(model, prompts, config.n, generation, seed=config.seed)
    records, pairs, per_prompt = [], [], []
    strict = PairRule(min_gap=1e-9, length_control=True)
    terms = [scorer_term(name) for name in config.scorers]
    for prompt, comps in zip(prompts, completions, strict=True):
        candidates = score_candidates(prompt, comps, terms, config.threshold)
        best = best_of(candidates)
        if best is not None:
            records.append(sft_record(prompt, best, config.n, model.name))
            pair = select_pair(candidates, strict)
            if pair is not None and pair[1].verified is False:
                pairs.append(pair_record(prompt, *pair, source="best-of-n", model=model.name))
        top = ranked(candidates)[0]
        per_prompt.append({"id": prompt.sample.id, "where": prompt.where, "best_score": top.value,
                           "accepted": best is not None,
                           "verified_samples": sum(c.verified for c in candidates),
                "best_text": top.completion.text[:160]})  # fmt: skip
    manifest = {
        "config": config.model_dump(), "model": model.name, "scorers": config.scorers,
        "prompts": len(prompts), "accepted": len(records),
        "acceptance_rate": len(records) / len(prompts), "pairs": len(pairs),
        "samples_generated": sum(len(c) for c in completions),
        "wall_time_s": round(time.perf_counter() - start, 2), "per_prompt": per_prompt, **(extra or {}),
    }  # fmt: skip
    _write_atomically(out_dir, records, pairs, manifest)
    return manifest


def validate_records(path: Path) -> None:
    """Blocking check of a written file with the data layer's validators (errors only)."""
    from tuneloop.data.validate import validate_files

    report = validate_files([path])
    errors = [f for f in report.findings if f.severity == "error"]
    if errors:
        first = errors[0]
        raise OutputInvalid(f"{path.name}:{first.line}: {first.check}: {first.message} "
                            f"({len(errors)} error(s)); nothing written")  # fmt: skip


def _write_atomically(out_dir: Path, records: list, pairs: list, manifest: dict) -> None:
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write_jsonl(tmp / "sft.jsonl", records)
        write_jsonl(tmp / "pairs.jsonl", pairs)
        for name, rows in (("sft.jsonl", records), ("pairs.jsonl", pairs)):
            if rows:
                validate_records(tmp / name)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked by the caller); rename needs the name free
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
