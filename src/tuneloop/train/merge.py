"""Merge a run's LoRA adapter into its base model and write a complete, checked HF folder.

The base comes from the run's own ``config.yaml`` ``model`` reference, never from the
absolute path peft writes into ``adapter_config.json``, so run folders move between
machines. A run started from another run's adapter (``adapter:``) has that merged first.
The folder is built under a temporary name and renamed only when every check passes:
merged logits match base+adapter (the unmerged PeftModel) on fixed chat prompts (one with
tools); the saved tokenizer renders them to the same ids with the same template and special
tokens; generation_config stops on the base's eos ids and the end-of-turn token; the
reloaded folder reproduces the in-memory logits.

Tolerance: merging turns ``x W^T + s (x A^T) B^T`` into ``x (W + s B A)^T``: the same maths
in another fp32 rounding order (eps 1.2e-7 relative, per layer). SmolLM2-135M's logits
(|z| ~ 20, 30 layers) moved by <= 1e-4; ``DEFAULT_ATOL = 1e-3`` leaves 10x headroom for
deeper models, while real faults (one weight off by 0.01, a wrong scale, a missing
adapter tensor) move logits by >= 2e-2. Reloading bit-identical weights measures 0.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tuneloop.models.chat_template import encode_prompt, render_text
from tuneloop.models.resolve import load_model, load_tokenizer, resolve_model
from tuneloop.train.runs import package_versions, read_status, write_json

DEFAULT_ATOL = 1e-3
ADAPTER_RTOL = 2e-3
"""Extra tolerance per unit of adapter effect (max |adapter logits - base logits|): fp32
rounding of W + sBA vs W x + sB(Ax) grows with the adapter's size. Measured on the
default model: 9.7e-5 for a 3-step adapter, 5.4e-3 after 20 steps at lr 3e-4 (r16, a32).
A merge fault (a weight off by 0.01, a wrong scale, a missing layer) moves logits by a
sizeable fraction of the effect itself, far above 0.2% of it."""
"""Largest allowed |logit difference| between merged and unmerged models (see module docstring)."""

_CALCULATOR = {"type": "function", "function": {
    "name": "calculator", "description": "Evaluate an arithmetic expression.",
    "parameters": {"type": "object", "properties": {"expression": {"type": "string"}},
                   "required": ["expression"]}}}  # fmt: skip

PARITY_PROMPTS: list[dict[str, Any]] = [
    {"messages": [{"role": "user", "content": "What is the capital of France?"}]},
    {"messages": [
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Name the three primary colours."},
        {"role": "assistant", "content": "Red, yellow and blue."},
        {"role": "user", "content": "And the secondary ones?"}]},
    {"messages": [{"role": "user", "content": "What is 1234 * 5678?"}], "tools": [_CALCULATOR]},
]  # fmt: skip
"""Fixed prompts for the parity check: plain, multi-turn with a system prompt, with tools."""


class MergeError(RuntimeError):
    """The run cannot be merged, or a merged model failed a check; nothing was written."""


@dataclass
class MergeResult:
    """What :func:`merge_run` wrote and measured (also saved as ``merge.json``)."""

    out_dir: Path
    source_run: Path
    base_model: str
    """The run's ``model`` reference (what the base was resolved from)."""
    method: str
    parity: dict[str, Any] = field(default_factory=dict)
    """Max abs logit differences (adapter, reload), adapter effect, tolerance, stop tokens."""
    adapter_chain: list[str] = field(default_factory=list)
    """Adapters merged in order (an upstream run's first)."""

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "out_dir": str(self.out_dir), "source_run": str(self.source_run)}


