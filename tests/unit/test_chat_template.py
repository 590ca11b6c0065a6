"""Unit tests for :mod:`tuneloop.models.chat_template`.

Masks are checked token by token against hand-built expectations: each expected
example is a list of literal text segments, each marked masked or trained, tokenized
one by one with ``tokenizer(seg, add_special_tokens=False)`` and concatenated. The
labels are the segment's ids where trained and ``-100`` where masked. Every segment
boundary sits next to a special token or between ``\\n`` and a letter, so the
concatenation is also how the whole text tokenizes; if it were not, the prompt would
not be a token prefix and the module would be wrong to accept the example.

Each case runs on the tiny test tokenizer and on the real default (SmolLM2) one;
both use ChatML with a default system prompt and no ``{% generation %}`` markers.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import NamedTuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tuneloop.models.chat_template import (
    IGNORE_INDEX,
    RenderError,
    encode_prompt,
    format_tool_calls,
    prepare_messages,
    render_for_training,
    render_text,
    template_supports_tools,
)
from tuneloop.models.tiny import CHATML_TEMPLATE

TINY_SYSTEM = "You are a tiny test model."
SMOL_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


class Chat(NamedTuple):
    """A tokenizer under test and the default system prompt its template inserts."""

    tok: object
    system: str


@pytest.fixture(
    scope="module",
    params=["tiny", pytest.param("default", marks=pytest.mark.integration)],
)
def chat(request) -> Chat:
    """Both tokenizers, shared read-only (module scope keeps hypothesis happy)."""
    if request.param == "tiny":
        return Chat(request.getfixturevalue("tiny_tokenizer"), TINY_SYSTEM)
    from transformers import AutoTokenizer

    path = request.getfixturevalue("default_model_dir")
    return Chat(AutoTokenizer.from_pretrained(path), SMOL_SYSTEM)


def with_template(tokenizer, template):
    """A copy of ``tokenizer`` with another chat template (the shared one stays intact)."""
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = template
    return tok


def mask(text: str) -> tuple[str, bool]:
    return text, False


def train(text: str) -> tuple[str, bool]:
    return text, True


def expected(tok, segments: list[tuple[str, bool]]) -> tuple[list[int], list[int]]:
    """``(input_ids, labels)`` from literal segments tokenized one by one."""
    ids: list[int] = []
    labels: list[int] = []
    for text, trained in segments:
        seg = tok(text, add_special_tokens=False)["input_ids"]
        ids += seg
        labels += seg if trained else [IGNORE_INDEX] * len(seg)
    return ids, labels


def assert_rendered(r, tok, segments):
    ids, labels = expected(tok, segments)
    assert r.input_ids == ids
    assert r.labels == labels
    assert r.attention_mask == [1] * len(ids)
    assert r.text == "".join(text for text, _ in segments)
    assert r.num_trainable == r.answer_tokens == sum(x != IGNORE_INDEX for x in labels)
    assert not r.truncated


def trained_text(tok, r, span) -> str:
    start, end = span
    assert all(r.labels[k] == r.input_ids[k] for k in range(start, end))
    return tok.decode(r.input_ids[start:end], clean_up_tokenization_spaces=False)


# ------------------------------------------------------------------ exact masks


def test_single_turn(chat):
    """System (default) + user prompt and the header are masked; the answer and its
    ``<|im_end|>`` are trained; the ``\\n`` after ``<|im_end|>`` is masked (the model
    stops at ``<|im_end|>`` and never generates it)."""
    tok, system = chat
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"}]
    r = render_for_training(tok, msgs)
    assert_rendered(
        r,
        tok,
        [
            mask(
                f"<|im_start|>system\n{system}<|im_end|>\n"
                "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            ),
            train("Hello there!<|im_end|>"),
            mask("\n"),
        ],
    )
    assert len(r.assistant_spans) == 1
    assert trained_text(tok, r, r.assistant_spans[0]) == "Hello there!<|im_end|>"


def test_multi_turn_trains_every_assistant_turn(chat):
    """Three assistant turns, three trained spans, each ending with its ``<|im_end|>``;
    user turns and headers between them stay masked."""
    tok, system = chat
    msgs = [
        {"role": "user", "content": "What is 2 + 2?"},
        {"role": "assistant", "content": "It is 4."},
        {"role": "user", "content": "And the capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "Italy?"},
        {"role": "assistant", "content": "Rome."},
    ]
    r = render_for_training(tok, msgs)
    assert_rendered(
        r,
        tok,
        [
            mask(
                f"<|im_start|>system\n{system}<|im_end|>\n"
                "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n<|im_start|>assistant\n"
            ),
            train("It is 4.<|im_end|>"),
            mask(
                "\n<|im_start|>user\nAnd the capital of France?<|im_end|>\n<|im_start|>assistant\n"
            ),
            train("Paris.<|im_end|>"),
            mask("\n<|im_start|>user\nItaly?<|im_end|>\n<|im_start|>assistant\n"),
            train("Rome.<|im_end|>"),
            mask("\n"),
        ],
    )
    assert [trained_text(tok, r, s) for s in r.assistant_spans] == [
        "It is 4.<|im_end|>",
        "Paris.<|im_end|>",
        "Rome.<|im_end|>",
    ]


def test_explicit_system_prompt_replaces_default(chat):
    """A system message is rendered instead of the template's default one, masked."""
    tok, system = chat
    msgs = [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": '{"greeting": "Hello"}'},
    ]
    r = render_for_training(tok, msgs)
    assert system not in r.text
    assert_rendered(
        r,
        tok,
        [
            mask(
                "<|im_start|>system\nAnswer in JSON.<|im_end|>\n"
                "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            ),
            train('{"greeting": "Hello"}<|im_end|>'),
            mask("\n"),
        ],
    )


def test_weight_zero_turn_is_not_trained(chat):
    """``"weight": 0`` masks the whole turn, its ``<|im_end|>`` included; the key is
    not rendered. The other assistant turn is still trained."""
    tok, system = chat
    msgs = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Bad answer.", "weight": 0},
        {"role": "user", "content": "Try again"},
        {"role": "assistant", "content": "Hello there!", "weight": 1},
    ]
    r = render_for_training(tok, msgs)
    assert "weight" not in r.text
    assert_rendered(
        r,
        tok,
        [
            mask(
                f"<|im_start|>system\n{system}<|im_end|>\n"
                "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
                "Bad answer.<|im_end|>\n<|im_start|>user\nTry again<|im_end|>\n"
                "<|im_start|>assistant\n"
            ),
            train("Hello there!<|im_end|>"),
            mask("\n"),
        ],
    )
    assert len(r.assistant_spans) == 1


