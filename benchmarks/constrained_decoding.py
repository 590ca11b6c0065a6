"""Constrained JSON decoding (llguidance) against free decoding, on the default model.

Two questions, on the same prompts and the same JSON schema:

1. **Speed**: what does the grammar cost per generated token? Each prompt is
   generated alone (batch 1, greedy, the same ``max_new_tokens``) with and without
   ``GenerationConfig.json_schema``, alternating which goes first. The decode time
   per token is ``(latency - time_to_first_token) / (completion_tokens - 1)``: the
   prefill and the first token are left out, because the two variants emit answers
   of different lengths. The overhead is the ratio of the medians; the processor's
   own ms/token (``JsonSchemaLogitsProcessor.time_s / calls``: consuming the token,
   computing the mask, applying it) is reported beside it, as the share of a free
   decode step. On a shared machine the second figure is the steadier one. A
   batched run (``--batch-size`` prompts in one left-padded batch) shows how the
   processor's cost grows with rows, against the time of a batched decode step.
2. **Validity**: how often is the answer valid JSON for the schema?
   (a) free decoding, one attempt; (b) free decoding plus a repair loop: the
   validation error goes back as a user message, at most ``--max-repairs`` times
   (a small loop written here with plain ``LocalEngine.generate``, like the
   runtime's own repair loop); (c) constrained decoding, one attempt. A Markdown
   code fence around the JSON is accepted (as the runtime accepts it); the count of
   answers that are bare JSON is reported too.

Every prompt states the schema, so free decoding has a fair chance. Threads: one by
default (``torch.set_num_threads``), as in ``train_throughput.py``: on a shared
2-core machine two OpenMP threads spin at barriers.

Run: ``.venv/bin/python benchmarks/constrained_decoding.py`` (about 5-8 minutes on
one thread); results go to ``benchmarks/results/constrained_decoding.json``. A
benchmark, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import _env  # benchmarks/_env.py (this folder is on sys.path)

RESULTS = Path(__file__).parent / "results"

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 60},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 30}, "maxItems": 3},
    },
    "required": ["name", "rating", "tags"],
    "additionalProperties": False,
}

TOPICS = [
    "Describe a city", "Give me a book recommendation", "Recommend a movie for a rainy day",
    "Review your favourite restaurant", "Describe a programming language",
    "Suggest a board game for four players", "Rate a holiday destination",
    "Recommend a podcast about science", "Describe a famous painting", "Suggest a hiking trail",
    "Rate a smartphone", "Recommend a music album", "Describe a breakfast dish",
    "Suggest a house plant for beginners", "Review a pair of running shoes",
    "Describe a national park", "Recommend a video game", "Rate a coffee shop",
    "Describe a historical figure", "Suggest a weekend hobby",
]  # fmt: skip

_FENCE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.DOTALL)


def conversation(topic: str) -> list[dict]:
    instruction = (
        f"{topic}. Answer with only a JSON object that matches this JSON schema, "
        f"no other text: {json.dumps(SCHEMA)}"
    )
    return [{"role": "user", "content": instruction}]


def check(text: str, validator) -> tuple[bool, bool, list[str]]:
    """(valid with a fence allowed, valid as bare JSON, errors)."""
    stripped = text.strip()
    match = _FENCE.match(stripped)
    body = match.group(1).strip() if match else stripped
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        return False, False, [f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]
    errors = [
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
        for e in validator.iter_errors(value)
    ]
    return not errors, not errors and match is None, errors


def decode_ms_per_token(out) -> float | None:
    """Decode time per token after the first (prefill excluded)."""
    if out.completion_tokens < 2 or out.time_to_first_token_s is None:
        return None
    return 1000 * (out.latency_s - out.time_to_first_token_s) / (out.completion_tokens - 1)


def repair_loop(engine, messages, first, config, validator, max_repairs: int) -> dict[str, Any]:
    """Free decoding, re-asked with the validation errors until valid or out of repairs."""
    out, convo, attempts = first, list(messages), 1
    valid, _, errors = check(out.text, validator)
    while not valid and attempts <= max_repairs:
        listed = "\n".join(f"- {e}" for e in errors[:5])
        feedback = (
            f"Your answer is not valid for the required JSON schema:\n{listed}\n"
            f"The schema is: {json.dumps(SCHEMA)}\nReply with only the corrected JSON, no other text."
        )
        convo += [{"role": "assistant", "content": out.text}, {"role": "user", "content": feedback}]
        out = engine.generate(convo, config)
        attempts += 1
        valid, _, errors = check(out.text, validator)
    return {"valid": valid, "attempts": attempts, "final_text": out.text}


def speed_and_validity(engine, topics, args, validator) -> tuple[list[dict], dict]:
    from tuneloop.runtime import GenerationConfig

    free_cfg = GenerationConfig(max_new_tokens=args.max_new_tokens)
    json_cfg = GenerationConfig(max_new_tokens=args.max_new_tokens, json_schema=SCHEMA)
    rows = []
    for i, topic in enumerate(topics):
        messages = conversation(topic)
        runs = {}
        for variant in ("free", "json") if i % 2 == 0 else ("json", "free"):
            runs[variant] = engine.generate(messages, free_cfg if variant == "free" else json_cfg)
            if variant == "json":
                proc = engine.last_json_processor
        free, constrained = runs["free"], runs["json"]
        free_valid, free_bare, _ = check(free.text, validator)
        json_valid, json_bare, json_errors = check(constrained.text, validator)
        repaired = repair_loop(engine, messages, free, free_cfg, validator, args.max_repairs)
        row = {
            "topic": topic,
            "free": {"text": free.text, "tokens": free.completion_tokens,
                     "finish_reason": free.finish_reason, "ms_per_token": decode_ms_per_token(free),
                     "valid": free_valid, "bare_json": free_bare},
            "free_with_repair": repaired,
            "constrained": {"text": constrained.text, "tokens": constrained.completion_tokens,
                            "finish_reason": constrained.finish_reason,
                            "ms_per_token": decode_ms_per_token(constrained),
                            "processor_ms_per_token": 1000 * proc.time_s / proc.calls,
                            "processor_calls": proc.calls, "valid": json_valid,
                            "bare_json": json_bare, "errors": json_errors},
        }  # fmt: skip
        rows.append(row)
        print(
            f"[{i + 1}/{len(topics)}] {topic}: free {row['free']['ms_per_token'] or 0:.1f} ms/tok "
            f"valid={free_valid} (repair: {repaired['valid']} in {repaired['attempts']}); "
            f"constrained {row['constrained']['ms_per_token'] or 0:.1f} ms/tok "
            f"(processor {row['constrained']['processor_ms_per_token']:.2f}) valid={json_valid}",
            file=sys.stderr,
            flush=True,
        )
    return rows, summarize(rows)


def summarize(rows: list[dict]) -> dict[str, Any]:
    def med(values):
        values = [v for v in values if v is not None]
        return round(statistics.median(values), 3) if values else None

    n = len(rows)
    free_ms = med(r["free"]["ms_per_token"] for r in rows)
    json_ms = med(r["constrained"]["ms_per_token"] for r in rows)
    proc_ms = med(r["constrained"]["processor_ms_per_token"] for r in rows)
    per_prompt = [
        100 * (r["constrained"]["ms_per_token"] / r["free"]["ms_per_token"] - 1)
        for r in rows
        if r["free"]["ms_per_token"] and r["constrained"]["ms_per_token"]
    ]

    def rate(key, sub="valid"):
        return {"valid": sum(r[key][sub] for r in rows), "of": n,
                "rate": round(sum(r[key][sub] for r in rows) / n, 3)}  # fmt: skip

    attempts = [r["free_with_repair"]["attempts"] for r in rows]
    return {
        "speed": {
            "free_decode_ms_per_token_median": free_ms,
            "constrained_decode_ms_per_token_median": json_ms,
            "overhead_percent_of_medians": round(100 * (json_ms / free_ms - 1), 2),
            "overhead_percent_per_prompt_median": med(per_prompt),
            "processor_ms_per_token_median": proc_ms,
            "processor_share_of_free_step_percent": round(100 * proc_ms / free_ms, 2),
            "free_tokens_median": med(r["free"]["tokens"] for r in rows),
            "constrained_tokens_median": med(r["constrained"]["tokens"] for r in rows),
        },
        "validity": {
            "a_free_single_attempt": rate("free"),
            "a_free_bare_json": rate("free", "bare_json"),
            "b_free_with_repair": {**rate("free_with_repair"),
                                   "attempts_mean": round(sum(attempts) / n, 2),
                                   "attempts_max": max(attempts),
                                   "attempts_histogram": {k: attempts.count(k) for k in sorted(set(attempts))}},
            "c_constrained": {**rate("constrained"), "attempts_mean": 1.0, "attempts_max": 1,
                              "cut_off_by_max_new_tokens": sum(r["constrained"]["finish_reason"] == "length" for r in rows)},
            "c_constrained_bare_json": rate("constrained", "bare_json"),
        },
    }  # fmt: skip


def batched(engine, topics, args) -> dict[str, Any]:
    """One left-padded batch with and without the grammar: ms per decode step."""
    from tuneloop.runtime import GenerationConfig

    convs = [conversation(t) for t in topics[: args.batch_size]]
    out: dict[str, Any] = {"batch_size": len(convs)}
    for variant, schema in (("free", None), ("constrained", SCHEMA)):
        cfg = GenerationConfig(max_new_tokens=args.max_new_tokens, json_schema=schema)
        outs = engine.generate_batch(convs, cfg)
        steps = max(o.completion_tokens for o in outs)
        o = outs[0]
        out[variant] = {"steps": steps,
                        "ms_per_step": round(1000 * (o.latency_s - o.time_to_first_token_s) / max(steps - 1, 1), 3)}  # fmt: skip
        if schema is not None:
            proc = engine.last_json_processor
            out[variant]["processor_ms_per_step"] = round(1000 * proc.time_s / proc.calls, 3)
            out[variant]["processor_ms_per_row_step"] = round(
                1000 * proc.time_s / proc.calls / len(convs), 3
            )
    out["processor_share_of_free_step_percent"] = round(
        100 * out["constrained"]["processor_ms_per_step"] / out["free"]["ms_per_step"], 2
    )
    return out


def setup_costs(engine) -> dict[str, float]:
    """One-off costs: building llguidance's tokenizer (cached), compiling a schema."""
    from tuneloop.runtime.constrained import JsonSchemaLogitsProcessor, compile_json_schema

    t0 = time.perf_counter()
    grammar = compile_json_schema(engine.tokenizer, SCHEMA, engine.eos_token_ids)
    t1 = time.perf_counter()
    compile_json_schema(engine.tokenizer, SCHEMA, engine.eos_token_ids)
    t2 = time.perf_counter()
    JsonSchemaLogitsProcessor(grammar, batch_size=10)
    t3 = time.perf_counter()
    return {"first_compile_with_tokenizer_build_s": round(t1 - t0, 3),
            "compile_cached_tokenizer_ms": round(1000 * (t2 - t1), 3),
            "processor_for_10_rows_ms": round(1000 * (t3 - t2), 3)}  # fmt: skip


