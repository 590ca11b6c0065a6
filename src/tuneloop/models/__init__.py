"""Resolve and load models, pull embedded ones, render chats with loss masks, plan memory.

Imports nothing else of tuneloop's.
"""

from tuneloop.models.chat_template import (
    IGNORE_INDEX,
    RenderedChat,
    RenderError,
    encode_prompt,
    prepare_messages,
    render_for_training,
    render_text,
)
from tuneloop.models.embedded import ModelPullError, is_pulled, pull
from tuneloop.models.home import tuneloop_home
from tuneloop.models.info import model_info
from tuneloop.models.plan import MemoryPlan, ModelShape, plan_memory
from tuneloop.models.registry import DEFAULT_MODEL, EmbeddedModel, embedded_models, get_embedded
from tuneloop.models.resolve import (
    ModelResolutionError,
    ResolvedModel,
    load_model,
    load_model_and_tokenizer,
    load_tokenizer,
    resolve_model,
)

__all__ = [
    "DEFAULT_MODEL",
    "IGNORE_INDEX",
    "EmbeddedModel",
    "MemoryPlan",
    "ModelShape",
    "ModelPullError",
    "ModelResolutionError",
    "RenderError",
    "RenderedChat",
    "ResolvedModel",
    "embedded_models",
    "encode_prompt",
    "get_embedded",
    "is_pulled",
    "load_model",
    "load_model_and_tokenizer",
    "load_tokenizer",
    "model_info",
    "plan_memory",
    "prepare_messages",
    "pull",
    "render_for_training",
    "render_text",
    "resolve_model",
    "tuneloop_home",
]