# ------------------------------------------------------------------------ tools

CALCULATOR = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
}

TOOL_CONVERSATION = [
    {"role": "user", "content": "What is 2*3 and 4+5?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "2*3"}'},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "calculator", "arguments": {"expression": "4+5"}},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "6"},
    {"role": "tool", "tool_call_id": "call_2", "content": "9"},
    {"role": "assistant", "content": "2*3 = 6 and 4+5 = 9."},
]

HERMES_SYSTEM = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n"
    "<tools>\n"
    '{"name": "calculator", "description": "Evaluate an arithmetic expression.", '
    '"parameters": {"type": "object", "properties": {"expression": {"type": "string"}}, '
    '"required": ["expression"]}}\n'
    "</tools>\n\n"
    "For each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\n"
    "<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n'
    "</tool_call>"
)

TOOL_CALLS_TEXT = (
    "<tool_call>\n"
    '{"name": "calculator", "arguments": {"expression": "2*3"}}\n'
    "</tool_call>\n"
    "<tool_call>\n"
    '{"name": "calculator", "arguments": {"expression": "4+5"}}\n'
    "</tool_call>"
)


def test_tool_conversation_hermes(chat):
    """Non-native templates get Hermes text: the ``<tools>`` block becomes the system
    message (it replaces the template's default one), both argument forms (JSON string
    and dict) render as the same JSON object, results are wrapped in
    ``<tool_response>``. The tool-call turn and the final answer are trained with their
    ``<|im_end|>``; tool results are not."""
    tok, system = chat
    assert not template_supports_tools(tok)
    original = copy.deepcopy(TOOL_CONVERSATION)
    r = render_for_training(tok, TOOL_CONVERSATION, tools=[CALCULATOR])
    assert TOOL_CONVERSATION == original  # the caller's messages are untouched
    assert "<tools>\n" + '{"name": "calculator", "description"' in r.text
    assert (
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2*3"}}\n</tool_call>'
        in r.text
    )
    assert (
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "4+5"}}\n</tool_call>'
        in r.text
    )
    assert "<tool_response>\n6\n</tool_response>" in r.text
    assert_rendered(
        r,
        tok,
        [
            mask(
                f"<|im_start|>system\n{HERMES_SYSTEM}<|im_end|>\n"
                "<|im_start|>user\nWhat is 2*3 and 4+5?<|im_end|>\n<|im_start|>assistant\n"
            ),
            train(f"{TOOL_CALLS_TEXT}<|im_end|>"),
            mask(
                "\n<|im_start|>tool\n<tool_response>\n6\n</tool_response><|im_end|>\n"
                "<|im_start|>tool\n<tool_response>\n9\n</tool_response><|im_end|>\n"
                "<|im_start|>assistant\n"
            ),
            train("2*3 = 6 and 4+5 = 9.<|im_end|>"),
            mask("\n"),
        ],
    )
    assert [trained_text(tok, r, s) for s in r.assistant_spans] == [
        f"{TOOL_CALLS_TEXT}<|im_end|>",
        "2*3 = 6 and 4+5 = 9.<|im_end|>",
    ]