def merge_run(run_dir, out_dir, parity_prompts: list[dict] | None = None,
              atol: float = DEFAULT_ATOL) -> MergeResult:  # fmt: skip
    """Merge ``run_dir/final`` into its base and write a checked HF folder at ``out_dir``.

    ``parity_prompts`` are ``{"messages": [...], "tools": [...]}`` dicts (default
    :data:`PARITY_PROMPTS`). Raises :class:`MergeError` on any failed check; then
    ``out_dir`` is not created.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    config = _run_config(run_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise MergeError(f"{out_dir}: already exists; choose a new output folder")
    tokenizer = _training_tokenizer(run_dir, config)
    specs = parity_prompts or PARITY_PROMPTS
    prompts = [encode_prompt(tokenizer, p["messages"], p.get("tools")) for p in specs]
    model, stages = _merged_model(run_dir, prompts, atol, seen=set())
    expected = _logits(model, prompts)
    stop_ids = stop_token_ids(model.generation_config, tokenizer)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _save(model, tokenizer, stop_ids, tmp)
        reload_diff = _check_saved(tmp, tokenizer, specs, prompts, expected, stop_ids, atol)
        adapter_diffs = [s["max_abs_diff"] for s in stages]
        parity = {
            "atol": atol, "prompts": len(prompts), "tokens": sum(len(p) for p in prompts),
            "adapter_max_abs_diff": max(adapter_diffs) if adapter_diffs else None,
            "adapter_effect_max_abs_diff": stages[-1]["adapter_effect"] if stages else None,
            "reload_max_abs_diff": reload_diff, "stages": stages,
            "chat_template_identical": True, "stop_token_ids": stop_ids,
            "stop_tokens": tokenizer.convert_ids_to_tokens(stop_ids),
        }  # fmt: skip
        result = MergeResult(out_dir, run_dir.resolve(), str(config["model"]),
                             config.get("method", "lora"), parity, [s["adapter"] for s in stages])  # fmt: skip
        write_json(tmp / "merge.json", {**result.to_dict(), "run_name": config.get("name"),
                                        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                        "packages": package_versions()})  # fmt: skip
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above); rename needs the name free
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return result


def end_of_turn_id(tokenizer) -> int | None:
    """Id of the special token the chat template closes an assistant turn with."""
    marker = "tuneloop-end-of-turn-probe"
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": marker}]
    text = render_text(tokenizer, msgs, add_generation_prompt=False)
    tail = text[text.rfind(marker) + len(marker) :]
    special = set(tokenizer.all_special_ids) | {
        i for i, t in getattr(tokenizer, "added_tokens_decoder", {}).items() if t.special}  # fmt: skip
    return next((i for i in tokenizer(tail, add_special_tokens=False)["input_ids"] if i in special), None)


def stop_token_ids(generation_config, tokenizer) -> list[int]:
    """The base's generation eos ids, plus the tokenizer's eos and the end-of-turn token."""
    eos = getattr(generation_config, "eos_token_id", None)
    ids = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    for extra in (tokenizer.eos_token_id, end_of_turn_id(tokenizer)):
        if extra is not None and extra not in ids:
            ids.append(extra)
    if not ids:
        raise MergeError("the model has no eos or end-of-turn token: generation would never stop")
    return ids


# ------------------------------------------------------------------------ internals


def _run_config(run_dir: Path) -> dict[str, Any]:
    if not run_dir.is_dir():
        raise MergeError(f"{run_dir}: no such run folder")
    if not (run_dir / "config.yaml").is_file():
        raise MergeError(f"{run_dir}: not a run folder (no config.yaml)")
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except yaml.YAMLError as exc:
        raise MergeError(f"{run_dir / 'config.yaml'}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(config, dict) or not config.get("model"):
        raise MergeError(f"{run_dir / 'config.yaml'}: no `model` reference")
    if not (run_dir / "final").is_dir():
        state = read_status(run_dir).get("state", "unknown")
        raise MergeError(f"{run_dir}: the run has no final/ weights (state: {state})")
    return config


def _training_tokenizer(run_dir: Path, config: dict):
    """The tokenizer the run saved with its weights (the one it trained with), else the base's."""
    final = run_dir / "final"
    if (final / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(final)
    return load_tokenizer(resolve_model(config["model"]))


def _find_upstream(ref: str, run_dir: Path) -> Path:
    """The ``adapter:`` folder: as written, else a sibling of this run (run folders moved together)."""
    for candidate in (Path(ref).expanduser(), run_dir.parent / Path(ref).name,
                      run_dir.parent / Path(ref).parent.name):  # fmt: skip
        if candidate.is_dir() and ((candidate / "config.yaml").is_file()
                                   or (candidate / "adapter_config.json").is_file()):  # fmt: skip
            return candidate
    raise MergeError(f"{run_dir}: adapter {ref!r} (from config.yaml) not found")


def _merged_model(run_dir: Path, prompts, atol: float, seen: set) -> tuple[Any, list[dict]]:
    """(merged model, parity stages): the run's base (with upstream adapters) plus its adapter."""
    key = run_dir.resolve()
    if key in seen:
        raise MergeError(f"{run_dir}: adapter chain loops back to itself")
    seen.add(key)
    config = _run_config(run_dir)
    final = run_dir / "final"
    if config.get("method") == "full":
        if not (final / "config.json").is_file():
            raise MergeError(f"{final}: a full fine-tuning run's final/ needs config.json")
        return load_model(resolve_model(final), "float32"), []
    if not (final / "adapter_config.json").is_file():
        raise MergeError(f"{final}: no adapter_config.json (method {config.get('method')})")
    base_ref = resolve_model(config["model"])
    stages: list[dict] = []
    upstream = config.get("adapter")
    if upstream:
        src = _find_upstream(str(upstream), run_dir)
        src_run = src if (src / "config.yaml").is_file() else src.parent
        if (src_run / "config.yaml").is_file() and (src_run / "final").is_dir():
            up_ref = resolve_model(_run_config(src_run)["model"])
            if up_ref.path != base_ref.path:
                raise MergeError(f"{run_dir}: base {config['model']!r} differs from the base of "
                                 f"its adapter run {src_run} ({up_ref.ref!r})")  # fmt: skip
            base, stages = _merged_model(src_run, prompts, atol, seen)
        else:  # a bare adapter folder, trained on this run's base
            base, stage = _apply_adapter(load_model(base_ref, "float32"), src, prompts, atol)
            stages = [stage]
    else:
        base = load_model(base_ref, "float32")
    merged, stage = _apply_adapter(base, final, prompts, atol)
    return merged, [*stages, stage]


def _apply_adapter(base, adapter_dir: Path, prompts, atol: float) -> tuple[Any, dict]:
    """Load the adapter on ``base``, merge it, and check merged logits against unmerged ones."""
    import warnings

    from peft import PeftModel

    try:  # peft reads transformers' deprecated is_gradient_checkpointing: silence that
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            peft_model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=False).eval()
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise MergeError(f"{adapter_dir}: cannot load the adapter: {exc}".replace("\n", " ")) from exc
    _check_adapter_loaded(peft_model, adapter_dir)
    expected = _logits(peft_model, prompts)
    with peft_model.disable_adapter():
        base_logits = _logits(peft_model, prompts)
    merged = _merge_adapter(peft_model)
    diff = _max_abs_diff(expected, _logits(merged, prompts))
    effect = _max_abs_diff(expected, base_logits)
    tolerance = atol + ADAPTER_RTOL * effect
    if not diff <= tolerance:  # also catches NaN
        raise MergeError(f"{adapter_dir}: merged logits differ from base+adapter by {diff:.3g} "
                         f"(tolerance {tolerance:.3g} = {atol:g} + {ADAPTER_RTOL:g} x adapter effect "
                         f"{effect:.3g}); nothing written")  # fmt: skip
    return merged, {"adapter": str(adapter_dir.resolve()), "max_abs_diff": diff,
                    "adapter_effect": effect, "tolerance": tolerance}  # fmt: skip


