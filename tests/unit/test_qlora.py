"""QLoRA (``method: qlora``): LoRA adapters over NF4 base weights from bitsandbytes.

bitsandbytes is an optional extra (``tuneloop[qlora]``): importing it slows every
peft/trl import by seconds, so ``make test`` does not install it. The training test
runs wherever it is importable; the missing-extra error is tested everywhere.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import pytest
import torch

from tests.helpers.train_fixtures import train_losses, write_conversations
from tuneloop.train.config import SFTConfig
from tuneloop.train.recipes import sft

# find_spec, not import: importing bitsandbytes at collection would cost every session
# its import time (and warnings) even when no QLoRA test is selected.
HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


def _config(tmp_path, tiny_model_dir, **overrides) -> SFTConfig:
    write_conversations(tmp_path / "train.jsonl", 24)
    values = dict(name="qlora", method="qlora", model=str(tiny_model_dir),
                  train_files=[str(tmp_path / "train.jsonl")], output_dir=tmp_path / "runs",
                  validation_fraction=0.0, max_steps=2, batch_size=4, learning_rate=1e-2,
                  lora_r=4, lora_alpha=8, max_length=128, seed=0)  # fmt: skip
    values.update(overrides)
    return SFTConfig(**values)


def test_qlora_without_bitsandbytes_says_which_extra_to_install(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # `import bitsandbytes` now fails
    with pytest.raises(RuntimeError, match=r"pip install 'tuneloop\[qlora\]'"):
        sft.train(_config(tmp_path, tiny_model_dir))
    status = json.loads((tmp_path / "runs" / "qlora" / "status.json").read_text())
    assert status["state"] == "failed" and "tuneloop[qlora]" in status["reason"]


@pytest.mark.skipif(not HAS_BNB, reason="bitsandbytes not installed (pip install 'tuneloop[qlora]')")
def test_qlora_trains_lora_adapters_over_nf4_base_weights(tmp_path, tiny_model_dir, monkeypatch):
    """Two steps on the tiny model: 4-bit base layers, adapters move, folder complete.

    First loss, by hand (as in test_sft_recipe): the final RMSNorm gives unit-RMS hidden
    states and the tied output embedding (not quantized) is N(0, 0.3^2), so logits are
    ~N(0, 64 * 0.09 = 5.76) whatever the NF4 rounding of the layers before it:
    loss ~ ln 512 + 5.76 / 2 = 6.238 + 2.880 = 9.118, within 0.3.

    Only lora_B can move in two steps: B starts at zero, so A's gradient is zero until
    B has changed, and the one warm-up step (ratio 0.05 of 2, rounded up) has lr 0.
    """
    import bitsandbytes as bnb
    from peft.tuners.lora import LoraLayer
    from transformers import AutoConfig, AutoTokenizer

    loaded = {}
    real_load = sft.load_for_training

    def spy(config, resolved):
        model, facts = real_load(config, resolved)
        loaded["model"] = model
        loaded["before"] = {n: p.detach().clone() for n, p in model.named_parameters()
                            if "lora_" in n or ".base_layer." in n}  # fmt: skip
        return model, facts

    monkeypatch.setattr(sft, "load_for_training", spy)
    run_dir = sft.train(_config(tmp_path, tiny_model_dir))

    model = loaded["model"]
    adapted = [m for m in model.modules() if isinstance(m, LoraLayer)]
    assert len(adapted) == 2 * 7  # 2 layers x (q, k, v, o, gate, up, down): all-linear
    for module in adapted:
        assert isinstance(module.base_layer, bnb.nn.Linear4bit), type(module.base_layer)
        assert module.base_layer.weight.quant_type == "nf4"
        assert module.base_layer.weight.dtype == torch.uint8  # packed 4-bit, two per byte

    after = dict(model.named_parameters())
    changed = {n for n, p in loaded["before"].items() if not torch.equal(p, after[n].detach())}
    lora_b = [n for n in loaded["before"] if "lora_B" in n]
    assert lora_b and set(lora_b) <= changed, "every lora_B matrix moves"
    assert not [n for n in changed if ".base_layer." in n], "the NF4 base stays frozen"

    losses = train_losses(run_dir)
    assert len(losses) == 2 and all(math.isfinite(x) for x in losses)
    vocab = len(AutoTokenizer.from_pretrained(tiny_model_dir))
    cfg = AutoConfig.from_pretrained(tiny_model_dir)
    assert losses[0] == pytest.approx(math.log(vocab) + cfg.hidden_size * cfg.initializer_range**2 / 2,
                                      abs=0.3)  # fmt: skip

    for name in ("config.yaml", "manifest.json", "metrics.jsonl", "results.json", "status.json",
                 "plots/loss.png", "final/adapter_model.safetensors", "final/adapter_config.json",
                 "final/tokenizer.json"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "status.json").read_text())["state"] == "completed"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    facts = manifest["model_facts"]
    assert 0 < facts["trainable_parameters"] < facts["total_parameters"]