def test_tools_appended_to_explicit_system_and_content_kept_before_calls(tiny_tokenizer):
    """With a system message the tool block is appended after a blank line; text
    content of a tool-calling turn comes before its ``<tool_call>`` blocks."""
    msgs = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "2*3?"},
        {
            "role": "assistant",
            "content": "Let me compute.",
            "tool_calls": [
                {"function": {"name": "calculator", "arguments": '{"expression": "2*3"}'}}
            ],
        },
    ]
    out, native = prepare_messages(tiny_tokenizer, msgs, [CALCULATOR["function"]])
    assert native is None
    assert out[0] == {"role": "system", "content": f"Be brief.\n\n{HERMES_SYSTEM}"}
    assert out[2] == {
        "role": "assistant",
        "content": 'Let me compute.\n<tool_call>\n{"name": "calculator", "arguments": '
        '{"expression": "2*3"}}\n</tool_call>',
    }
    assert len(out) == 3


def test_format_tool_calls_keeps_invalid_json_arguments_visible():
    """Unparseable argument strings are kept as a JSON string, not dropped."""
    text = format_tool_calls([{"function": {"name": "f", "arguments": "{not json"}}])
    assert text == '<tool_call>\n{"name": "f", "arguments": "{not json"}\n</tool_call>'


NATIVE_TOOLS_TEMPLATE = (
    "{% if tools %}<|im_start|>system\n{{ tools | tojson }}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] or '' }}"
    "{% for c in m.tool_calls or [] %}<tool_call>{{ c.function | tojson }}</tool_call>{% endfor %}"
    "<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def test_native_tool_template_gets_openai_messages_without_mutating_input(tiny_tokenizer):
    """Templates that render ``tools``/``tool_calls`` themselves get the tools as-is
    and arguments as dicts; the caller's messages keep their JSON-string arguments."""
    tok = with_template(tiny_tokenizer, NATIVE_TOOLS_TEMPLATE)
    assert template_supports_tools(tok)
    original = copy.deepcopy(TOOL_CONVERSATION)
    out, native = prepare_messages(tok, TOOL_CONVERSATION, [CALCULATOR])
    assert native == [CALCULATOR]
    assert TOOL_CONVERSATION == original
    args = [c["function"]["arguments"] for c in out[1]["tool_calls"]]
    assert args == [{"expression": "2*3"}, {"expression": "4+5"}]
    assert out[2] == TOOL_CONVERSATION[2]

    r = render_for_training(tok, TOOL_CONVERSATION, tools=[CALCULATOR])
    assert TOOL_CONVERSATION == original
    calls = (
        '<tool_call>{"name": "calculator", "arguments": {"expression": "2*3"}}</tool_call>'
        '<tool_call>{"name": "calculator", "arguments": {"expression": "4+5"}}</tool_call>'
    )
    assert [trained_text(tok, r, s) for s in r.assistant_spans] == [
        f"{calls}<|im_end|>",
        "2*3 = 6 and 4+5 = 9.<|im_end|>",
    ]


def test_template_supports_tools():
    assert not template_supports_tools(SimpleNamespace(chat_template=CHATML_TEMPLATE))
    assert not template_supports_tools(SimpleNamespace(chat_template=None))
    assert template_supports_tools(SimpleNamespace(chat_template=NATIVE_TOOLS_TEMPLATE))
    named = {"default": CHATML_TEMPLATE, "tool_use": NATIVE_TOOLS_TEMPLATE}
    assert template_supports_tools(SimpleNamespace(chat_template=named))


def test_prepare_messages_strips_weight_and_copies(tiny_tokenizer):
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo", "weight": 0}]
    out, native = prepare_messages(tiny_tokenizer, msgs)
    assert out == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]
    assert native is None
    assert msgs[1]["weight"] == 0


