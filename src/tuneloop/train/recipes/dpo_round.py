"""On-policy preference rounds: sample -> score -> pair -> DPO -> merge -> evaluate, R times.

Reads top to bottom. Round 0 only evaluates the starting policy on the held-out prompts.
Round r (1..R) starts from the policy of round r-1 (the base model, then each round's
merged model): it samples k answers per prompt (seeded), grades them with the scorers
(a scorer is a reward), picks one chosen/rejected pair per prompt with a clear score
gap (:func:`~tuneloop.train.rejection.select_pair`), trains DPO on those pairs with the
round's starting policy as both initial weights and reference (LoRA: "adapter
disabled" is that policy), merges the LoRA into a full folder, and evaluates it greedily
on the held-out prompts.

Run folder::

    config.yaml  manifest.json  status.json  metrics.jsonl  results.json  final -> rounds/NN/merged
    rounds/00/round.json                                   (evaluation of the starting policy)
    rounds/NN/{pairs.jsonl, dpo/, merged/, round.json}     (round.json written last: the round is done)

``--resume`` skips every round whose ``round.json`` exists; a half-made round is redone.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from tuneloop.models.resolve import resolve_model
from tuneloop.train.config import ConfigError, DPOConfig, DPORoundConfig, config_to_yaml
from tuneloop.train.datasets import expand_files
from tuneloop.train.rejection import (
    PairRule,
    Prompt,
    check_prompts,
    pair_record,
    read_prompts,
    reward_model_term,
    sample_candidates,
    score_candidates,
    scorer_term,
    select_pair,
)
from tuneloop.train.runs import build_manifest, new_run_dir, run_status, write_json

log = logging.getLogger("tuneloop.train")


def prepare(config: DPORoundConfig) -> dict[str, Any]:
    """Prompts, held-out prompts and scorers, checked; the model resolved. No side effects."""
    import tuneloop.eval  # noqa: F401  (registers the built-in scorers)

    resolved = resolve_model(config.model)
    prompt_files = expand_files(config.prompts, "prompts")
    heldout_files = expand_files(config.heldout_prompts, "heldout_prompts")
    prompts = read_prompts(prompt_files, config.prompts_limit)
    heldout = read_prompts(heldout_files, config.heldout_limit)
    scorer_names = [s.scorer for s in config.scorers if s.scorer]
    try:
        check_prompts(prompts + heldout, scorer_names)
    except KeyError as exc:
        raise ConfigError(f"scorers: {exc.args[0]}") from None
    overlap = {p.sample.id for p in prompts} & {p.sample.id for p in heldout}
    if overlap:
        raise ConfigError(f"heldout_prompts: ids also in prompts: {', '.join(sorted(overlap)[:5])}")
    return {"resolved": resolved, "prompts": prompts, "heldout": heldout,
            "files": prompt_files + heldout_files}  # fmt: skip


def grading_terms(config: DPORoundConfig) -> list:
    """One term per ``scorers`` entry: a registered scorer or a reward model, weighted."""
    terms = []
    for spec in config.scorers:
        if spec.scorer:
            terms.append(scorer_term(spec.scorer, spec.weight))
        else:
            terms.append(reward_model_term(spec.reward_model, spec.weight))
    return terms


def evaluate(
    engine, heldout: list[Prompt], terms: list, config: DPORoundConfig
) -> dict[str, float]:
    """Greedy answers to the held-out prompts: mean value and pass rate."""
    from tuneloop.runtime.types import GenerationConfig

    completions = sample_candidates(
        engine, heldout, 1, GenerationConfig(max_new_tokens=config.max_new_tokens)
    )
    graded = [
        score_candidates(p, c, terms, config.threshold)[0]
        for p, c in zip(heldout, completions, strict=True)
    ]
    return {"heldout_mean": round(sum(c.value for c in graded) / len(graded), 4),
            "heldout_pass_rate": round(sum(c.verified for c in graded) / len(graded), 4)}  # fmt: skip


def build_pairs(
    engine, prompts: list[Prompt], terms: list, config: DPORoundConfig, r: int
) -> tuple[list, dict]:
    """k sampled answers per prompt (seeds ``seed + 1000 r + i``) -> one pair per prompt with a gap."""
    from tuneloop.runtime.types import GenerationConfig

    generation = GenerationConfig(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature
    )
    start = time.perf_counter()
    completions = sample_candidates(engine, prompts, config.samples_per_prompt, generation,
                                    seed=config.seed + 1000 * r)  # fmt: skip
    gen_s = time.perf_counter() - start
    tokens = sum(int(c.metadata.get("completion_tokens", 0)) for row in completions for c in row)
    rule = PairRule(min_gap=config.min_score_gap, length_control=config.length_control)
    pairs, skipped = [], 0
    for prompt, row in zip(prompts, completions, strict=True):
        pair = select_pair(score_candidates(prompt, row, terms, config.threshold), rule)
        if pair is None:
            skipped += 1
            continue
        pairs.append(pair_record(prompt, *pair, source=f"dpo-round-{r}", model=engine.name))
    return pairs, {"pairs": len(pairs), "skipped_prompts": skipped,
                   "gen_tokens_per_s": round(tokens / gen_s, 1) if gen_s > 0 else 0.0}  # fmt: skip


def round_dpo_config(config: DPORoundConfig, r: int, policy: str, pairs_file: Path) -> DPOConfig:
    """The round's :class:`DPOConfig`: start (and reference) = the round's starting policy."""
    steps = config.dpo.max_steps
    return DPOConfig(name="dpo", output_dir=pairs_file.parent, model=policy, train_files=[str(pairs_file)],
                     validation_fraction=0.0, save_steps=steps, save_total_limit=1, seed=config.seed + r,
                     **config.dpo.model_dump())  # fmt: skip


def _load_engine(ref: str):
    from tuneloop.runtime.backends.local import LocalEngine

    return LocalEngine.from_ref(ref)


def _write_metrics(run_dir: Path) -> list[dict]:
    """metrics.jsonl rebuilt from the rounds' round.json files (idempotent on resume)."""
    rows = [
        json.loads(p.read_text())["metrics"]
        for p in sorted((run_dir / "rounds").glob("*/round.json"))
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return rows


def _link_final(run_dir: Path, policy: str) -> None:
    final = run_dir / "final"
    if final.is_symlink() or final.exists():
        final.unlink() if final.is_symlink() else shutil.rmtree(final)
    target = Path(policy)
    if target.is_dir() and run_dir.resolve() in target.resolve().parents:
        os.symlink(os.path.relpath(target.resolve(), run_dir.resolve()), final)


def run_round(
    config: DPORoundConfig, prepared: dict, r: int, policy: str, terms: list, rdir: Path
) -> dict:
    """One round from a clean ``rdir``; returns its round.json content (not yet written)."""
    from tuneloop.train.merge import merge_run
    from tuneloop.train.recipes import dpo

    start = time.perf_counter()
    engine = _load_engine(policy)
    pairs, stats = build_pairs(engine, prepared["prompts"], terms, config, r)
    del engine
    gc.collect()
    from tuneloop.data.io import write_jsonl

    write_jsonl(rdir / "pairs.jsonl", pairs)
    new_policy = policy
    if pairs:
        dpo_run = dpo.train(round_dpo_config(config, r, policy, rdir / "pairs.jsonl"))
        if config.dpo.method == "full":
            new_policy = str(dpo_run / "final")
        else:
            merge_run(dpo_run, rdir / "merged")
            new_policy = str(rdir / "merged")
    else:
        log.warning(
            "round %d: no prompt had a score gap >= %s; the policy is unchanged",
            r,
            config.min_score_gap,
        )
    engine = _load_engine(new_policy)
    metrics = {"round": r, **evaluate(engine, prepared["heldout"], terms, config), **stats,
               "time_s": round(time.perf_counter() - start, 1)}  # fmt: skip
    del engine
    gc.collect()
    return {"policy": new_policy, "metrics": metrics}


def train(config: DPORoundConfig, resume: bool = False, prepared: dict | None = None) -> Path:
    """Run (or continue, with ``resume``) the rounds; returns the run folder."""
    prepared = prepared or prepare(config)
    run_dir = Path(config.output_dir) / config.name
    if resume:
        if not run_dir.is_dir():
            raise ConfigError(f"--resume: no run folder {run_dir}")
    else:
        new_run_dir(config.output_dir, config.name)
    terms = grading_terms(config)
    with run_status(run_dir):
        (run_dir / "config.yaml").write_text(config_to_yaml(config))
        write_json(run_dir / "manifest.json", build_manifest(config, prepared["files"], {
            "recipe": "dpo-round", "prompts": len(prepared["prompts"]), "heldout": len(prepared["heldout"]),
            "scorers": [s.model_dump(exclude_none=True) for s in config.scorers],
        }))  # fmt: skip
        policy = config.model
        for r in range(config.rounds + 1):
            rdir = run_dir / "rounds" / f"{r:02d}"
            if (rdir / "round.json").is_file():
                policy = json.loads((rdir / "round.json").read_text())["policy"]
                log.info("round %d: done, skipped", r)
                continue
            shutil.rmtree(rdir, ignore_errors=True)  # a half-made round is redone
            rdir.mkdir(parents=True)
            if r == 0:
                start = time.perf_counter()
                engine = _load_engine(policy)
                done = {"policy": policy, "metrics": {"round": 0, **evaluate(engine, prepared["heldout"], terms, config),
                        "pairs": 0, "skipped_prompts": 0, "gen_tokens_per_s": None,
                        "time_s": round(time.perf_counter() - start, 1)}}  # fmt: skip
                del engine
            else:
                done = run_round(config, prepared, r, policy, terms, rdir)
            write_json(rdir / "round.json", done)
            policy = done["policy"]
            _write_metrics(run_dir)
        rows = _write_metrics(run_dir)
        _link_final(run_dir, policy)
        write_json(run_dir / "results.json", {"rounds": rows, "final": policy})
    return run_dir
