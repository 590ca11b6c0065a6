"""merge_run on real (tiny) run folders: parity, stop tokens, atomic output, portability.

The runs are made by the real SFT recipe (2 steps, tiny random model), so the folders
have exactly what training writes: config.yaml, manifest.json, final/ with the adapter
(or full weights) and the training tokenizer.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from tuneloop.train import merge as merge_mod
from tuneloop.train.merge import DEFAULT_ATOL, MergeError, merge_run, stop_token_ids

CONVERSATIONS = [
    [{"role": "user", "content": f"What is {i} + {i}?"}, {"role": "assistant", "content": f"It is {2 * i}."}]
    for i in range(8)
]


def write_train_file(path: Path) -> Path:
    path.write_text("".join(json.dumps({"messages": m}) + "\n" for m in CONVERSATIONS))
    return path


def _check_data_or_skip(original):
    """The real data checks, unless the data layer is not complete yet (then a no-op)."""

    def check(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        except ImportError:
            return None

    return check


def train_tiny_run(model_dir: Path, out: Path, name: str, method: str = "lora", **overrides) -> Path:
    """A real run folder: the SFT recipe, 2 steps with a high learning rate (LoRA B moves off zero)."""
    from tuneloop.train.config import SFTConfig
    from tuneloop.train.recipes import sft

    train_file = write_train_file(out / f"{name}-train.jsonl")
    config = SFTConfig(
        name=name, model=str(model_dir), train_files=[str(train_file)], output_dir=out / "runs",
        method=method, max_steps=2, learning_rate=1e-2, lora_r=4, lora_alpha=8, lora_dropout=0.0,
        batch_size=2, validation_fraction=0.0, warmup_ratio=0.0, lr_scheduler="constant",
        max_length=128, save_steps=100, **overrides,
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sft, "check_data", _check_data_or_skip(sft.check_data))
        return sft.train(config)


@pytest.fixture(scope="module")
def lora_run(tiny_model_dir, tmp_path_factory) -> Path:
    return train_tiny_run(tiny_model_dir, tmp_path_factory.mktemp("lora"), "lora")


@pytest.fixture(scope="module")
def merged(lora_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("merged") / "model"
    return merge_run(lora_run, out)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


def _eos_list(value) -> list[int]:
    return [value] if isinstance(value, int) else list(value)


def test_parity_within_tolerance_and_recorded(merged):
    p = merged.parity
    assert 0 <= p["adapter_max_abs_diff"] <= DEFAULT_ATOL
    assert p["reload_max_abs_diff"] <= DEFAULT_ATOL
    assert p["prompts"] == 3 and p["tokens"] > 0 and p["chat_template_identical"] is True
    record = json.loads((merged.out_dir / "merge.json").read_text())
    assert record["parity"]["adapter_max_abs_diff"] == p["adapter_max_abs_diff"]
    assert record["base_model"] == merged.base_model and record["parity"]["atol"] == DEFAULT_ATOL
    assert Path(record["source_run"]) == merged.source_run
    for name in ("config.json", "model.safetensors", "tokenizer.json", "generation_config.json"):
        assert (merged.out_dir / name).is_file(), name


def test_lora_b_trained_and_merge_changed_the_base(lora_run, merged, tiny_model_dir):
    adapter = load_file(lora_run / "final" / "adapter_model.safetensors")
    lora_b = [t for k, t in adapter.items() if "lora_B" in k]
    assert lora_b and max(float(t.abs().max()) for t in lora_b) > 1e-3
    base, new = _weights(tiny_model_dir), _weights(merged.out_dir)
    changed = [k for k in new if "proj" in k and not torch.equal(new[k], base[k])]
    assert changed, "merged weights equal the base: the adapter did nothing"
    # The adapter's effect on logits is far above the merge's rounding noise.
    assert merged.parity["adapter_effect_max_abs_diff"] > 100 * merged.parity["adapter_max_abs_diff"]


def test_saved_folder_loads_generates_and_stops_like_training(merged, lora_run):
    from transformers import AutoTokenizer, GenerationConfig

    from tuneloop.runtime import LocalEngine
    from tuneloop.runtime.types import GenerationConfig as RunConfig

    trained = AutoTokenizer.from_pretrained(lora_run / "final")
    engine = LocalEngine.from_ref(str(merged.out_dir))
    assert engine.tokenizer.chat_template == trained.chat_template
    eos = _eos_list(GenerationConfig.from_pretrained(merged.out_dir).eos_token_id)
    im_end = trained.convert_tokens_to_ids("<|im_end|>")
    assert im_end in eos and sorted(eos) == sorted(merged.parity["stop_token_ids"])
    assert sorted(engine.eos_token_ids) == sorted(eos)
    out = engine.generate([{"role": "user", "content": "What is 2 + 2?"}], RunConfig(max_new_tokens=6))
    assert out.completion_tokens > 0


def test_stop_tokens_include_template_end_of_turn(tiny_tokenizer):
    """A base whose eos is <|endoftext|> still stops at the template's <|im_end|>."""
    from transformers import GenerationConfig

    endoftext = tiny_tokenizer.convert_tokens_to_ids("<|endoftext|>")
    im_end = tiny_tokenizer.convert_tokens_to_ids("<|im_end|>")
    ids = stop_token_ids(GenerationConfig(eos_token_id=endoftext), tiny_tokenizer)
    assert ids == [endoftext, im_end]  # base first, then the tokenizer's eos = end-of-turn