# --------------------------------------------------------- prompt at inference


def test_render_text_ends_with_generation_prompt(chat):
    tok, system = chat
    msgs = [{"role": "user", "content": "Hi"}]
    assert render_text(tok, msgs) == (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert render_text(tok, msgs, add_generation_prompt=False).endswith("Hi<|im_end|>\n")


def test_encode_prompt_is_token_prefix_of_training_ids(chat):
    """For each trained turn, the inference prompt for the conversation so far is
    exactly the training ids before that turn's first trained token."""
    tok, _ = chat
    msgs = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello there!"},
        {"role": "user", "content": "  spaces and\nnewlines "},
        {"role": "assistant", "content": "Noted: é日本語🙂"},
    ]
    r = render_for_training(tok, msgs)
    assert len(r.assistant_spans) == 2
    for i, (start, _) in zip((1, 3), r.assistant_spans, strict=True):
        prompt = encode_prompt(tok, msgs[:i])
        assert prompt == r.input_ids[:start]
        assert r.labels[start - 1] == IGNORE_INDEX and r.labels[start] != IGNORE_INDEX


def test_encode_prompt_with_tools_matches_training(chat):
    tok, _ = chat
    r = render_for_training(tok, TOOL_CONVERSATION, tools=[CALCULATOR])
    for i, (start, _) in zip((1, 4), r.assistant_spans, strict=True):
        assert encode_prompt(tok, TOOL_CONVERSATION[:i], tools=[CALCULATOR]) == r.input_ids[:start]


# ----------------------------------------------------------------------- guards


def check_of(excinfo) -> str:
    assert isinstance(excinfo.value, ValueError)
    return excinfo.value.check


@pytest.mark.parametrize(
    "msgs",
    [
        [{"role": "user", "content": "Hi"}],
        [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "x", "weight": 0}],
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "x", "weight": False}],
    ],
    ids=["user-only", "system-user", "weight-0", "weight-false"],
)
def test_no_trained_assistant_turn(tiny_tokenizer, msgs):
    with pytest.raises(RenderError) as e:
        render_for_training(tiny_tokenizer, msgs)
    assert check_of(e) == "no_trainable_tokens"


