"""Constrained JSON decoding on the real default model: 20 prompts, 20 valid answers."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tuneloop.runtime.backends.local import LocalEngine
from tuneloop.runtime.types import GenerationConfig

pytestmark = pytest.mark.integration

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
    "Describe a city",
    "Give me a book recommendation",
    "Recommend a movie for a rainy day",
    "Review your favourite restaurant",
    "Describe a programming language",
    "Suggest a board game for four players",
    "Rate a holiday destination",
    "Recommend a podcast about science",
    "Describe a famous painting",
    "Suggest a hiking trail",
    "Rate a smartphone",
    "Recommend a music album",
    "Describe a breakfast dish",
    "Suggest a house plant for beginners",
    "Review a pair of running shoes",
    "Describe a national park",
    "Recommend a video game",
    "Rate a coffee shop",
    "Describe a historical figure",
    "Suggest a weekend hobby",
]


@pytest.fixture(scope="module")
def engine(default_model_dir):
    return LocalEngine.from_ref("smollm2-135m-instruct")


def test_twenty_prompts_give_twenty_valid_answers(engine):
    config = GenerationConfig(max_new_tokens=120, json_schema=SCHEMA)
    conversations = [
        [{"role": "user", "content": f"{topic}. Answer in JSON with a name, a rating and tags."}]
        for topic in TOPICS
    ]
    outputs = []
    for start in range(0, len(conversations), 10):
        outputs += engine.generate_batch(conversations[start : start + 10], config)
    invalid = []
    for topic, out in zip(TOPICS, outputs, strict=True):
        try:
            jsonschema.validate(json.loads(out.text), SCHEMA)
        except (json.JSONDecodeError, jsonschema.ValidationError) as exc:
            invalid.append(f"{topic}: {out.finish_reason} {out.text!r} ({exc.__class__.__name__})")
    assert not invalid, "\n".join(invalid)
    assert all(o.finish_reason == "stop" for o in outputs)