def test_corrupt_merge_fails_parity_and_leaves_nothing(lora_run, tmp_path, monkeypatch):
    """One weight nudged after peft's merge: the merged model no longer matches base+adapter."""
    real = merge_mod._merge_adapter

    def corrupt(peft_model):
        model = real(peft_model)
        with torch.no_grad():
            model.get_parameter("model.layers.0.mlp.down_proj.weight")[0, 0] += 0.05
        return model

    monkeypatch.setattr(merge_mod, "_merge_adapter", corrupt)
    with pytest.raises(MergeError, match="differ from base\\+adapter"):
        merge_run(lora_run, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_saved_weights_fail_reload_check_and_leave_nothing(lora_run, tmp_path, monkeypatch):
    """A failure after files were written (reload check) removes the temporary folder too."""
    real = merge_mod._save

    def save_then_corrupt(model, tokenizer, stop_ids, folder):
        real(model, tokenizer, stop_ids, folder)
        weights = _weights(folder)
        name = next(k for k in weights if k.endswith("q_proj.weight"))
        weights[name] = weights[name] + 0.05
        save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})

    monkeypatch.setattr(merge_mod, "_save", save_then_corrupt)
    with pytest.raises(MergeError, match="reloaded"):
        merge_run(lora_run, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_moved_run_merges_from_its_config_reference(lora_run, merged, tmp_path):
    """peft's absolute base path points nowhere on the new machine; config.yaml's reference is used."""
    moved = tmp_path / "elsewhere" / "lora"
    shutil.copytree(lora_run, moved)
    adapter_config = moved / "final" / "adapter_config.json"
    data = json.loads(adapter_config.read_text())
    data["base_model_name_or_path"] = "/nonexistent/other-machine/model"
    adapter_config.write_text(json.dumps(data))
    result = merge_run(moved, tmp_path / "model")
    assert result.source_run == moved.resolve()
    new, first = _weights(result.out_dir), _weights(merged.out_dir)
    assert all(torch.equal(new[k], first[k]) for k in first)


def test_adapter_chain_merges_the_upstream_run_first(lora_run, merged, tiny_model_dir, tmp_path):
    """A run started from another run's adapter: upstream merged, then its own (here the same
    adapter twice, so the merged delta is exactly twice the single merge's, up to rounding)."""
    runs = tmp_path / "runs"
    shutil.copytree(lora_run, runs / "sft")
    shutil.copytree(lora_run, runs / "dpo")
    config = yaml.safe_load((runs / "dpo" / "config.yaml").read_text())
    config.update(name="dpo", adapter="some/old/machine/runs/sft")  # found as a sibling run
    (runs / "dpo" / "config.yaml").write_text(yaml.safe_dump(config))
    result = merge_run(runs / "dpo", tmp_path / "model")
    assert [Path(a).parent.name for a in result.adapter_chain] == ["sft", "dpo"]
    assert len(result.parity["stages"]) == 2 and result.parity["adapter_max_abs_diff"] <= DEFAULT_ATOL
    base, once, twice = _weights(tiny_model_dir), _weights(merged.out_dir), _weights(result.out_dir)
    for k in base:
        torch.testing.assert_close(twice[k] - base[k], 2 * (once[k] - base[k]), atol=1e-5, rtol=0)


def test_full_run_is_resaved_with_the_same_checks(tiny_model_dir, tmp_path):
    from tuneloop.runtime import LocalEngine
    from tuneloop.runtime.types import GenerationConfig

    run = train_tiny_run(tiny_model_dir, tmp_path, "full", method="full")
    result = merge_run(run, tmp_path / "model")
    assert result.method == "full" and result.adapter_chain == []
    assert result.parity["adapter_max_abs_diff"] is None
    assert result.parity["reload_max_abs_diff"] <= DEFAULT_ATOL
    final, saved, base = _weights(run / "final"), _weights(result.out_dir), _weights(tiny_model_dir)
    assert all(torch.equal(saved[k], final[k]) for k in final)
    assert any(not torch.equal(saved[k], base[k]) for k in base)
    engine = LocalEngine.from_ref(str(result.out_dir))
    assert engine.generate([{"role": "user", "content": "Hi"}], GenerationConfig(max_new_tokens=4)).completion_tokens > 0


def test_bad_inputs_raise_merge_error_and_write_nothing(lora_run, tmp_path):
    with pytest.raises(MergeError, match="no such run folder"):
        merge_run(tmp_path / "missing", tmp_path / "a")
    with pytest.raises(MergeError, match="not a run folder"):
        merge_run(tmp_path, tmp_path / "b")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("x")
    with pytest.raises(MergeError, match="already exists"):
        merge_run(lora_run, taken)
    unfinished = tmp_path / "unfinished"
    shutil.copytree(lora_run, unfinished, ignore=shutil.ignore_patterns("final"))
    with pytest.raises(MergeError, match="no final/"):
        merge_run(unfinished, tmp_path / "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "unfinished"]