def test_no_end_of_turn_token(tiny_tokenizer):
    """The assistant turn ends with plain ``\\n``: nothing would teach the model to stop."""
    template = (
        "{% for m in messages %}"
        "{% if m['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' + m['content'] + '\n' }}"
        "{% else %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endif %}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    tok = with_template(tiny_tokenizer, template)
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    with pytest.raises(RenderError) as e:
        render_for_training(tok, msgs)
    assert check_of(e) == "eot_not_trainable"


def test_explicit_eot_token(tiny_tokenizer):
    """``eot_token`` names the stop token; naming one the template never emits fails."""
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    default = render_for_training(tiny_tokenizer, msgs)
    named = render_for_training(tiny_tokenizer, msgs, eot_token="<|im_end|>")
    assert named.labels == default.labels
    with pytest.raises(RenderError) as e:
        render_for_training(tiny_tokenizer, msgs, eot_token="<|endoftext|>")
    assert check_of(e) == "eot_not_trainable"


def test_generation_prompt_differs_from_stored_header(tiny_tokenizer):
    """Generation prompt ``<|im_start|>assistant\\n\\n`` vs stored
    ``<|im_start|>assistant\\n``: the inference prompt is not a prefix of the turn."""
    template = CHATML_TEMPLATE.replace(
        "{{ '<|im_start|>assistant\\n' }}", "{{ '<|im_start|>assistant\\n\\n' }}"
    )
    assert template != CHATML_TEMPLATE
    tok = with_template(tiny_tokenizer, template)
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    with pytest.raises(RenderError) as e:
        render_for_training(tok, msgs)
    assert check_of(e) == "prompt_not_prefix"


def test_template_rewrites_earlier_assistant_turns(tiny_tokenizer):
    """Like reasoning models' templates: earlier assistant turns lose their
    ``<think>`` part once a later turn exists, so turn 1 renders differently in the
    full conversation than when it was the last turn."""
    template = (
        "{% for m in messages %}"
        "{% set content = m['content'] %}"
        "{% if m['role'] == 'assistant' and not loop.last %}"
        "{% set content = content.split('</think>')[-1] %}{% endif %}"
        "{{ '<|im_start|>' + m['role'] + '\n' + content + '<|im_end|>\n' }}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )
    tok = with_template(tiny_tokenizer, template)
    msgs = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>greet</think>Hello"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "<think>part</think>Bye"},
    ]
    with pytest.raises(RenderError) as e:
        render_for_training(tok, msgs)
    assert check_of(e) == "template_not_incremental"
    # Training only the last turn is fine: nothing after it is rewritten.
    msgs[1]["weight"] = 0
    r = render_for_training(tok, msgs)
    assert [trained_text(tok, r, s) for s in r.assistant_spans] == [
        "<think>part</think>Bye<|im_end|>"
    ]


def test_answer_token_straddling_the_prompt_boundary():
    """A token that merges the header's last character with the answer's first means
    the inference prompt's tokens are not a prefix of the training tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(["<|im_end|>", "A", ":", "U", "h", "x", " ", "\n"])}
    vocab[": "] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[(":", " ")]))
    backend.pre_tokenizer = pre_tokenizers.Split("\n", "isolated")
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>")
    tok.chat_template = (
        "{% for m in messages %}{{ m['role'][0] | upper }}:{{ m['content'] }}<|im_end|>{% endfor %}"
        "{% if add_generation_prompt %}A:{% endif %}"
    )
    msgs = [{"role": "user", "content": "h"}, {"role": "assistant", "content": "x"}]
    assert render_for_training(tok, msgs).labels[-2:] == [vocab["x"], vocab["<|im_end|>"]]
    msgs[1]["content"] = " x"  # "A:" + " x" tokenizes as "A", ": ", "x"
    with pytest.raises(RenderError) as e:
        render_for_training(tok, msgs)
    assert check_of(e) == "prompt_not_prefix"


def trimmed_offsets(tokenizer, template=CHATML_TEMPLATE):
    """A copy whose offsets exclude whitespace (ByteLevel ``trim_offsets``, as in
    GPT-2/GPT-NeoX tokenizer.json files): a lone ``Ġ`` token gets a zero-width offset."""
    from tokenizers import processors

    tok = with_template(tokenizer, template)
    tok.backend_tokenizer.post_processor = processors.ByteLevel(trim_offsets=True)
    return tok


def test_trimmed_offsets_prompt_trailing_space_is_not_trained(tiny_tokenizer):
    """Generation prompt ``assistant: `` ends with a space token ``Ġ``. Its trimmed
    offset is zero-width at the answer start; it belongs to the prompt and must stay
    masked (regression: offset matching trained it, so training saw one token less
    of context than inference)."""
    tok = trimmed_offsets(
        tiny_tokenizer,
        "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '<|im_end|>' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}",
    )
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    r = render_for_training(tok, msgs)
    ids, labels = expected(tok, [mask("user: Hi<|im_end|>assistant: "), train("Hello<|im_end|>")])
    assert (r.input_ids, r.labels) == (ids, labels)
    start = r.assistant_spans[0][0]
    assert encode_prompt(tok, msgs[:1]) == r.input_ids[:start]


def test_trimmed_offsets_answer_starting_with_space_is_accepted(tiny_tokenizer):
    """Answer `` Hello`` after ``assistant\\n``: the prompt is a token prefix, so the
    example is valid although no token's trimmed offset starts at the answer start
    (regression: it was refused as prompt_not_prefix)."""
    tok = trimmed_offsets(tiny_tokenizer)
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": " Hello"}]
    r = render_for_training(tok, msgs)
    ids, labels = expected(
        tok,
        [
            mask(
                f"<|im_start|>system\n{TINY_SYSTEM}<|im_end|>\n"
                "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
            ),
            train(" Hello<|im_end|>"),
            mask("\n"),
        ],
    )
    assert (r.input_ids, r.labels) == (ids, labels)


def test_no_chat_template(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, None)
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    with pytest.raises(RenderError) as e:
        render_for_training(tok, msgs)
    assert check_of(e) == "no_chat_template"
    with pytest.raises(RenderError) as e:
        render_text(tok, msgs[:1])
    assert check_of(e) == "no_chat_template"


def test_template_error(tiny_tokenizer):
    tok = with_template(tiny_tokenizer, "{{ raise_exception('roles must alternate') }}")
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    with pytest.raises(RenderError, match="roles must alternate") as e:
        render_for_training(tok, msgs)
    assert check_of(e) == "template_error"


def test_slow_tokenizer_is_refused():
    slow = SimpleNamespace(is_fast=False, chat_template=CHATML_TEMPLATE)
    msgs = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    with pytest.raises(RenderError) as e:
        render_for_training(slow, msgs)
    assert check_of(e) == "slow_tokenizer"


# ------------------------------------------------------------------- truncation

SINGLE = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"}]


def test_truncation_through_prompt_removes_all_answer(chat):
    tok, _ = chat
    full = render_for_training(tok, SINGLE)
    first_trained = full.assistant_spans[0][0]
    for max_length in (1, 5, first_trained):
        with pytest.raises(RenderError) as e:
            render_for_training(tok, SINGLE, max_length=max_length)
        assert check_of(e) == "truncated_all_answer"


def test_truncation_through_answer(chat):
    """Cutting ``<|im_end|>`` and the trailing ``\\n`` keeps the first answer tokens
    and reports ``truncated``; ``answer_tokens`` still counts the uncut answer."""
    tok, _ = chat
    full = render_for_training(tok, SINGLE)
    max_length = len(full.input_ids) - 2
    r = render_for_training(tok, SINGLE, max_length=max_length)
    assert r.truncated
    assert len(r.input_ids) == len(r.labels) == len(r.attention_mask) == max_length
    assert r.input_ids == full.input_ids[:max_length]
    assert r.labels == full.labels[:max_length]
    assert r.num_trainable == full.num_trainable - 1
    assert r.answer_tokens == full.answer_tokens


def test_truncation_of_masked_tail_only_is_not_truncated(chat):
    """Dropping only the masked ``\\n`` after ``<|im_end|>`` loses no trained token."""
    tok, _ = chat
    full = render_for_training(tok, SINGLE)
    r = render_for_training(tok, SINGLE, max_length=len(full.input_ids) - 1)
    assert not r.truncated
    assert r.labels == full.labels[:-1]
    same = render_for_training(tok, SINGLE, max_length=len(full.input_ids))
    assert same.input_ids == full.input_ids and not same.truncated


def test_truncation_drops_a_later_turn(tiny_tokenizer):
    """Cutting inside the second turn's prompt keeps turn one whole, flags truncation."""
    msgs = SINGLE + [{"role": "user", "content": "More"}, {"role": "assistant", "content": "Sure"}]
    full = render_for_training(tiny_tokenizer, msgs)
    (_, end1), (start2, _) = full.assistant_spans
    r = render_for_training(tiny_tokenizer, msgs, max_length=start2)
    assert r.truncated
    assert r.num_trainable == end1 - full.assistant_spans[0][0]
    assert r.assistant_spans == full.assistant_spans


# --------------------------------------------------------------------- property

# Up to U+3FFFF: SmolLM2's byte-level vocab lacks the UTF-8 lead bytes F1-FF (and some
# control bytes), so higher code points do not survive encode+decode in that tokenizer
# on its own; that is the tokenizer's loss, not the mask's.
_text = st.text(
    alphabet=st.characters(
        max_codepoint=0x3FFFF, exclude_categories=("Cs", "Cc"), include_characters="\n\t "
    ),
    max_size=24,
)


@st.composite
def conversations(draw):
    """Optional system, then 1-3 user/assistant pairs; some assistant turns weight 0."""
    msgs = []
    if draw(st.booleans()):
        msgs.append({"role": "system", "content": draw(_text)})
    for _ in range(draw(st.integers(1, 3))):
        msgs.append({"role": "user", "content": draw(_text)})
        turn = {"role": "assistant", "content": draw(_text)}
        if draw(st.integers(0, 4)) == 0:
            turn["weight"] = 0
        msgs.append(turn)
    return msgs


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(msgs=conversations())
def test_property_random_conversations(chat, msgs):
    """Either a guard refuses the example, or: lengths agree, every label is ignored or
    equals its id, each trained turn decodes to exactly its content + ``<|im_end|>``,
    nothing outside those turns is trained, and the inference prompt for each turn is
    the token prefix before it."""
    tok, _ = chat
    try:
        r = render_for_training(tok, msgs)
    except RenderError as e:
        assert e.check in {"no_trainable_tokens", "prompt_not_prefix"}
        if e.check == "no_trainable_tokens":
            assert all(m.get("weight", 1) == 0 for m in msgs if m["role"] == "assistant")
        else:  # the refusal is honest: some turn's inference prompt is not a token prefix
            ids = tok(render_text(tok, msgs, add_generation_prompt=False))["input_ids"]
            prompts = [
                encode_prompt(tok, msgs[:i]) for i, m in enumerate(msgs) if m["role"] == "assistant"
            ]
            assert any(p != ids[: len(p)] for p in prompts)
        return
    assert len(r.labels) == len(r.input_ids) == len(r.attention_mask)
    assert all(lab in (IGNORE_INDEX, tid) for lab, tid in zip(r.labels, r.input_ids, strict=True))
    turns = [i for i, m in enumerate(msgs) if m["role"] == "assistant" and m.get("weight", 1)]
    assert len(r.assistant_spans) == len(turns)
    in_span = set()
    for i, span in zip(turns, r.assistant_spans, strict=True):
        assert trained_text(tok, r, span) == msgs[i]["content"] + "<|im_end|>"
        assert encode_prompt(tok, msgs[:i]) == r.input_ids[: span[0]]
        in_span.update(range(*span))
    assert all((lab != IGNORE_INDEX) == (k in in_span) for k, lab in enumerate(r.labels))
