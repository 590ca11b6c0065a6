"""Sampling for annotation: spend human time where the model is least sure.

Sample ``n`` answers per prompt; uncertainty is how much they disagree (1 - mean
pairwise token-set Jaccard similarity) plus, with a schema, the share that fail it.
The most different pair of samples becomes a comparison item, most uncertain first.
"""

from __future__ import annotations

import json
import re
from itertools import combinations
from typing import Any

from pydantic import BaseModel

from tuneloop.annotate.store import AnnotationStore
from tuneloop.runtime.types import ChatModel, GenerationConfig, generate_many

_TOKEN = re.compile(r"\w+|[^\w\s]")


class SampledPrompt(BaseModel):
    prompt: list[dict[str, Any]]
    samples: list[str]
    model: str = ""
    disagreement: float
    """1 - mean pairwise Jaccard similarity of the samples' token sets (0: all alike)."""
    schema_failure_rate: float | None = None
    """Share of samples that are not JSON valid against the schema (None: no schema)."""
    uncertainty: float
    """``disagreement + schema_failure_rate``: the item's annotation priority."""
    pair: tuple[int, int]
    """Indices of the two most different samples."""


def jaccard(x: str, y: str) -> float:
    """Token-set Jaccard similarity; two empty texts are identical (1.0).

    ``"the cat sat"`` vs ``"the dog sat"``: {the, sat} / {the, cat, dog, sat} = 2/4.
    """
    a, b = set(_TOKEN.findall(x.lower())), set(_TOKEN.findall(y.lower()))
    return 1.0 if not a | b else len(a & b) / len(a | b)


def _schema_failures(samples: list[str], schema: dict) -> float:
    from jsonschema.validators import validator_for

    validator = validator_for(schema)(schema)
    failed = 0
    for text in samples:
        try:
            failed += not validator.is_valid(json.loads(text))
        except ValueError:
            failed += 1
    return failed / len(samples)


def score_samples(prompt: list[dict], samples: list[str], schema: dict | None = None,
                  model: str = "") -> SampledPrompt:  # fmt: skip
    """Uncertainty of one prompt's samples, and its most different pair."""
    sims = {
        (i, j): jaccard(samples[i], samples[j]) for i, j in combinations(range(len(samples)), 2)
    }
    disagreement = 1 - sum(sims.values()) / len(sims) if sims else 0.0
    pair = min(sims, key=lambda k: (sims[k], k)) if sims else (0, 0)
    failures = _schema_failures(samples, schema) if schema is not None and samples else None
    return SampledPrompt(prompt=prompt, samples=samples, model=model, disagreement=disagreement,
                         schema_failure_rate=failures, uncertainty=disagreement + (failures or 0.0),
                         pair=pair)  # fmt: skip


def sample_for_annotation(model: ChatModel, prompts: list[list[dict]], *, n: int = 4,
                          temperature: float = 0.8, seed: int = 0, schema: dict | None = None,
                          max_new_tokens: int = 128) -> list[SampledPrompt]:  # fmt: skip
    """``n`` samples per prompt (sample ``k`` uses seed ``seed + k``), scored for uncertainty."""
    if n < 2:
        raise ValueError("n: need at least two samples per prompt to compare")
    runs = []
    for k in range(n):
        config = GenerationConfig(
            max_new_tokens=max_new_tokens, temperature=temperature, seed=seed + k
        )
        runs.append([o.text for o in generate_many(model, prompts, config)])
    name = getattr(model, "name", "")
    return [score_samples(p, [run[i] for run in runs], schema, name) for i, p in enumerate(prompts)]


def queue_samples(
    store: AnnotationStore, sampled: list[SampledPrompt], top: int | None = None
) -> list[str]:
    """Add the ``top`` most uncertain prompts' most different pairs as comparison items
    (priority = uncertainty). Prompts whose samples are all identical are skipped."""
    ranked = sorted(sampled, key=lambda s: -s.uncertainty)
    ids = []
    for s in ranked:
        if top is not None and len(ids) >= top:
            break
        i, j = s.pair
        if s.samples[i] == s.samples[j]:
            continue
        source = {"models": [s.model], "reasons": ["sampled"], "uncertainty": s.uncertainty}
        ids.append(store.add_pair(s.prompt, s.samples[i], s.samples[j], source=source,
                                  priority=s.uncertainty))  # fmt: skip
    return ids