def environment(threads: int) -> dict[str, Any]:
    return _env.environment(threads, ("llguidance", "jsonschema"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model reference")
    parser.add_argument("--prompts", type=int, default=12, help=f"prompts (at most {len(TOPICS)})")
    parser.add_argument("--max-new-tokens", type=int, default=120)
    parser.add_argument("--max-repairs", type=int, default=2, help="re-asks in variant (b)")
    parser.add_argument(
        "--batch-size", type=int, default=8, help="rows of the batched run (0: skip)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads; 0 = torch's default")
    parser.add_argument("--out", type=Path, default=RESULTS / "constrained_decoding.json")
    args = parser.parse_args(argv)

    import torch
    from jsonschema import Draft202012Validator

    from tuneloop.runtime import GenerationConfig, LocalEngine

    if args.threads:
        torch.set_num_threads(args.threads)
    env = environment(args.threads)
    started = time.perf_counter()
    engine = LocalEngine.from_ref(args.model)
    setup = setup_costs(engine)
    engine.generate(conversation("Warm up"), GenerationConfig(max_new_tokens=8))  # untimed
    topics = TOPICS[: args.prompts]
    rows, summary = speed_and_validity(engine, topics, args, Draft202012Validator(SCHEMA))
    batch = batched(engine, TOPICS, args) if args.batch_size else None
    env["loadavg_after"] = os.getloadavg()
    result = {
        "benchmark": "constrained_decoding",
        "environment": env,
        "settings": {
            "model": args.model,
            "prompts": len(topics),
            "max_new_tokens": args.max_new_tokens,
            "max_repairs": args.max_repairs,
            "decoding": "greedy",
            "schema": SCHEMA,
            "json_options": "compact (whitespace_flexible=false)",
        },  # fmt: skip
        "setup": setup,
        "summary": summary,
        "batched": batch,
        "wall_s": round(time.perf_counter() - started, 1),
        "prompts": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps({"setup": setup, "summary": summary, "batched": batch,
                      "wall_s": result["wall_s"]}, indent=2))  # fmt: skip
    print(f"results in {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
