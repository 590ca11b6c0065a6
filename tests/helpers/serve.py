"""Servers for the serving tests: the app over a tiny model or a FakeModel, on loopback."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path


@contextmanager
def local_server(model_dir, *, adapters: dict | None = None, trace_sink=None, api_key=None,
                 max_batch: int = 4, max_queue: int = 64, timeout_s: float = 60.0):  # fmt: skip
    """``(url, app)`` of a server over the model in ``model_dir`` (LocalBackend)."""
    from tuneloop.serve import (
        LocalBackend,
        ServeOptions,
        create_app,
        load_local_model,
        serve_in_thread,
    )

    model, tok, _ = load_local_model(str(model_dir), adapters)
    backend = LocalBackend(model, tok, "tiny", list(adapters or {}), max_batch=max_batch,
                           max_queue=max_queue)  # fmt: skip
    app = create_app(backend, api_key=api_key, trace_sink=trace_sink,
                     options=ServeOptions(request_timeout_s=timeout_s))  # fmt: skip
    with serve_in_thread(app) as url:
        yield url, app


@contextmanager
def chat_model_server(model, *, trace_sink=None, names=None):
    """``(url, app)`` of a server over any ChatModel (a FakeModel, an upstream client)."""
    from tuneloop.serve import ChatModelBackend, create_app, serve_in_thread

    app = create_app(ChatModelBackend(model, names), trace_sink=trace_sink)
    with serve_in_thread(app) as url:
        yield url, app


def make_lora_adapter(model_dir, out_dir: Path, seed: int = 1) -> Path:
    """A random (non-zero) LoRA adapter for the tiny model, saved to ``out_dir``."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                 init_lora_weights=False))  # fmt: skip
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.5)
    peft_model.save_pretrained(out_dir)
    return Path(out_dir)