def _merge_adapter(peft_model):
    """peft's merge (one seam, so tests can corrupt a merge and see the check fail)."""
    return peft_model.merge_and_unload()


def _check_adapter_loaded(peft_model, adapter_dir: Path) -> None:
    """Every tensor in the adapter file landed in the model unchanged (a wrong base would not)."""
    import torch
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    path = adapter_dir / "adapter_model.safetensors"
    if not path.is_file():
        raise MergeError(f"{path}: missing (only safetensors adapters are merged)")
    loaded = get_peft_model_state_dict(peft_model, save_embedding_layers=False)
    for name, tensor in load_file(path).items():
        if name not in loaded and "lora_" not in name:
            continue  # resized embeddings: peft restores those itself
        if name not in loaded or not torch.equal(loaded[name].to(tensor.dtype), tensor):
            raise MergeError(f"{adapter_dir}: adapter weight {name} does not fit the base model")


def _logits(model, prompts: list[list[int]]) -> list:
    import torch

    with torch.inference_mode():
        return [model(input_ids=torch.tensor([ids])).logits[0].float() for ids in prompts]


def _max_abs_diff(a: list, b: list) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b, strict=True))


def _save(model, tokenizer, stop_ids: list[int], folder: Path) -> None:
    import copy

    from transformers import GenerationConfig
    from transformers.utils import logging as hf_logging

    gen = copy.deepcopy(model.generation_config) if model.generation_config else GenerationConfig()
    gen.eos_token_id = stop_ids if len(stop_ids) > 1 else stop_ids[0]
    if gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stop_ids[0]
    model.generation_config = gen
    hf_logging.disable_progress_bar()  # a "Writing model shards" bar for a sub-second save is noise
    try:
        model.save_pretrained(folder)
    finally:
        hf_logging.enable_progress_bar()
    tokenizer.save_pretrained(folder)


def _check_saved(folder: Path, tokenizer, specs, prompts, expected, stop_ids, atol: float) -> float:
    """Reload ``folder``: same template, special tokens, prompt ids, stop ids and logits."""
    from transformers import AutoTokenizer, GenerationConfig

    saved = AutoTokenizer.from_pretrained(folder)
    if saved.chat_template != tokenizer.chat_template:
        raise MergeError(f"{folder}: saved chat template differs from the training tokenizer's")
    if _special_tokens(saved) != _special_tokens(tokenizer):
        raise MergeError(f"saved special tokens {_special_tokens(saved)} != training tokenizer's "
                         f"{_special_tokens(tokenizer)}")  # fmt: skip
    if [encode_prompt(saved, s["messages"], s.get("tools")) for s in specs] != prompts:
        raise MergeError("the saved tokenizer renders the parity prompts to different token ids")
    eos = GenerationConfig.from_pretrained(folder).eos_token_id
    if sorted([eos] if isinstance(eos, int) else list(eos or [])) != sorted(stop_ids):
        raise MergeError(f"saved generation_config eos ids {eos} != expected {stop_ids}")
    diff = _max_abs_diff(expected, _logits(load_model(resolve_model(folder), "float32"), prompts))
    if not diff <= atol:
        raise MergeError(f"{folder}: reloaded model's logits differ by {diff:.3g} (tolerance {atol:g})")
    return diff


def _special_tokens(tokenizer) -> dict[str, Any]:
    """What generation and rendering depend on besides the template: eos/bos/pad and end of turn."""
    return {"eos": tokenizer.eos_token, "bos": tokenizer.bos_token, "pad": tokenizer.pad_token,
            "end_of_turn": end_of_turn_id(tokenizer)}  # fmt: skip
