"""The context policy, with the FakeModel as token counter (a token is a word).

FakeModel counts a prompt as the words of every message plus 4 per message (plus
the words of tool-call and tool-spec JSON), so the numbers below are worked by hand:
a message of ``n`` words costs ``n + 4`` prompt tokens.
"""

from __future__ import annotations

import copy
import json
import pickle

import pytest
from pydantic import ValidationError

from tuneloop.runtime.backends import FakeModel
from tuneloop.runtime.context import (
    ContextOverflowError,
    ContextPolicy,
    apply_policy,
    count_segments,
)

SUMMARY_HEADER = "\n\n## Summary of the earlier conversation\n"  # 6 words
RETRIEVED_HEADER = "\n\n## Retrieved context\n"  # 3 words


def words(n: int, tag: str = "w") -> str:
    return " ".join(f"{tag}{i}" for i in range(n))


def counter(context_window: int | None = None) -> FakeModel:
    fake = FakeModel([])
    fake.context_window = context_window
    return fake


def conversation(turns: int = 3) -> list[dict]:
    """System (2 words, 6 tokens), ``turns`` turns of user + assistant with 10 words each
    (28 tokens a turn), latest user (5 words, 9 tokens): 6 + 28 * turns + 9 tokens."""
    msgs = [{"role": "system", "content": words(2, "s")}]
    for t in range(turns):
        msgs.append({"role": "user", "content": words(10, f"u{t}_")})
        msgs.append({"role": "assistant", "content": words(10, f"a{t}_")})
    msgs.append({"role": "user", "content": words(5, "q")})
    return msgs


def run(policy, messages, fake, **kwargs):
    events = []
    out = apply_policy(policy, messages, counter=fake, emit=events.append, **kwargs)
    return out, events


# ---------------------------------------------------------------------------- windowing


def test_nothing_to_do_returns_an_equal_copy_and_emits_nothing():
    msgs = conversation()
    out, events = run(ContextPolicy(), msgs, counter(1000))
    assert out == msgs
    assert out is not msgs and all(a is not b for a, b in zip(out, msgs, strict=True))
    assert events == []


def test_no_limit_at_all_keeps_everything():
    msgs = conversation(50)
    out, events = run(ContextPolicy(), msgs, counter(None))
    assert out == msgs and events == []


def test_drops_oldest_turns_keeping_system_and_latest_user():
    """99 prompt tokens + 10 reserved > 80. Dropping one turn: 71 + 10 = 81 > 80; two:
    43 + 10 = 53 <= 80. So two turns (4 messages) go."""
    msgs = conversation(3)
    out, events = run(ContextPolicy(reserve_answer_tokens=10), msgs, counter(80))
    assert out == [msgs[0], *msgs[5:]]
    assert out[0]["role"] == "system" and out[-1] == msgs[-1]
    assert len(events) == 1
    event = events[0]
    assert event.action == "drop_turns"
    assert event.detail == {"turns_dropped": 2, "messages_dropped": 4}
    assert (event.tokens_before, event.tokens_after) == (99, 43)


def test_policy_limit_overrides_the_model_window_and_reserve_defaults_to_max_new_tokens():
    """Limit 90 (not the model's 1000), reserve 30: 71 + 30 = 101 > 90, 43 + 30 = 73."""
    msgs = conversation(3)
    policy = ContextPolicy(max_context_tokens=90)
    out, _ = run(policy, msgs, counter(1000), max_new_tokens=30)
    assert out == [msgs[0], *msgs[5:]]


def test_exact_fit_is_kept():
    """99 + 1 = 100 <= 100: nothing dropped."""
    msgs = conversation(3)
    out, events = run(ContextPolicy(reserve_answer_tokens=1), msgs, counter(100))
    assert out == msgs and events == []


def test_tool_calls_and_results_are_dropped_with_their_turn():
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    old = [
        {"role": "user", "content": "look it up"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": words(8, "r")},
        {"role": "assistant", "content": "found it"},
    ]
    recent = [
        {"role": "user", "content": "thanks a lot"},
        {"role": "assistant", "content": "you are welcome"},
    ]
    call2 = {**call, "id": "c2"}
    latest = [
        {"role": "user", "content": "again please"},
        {"role": "assistant", "content": "", "tool_calls": [call2]},
        {"role": "tool", "tool_call_id": "c2", "content": words(3, "t")},
    ]
    msgs = [{"role": "system", "content": "be brief"}, *old, *recent, *latest]
    fake = counter()
    expected = [msgs[0], *recent, *latest]
    # The smallest window that holds the expected result; one more turn would not fit.
    fake.context_window = fake.count_prompt(expected) + 5
    out, events = run(ContextPolicy(reserve_answer_tokens=5), msgs, fake)
    assert out == expected
    assert events[0].detail == {"turns_dropped": 1, "messages_dropped": 4}
    ids = {c["id"] for m in out for c in m.get("tool_calls") or []}
    assert all(m["tool_call_id"] in ids for m in out if m["role"] == "tool")


def test_history_budget_alone_drops_turns():
    """No total limit; each turn is 20 words of history, budget 25: keep one turn."""
    msgs = conversation(3)
    out, events = run(ContextPolicy(history_tokens=25), msgs, counter(None))
    assert out == [msgs[0], *msgs[5:]]
    assert events[0].detail == {"turns_dropped": 2, "messages_dropped": 4}


def test_minimal_drops_for_every_limit():
    """Whatever the limit, the result fits, and keeping one more turn would not."""
    msgs = [{"role": "system", "content": "sys"}]
    for t in range(13):
        msgs += [
            {"role": "user", "content": words(t % 5 + 1, f"u{t}_")},
            {"role": "assistant", "content": words(2 * t % 7 + 1, f"a{t}_")},
        ]
    msgs.append({"role": "user", "content": "last"})
    fake = counter()
    full = fake.count_prompt(msgs)
    for limit in range(fake.count_prompt([msgs[0], msgs[-1]]) + 3, full + 5):
        fake.context_window = limit
        out = apply_policy(ContextPolicy(reserve_answer_tokens=3), msgs, counter=fake)
        assert fake.count_prompt(out) + 3 <= limit
        kept = len(out) - 2
        assert out == [msgs[0], *msgs[len(msgs) - 1 - kept :]]
        if kept < len(msgs) - 2:
            one_more = [msgs[0], *msgs[len(msgs) - 3 - kept :]]
            assert fake.count_prompt(one_more) + 3 > limit


def test_without_a_user_message_nothing_is_dropped():
    msgs = [{"role": "system", "content": "s"}, {"role": "assistant", "content": words(50)}]
    with pytest.raises(ContextOverflowError):
        apply_policy(ContextPolicy(reserve_answer_tokens=0), msgs, counter=counter(20))


# ---------------------------------------------------------------------------- summary


def test_summary_is_inserted_and_summarizer_gets_exactly_the_dropped_messages():
    """Two turns must go (see above); with the summary's room (5 + 6 header words) kept:
    43 + 10 + 11 = 64 <= 80, still two."""
    msgs = conversation(3)
    seen = []

    def summarizer(dropped):
        seen.append(dropped)
        return "they talked"

    policy = ContextPolicy(reserve_answer_tokens=10, summarize=True, summary_tokens=5)
    fake = counter(80)
    out, events = run(policy, msgs, fake, summarizer=summarizer)
    assert seen == [msgs[1:5]]
    assert out[0] == {"role": "system", "content": "s0 s1" + SUMMARY_HEADER + "they talked"}
    assert out[1:] == msgs[5:]
    assert [e.action for e in events] == ["drop_turns", "summarize"]
    assert events[1].detail == {"turns_summarized": 2, "summary_tokens": 2}
    assert events[1].tokens_before == 40  # the dropped messages' words
    assert events[0].tokens_after == fake.count_prompt(out) == 43 + 8
    assert fake.count_prompt(out) + 10 <= 80


def test_room_for_the_summary_can_cost_one_more_turn():
    """Limit 63, reserve 20: two drops fit exactly (43 + 20 = 63), but not with 11 tokens
    kept for the summary (74), so a third turn goes: 15 + 20 + 11 = 46 <= 63."""
    msgs = conversation(3)
    seen = []
    policy = ContextPolicy(reserve_answer_tokens=20, summarize=True, summary_tokens=5)
    out, events = run(policy, msgs, counter(63), summarizer=lambda d: seen.append(d) or "all of it")
    assert seen == [msgs[1:7]]
    assert out == [{"role": "system", "content": "s0 s1" + SUMMARY_HEADER + "all of it"}, msgs[7]]
    assert events[0].detail == {"turns_dropped": 3, "messages_dropped": 6}


def test_summarizer_failure_keeps_the_request_without_a_summary():
    """On failure the extra turn dropped for the summary's room comes back."""
    msgs = conversation(3)

    def broken(dropped):
        raise RuntimeError("boom")

    policy = ContextPolicy(reserve_answer_tokens=20, summarize=True, summary_tokens=5)
    out, events = run(policy, msgs, counter(63), summarizer=broken)
    assert out == [msgs[0], *msgs[5:]]
    assert [e.action for e in events] == ["drop_turns", "summarize"]
    assert events[0].detail["turns_dropped"] == 2
    assert events[1].detail == {"error": "RuntimeError: boom"}


def test_long_summary_is_cut_to_its_cap():
    msgs = conversation(3)
    policy = ContextPolicy(reserve_answer_tokens=10, summarize=True, summary_tokens=5)
    out, events = run(policy, msgs, counter(80), summarizer=lambda d: words(12, "x"))
    assert out[0]["content"] == "s0 s1" + SUMMARY_HEADER + words(5, "x")
    assert [e.action for e in events] == ["drop_turns", "truncate_summary", "summarize"]
    assert events[1].detail == {"tokens_removed": 7}
    assert (events[1].tokens_before, events[1].tokens_after) == (12, 5)
    assert events[2].detail == {"turns_summarized": 2, "summary_tokens": 5}


def test_summary_gets_only_the_room_left_when_every_turn_is_dropped():
    """Limit 40, reserve 10: all three turns go (15 + 10 = 25); 40 - 25 - 6 header = 9
    tokens are left for the summary, under its cap of 50."""
    msgs = conversation(3)
    policy = ContextPolicy(reserve_answer_tokens=10, summarize=True, summary_tokens=50)
    fake = counter(40)
    out, events = run(policy, msgs, fake, summarizer=lambda d: words(30, "x"))
    assert out[0]["content"] == "s0 s1" + SUMMARY_HEADER + words(9, "x")
    assert fake.count_prompt(out) + 10 == 40
    assert events[-1].detail == {"turns_summarized": 3, "summary_tokens": 9}


def test_empty_summary_or_no_room_for_one_means_no_summary():
    """Limit 30, reserve 10: all turns go (15 + 10 = 25), leaving 30 - 25 - 6 header
    = -1 tokens for a summary."""
    msgs = conversation(3)
    policy = ContextPolicy(reserve_answer_tokens=10, summarize=True)
    out, events = run(policy, msgs, counter(30), summarizer=lambda d: "gist")
    assert out == [msgs[0], msgs[-1]]
    assert events[-1].detail == {"error": "no room left in the context for a summary"}
    out, events = run(policy, msgs, counter(80), summarizer=lambda d: "  ")
    assert out == [msgs[0], *msgs[5:]]
    assert events[-1].detail == {"error": "the summarizer returned an empty summary"}


def test_no_summary_when_summarize_is_off():
    msgs = conversation(3)
    called = []
    out, events = run(
        ContextPolicy(reserve_answer_tokens=10), msgs, counter(80), summarizer=called.append
    )
    assert called == [] and out[0] == msgs[0]
    assert [e.action for e in events] == ["drop_turns"]


# ---------------------------------------------------------------------------- tool outputs


def test_long_tool_output_is_cut_with_a_marker_to_exactly_its_budget():
    """100 words, budget 20: the marker "[... 85 tokens truncated ...]" is 5 words, so 15
    words stay and 85 go: 15 + 5 = 20."""
    long = words(100, "r")
    msgs = [
        {"role": "user", "content": "run it"},
        {"role": "assistant", "content": "", "tool_calls": []},
        {"role": "tool", "tool_call_id": "c", "content": long},
        {"role": "tool", "tool_call_id": "d", "content": "short"},
    ]
    fake = counter()
    out, events = run(ContextPolicy(tool_output_tokens=20), msgs, fake)
    assert out[2]["content"] == words(15, "r") + "\n[... 85 tokens truncated ...]"
    assert fake.count_text(out[2]["content"]) == 20
    assert out[3] == msgs[3]
    assert len(events) == 1
    assert events[0].action == "truncate_tool_output"
    assert events[0].detail == {"index": 2, "tokens_removed": 85}
    assert (events[0].tokens_before, events[0].tokens_after) == (100, 20)


class CharCounter:
    """A token is a character; with ``tokenizer`` the cut is done at token level."""

    context_window = None

    def count_text(self, text):
        return len(text)

    def count_prompt(self, messages, tools=None):
        return sum(len(m.get("content") or "") for m in messages)


class CharTokenizer:
    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}

    def decode(self, ids):
        return "".join(chr(i) for i in ids)


@pytest.mark.parametrize("with_tokenizer", [True, False])
def test_cut_inside_a_word(with_tokenizer):
    """One 100-character word, budget 30, marker "[{n} cut]": the first guess keeps
    30 - len("\\n[100 cut]") = 20 characters; 20 + len("\\n[80 cut]") = 29 <= 30."""
    chars = CharCounter()
    if with_tokenizer:
        chars.tokenizer = CharTokenizer()
    text = "x" * 50 + "y" * 50
    msgs = [{"role": "user", "content": "go"}, {"role": "tool", "content": text}]
    policy = ContextPolicy(tool_output_tokens=30, truncation_marker="[{n} cut]")
    out = apply_policy(policy, msgs, counter=chars)
    assert out[1]["content"] == "x" * 20 + "\n[80 cut]"


def test_tool_output_limit_can_be_off():
    msgs = [{"role": "user", "content": "go"}, {"role": "tool", "content": words(5000)}]
    out, events = run(ContextPolicy(tool_output_tokens=None), msgs, counter())
    assert out == msgs and events == []


# ---------------------------------------------------------------------------- retrieved


DOCS = [words(5, "a"), words(20, "b"), words(5, "c")]


def test_retrieved_docs_are_rendered_into_the_system_message():
    msgs = conversation(0)
    out, events = run(ContextPolicy(), msgs, counter(), retrieved=DOCS[:2])
    block = RETRIEVED_HEADER + f"[1] {DOCS[0]}\n\n[2] {DOCS[1]}"
    assert out == [{"role": "system", "content": "s0 s1" + block}, msgs[1]]
    assert events == []


def test_retrieved_docs_create_a_system_message_when_there_is_none():
    msgs = [{"role": "user", "content": "hi"}]
    out = apply_policy(ContextPolicy(), msgs, counter=counter(), retrieved=["doc"])
    assert out == [{"role": "system", "content": "## Retrieved context\n[1] doc"}, msgs[0]]


def test_lowest_ranked_docs_are_dropped_first():
    """Block: 3 header words + (1 + words) per doc. Budget 16 < 3 + 6 + 21: doc 1 fits
    (9), doc 2 does not (30); 16 - (3 + 6 + 1) = 6 words of room for doc 2: 1 word plus
    a 5-word marker, so doc 2 is cut and doc 3 dropped."""
    fake = counter()
    out, events = run(ContextPolicy(retrieved_tokens=16), conversation(0), fake, retrieved=DOCS)
    marker = "[... 19 tokens truncated ...]"
    block = RETRIEVED_HEADER + f"[1] {DOCS[0]}\n\n[2] b0\n{marker}"
    assert out[0]["content"] == "s0 s1" + block
    assert fake.count_text(block) == 16
    assert len(events) == 1 and events[0].action == "truncate_retrieved"
    assert events[0].detail == {"dropped_docs": 1, "kept_docs": 2, "truncated_doc": 2}
    assert (events[0].tokens_before, events[0].tokens_after) == (3 + 6 + 21 + 6, 16)


def test_a_doc_is_dropped_rather_than_left_as_a_bare_marker():
    """Budget 14: doc 1 fits (9); 14 - 10 = 4 words of room, less than the marker."""
    out, events = run(
        ContextPolicy(retrieved_tokens=14), conversation(0), counter(), retrieved=DOCS
    )
    assert out[0]["content"] == "s0 s1" + RETRIEVED_HEADER + f"[1] {DOCS[0]}"
    assert events[0].detail == {"dropped_docs": 2, "kept_docs": 1, "truncated_doc": None}


def test_the_best_doc_alone_is_cut_when_it_does_not_fit():
    """One 50-word doc, budget 20: 20 - 4 = 16 words of room, 11 kept + 5 of marker."""
    fake = counter()
    out, events = run(
        ContextPolicy(retrieved_tokens=20), conversation(0), fake, retrieved=[words(50)]
    )
    block = RETRIEVED_HEADER + f"[1] {words(11)}\n[... 39 tokens truncated ...]"
    assert out[0]["content"] == "s0 s1" + block
    assert fake.count_text(block) == 20
    assert events[0].detail == {"dropped_docs": 0, "kept_docs": 1, "truncated_doc": 1}


def test_summary_comes_before_retrieved_context():
    msgs = conversation(3)
    policy = ContextPolicy(reserve_answer_tokens=10, summarize=True, summary_tokens=5)
    out = apply_policy(
        policy, msgs, counter=counter(100), retrieved=["doc"], summarizer=lambda d: "gist"
    )
    assert out[0]["content"] == "s0 s1" + SUMMARY_HEADER + "gist" + RETRIEVED_HEADER + "[1] doc"


def test_system_budget_ignores_the_retrieved_block():
    msgs = conversation(0)
    out = apply_policy(
        ContextPolicy(system_tokens=2), msgs, counter=counter(), retrieved=[words(40)]
    )
    assert out[0]["content"].startswith("s0 s1" + RETRIEVED_HEADER)


# ---------------------------------------------------------------------------- errors


def test_latest_turn_alone_too_big():
    """All history dropped: system 2 + latest 100 + 8 template (4 per message) = 110,
    plus 10 reserved = 120 > 50."""
    msgs = [*conversation(1)[:-1], {"role": "user", "content": words(100)}]
    with pytest.raises(ContextOverflowError) as info:
        apply_policy(ContextPolicy(reserve_answer_tokens=10), msgs, counter=counter(50))
    assert str(info.value) == (
        "request does not fit the context: system 2 + latest turn 100 + chat template 8 "
        "+ reserved answer 10 = 120 > 50 tokens (after dropping 1 earlier turn)"
    )
    assert info.value.segments == {
        "system": 2, "retrieved": 0, "tools": 0, "latest_turn": 100, "template": 8,
        "reserved_answer": 10,
    }  # fmt: skip
    assert info.value.limit == 50


TOOL = {
    "type": "function",
    "function": {"name": "lookup", "description": "find a thing", "parameters": {}},
}
TOOL_WORDS = len(json.dumps(TOOL).split())  # 11


def test_overflow_lists_tools_and_retrieved_context():
    msgs = [{"role": "user", "content": words(30)}]
    with pytest.raises(ContextOverflowError) as info:
        apply_policy(
            ContextPolicy(reserve_answer_tokens=5), msgs, counter=counter(40),
            tools=[TOOL], retrieved=["one two"],
        )  # fmt: skip
    # retrieved: 3 header words + "[1] one two" (3); template: 4 per message (2).
    assert str(info.value) == (
        f"request does not fit the context: retrieved context 6 + tools {TOOL_WORDS} + "
        f"latest turn 30 + chat template 8 + reserved answer 5 = {44 + TOOL_WORDS + 5} > 40 tokens"
    )


def test_system_prompt_over_its_budget():
    with pytest.raises(
        ContextOverflowError, match=r"^system prompt is 2 tokens, over its budget of 1$"
    ) as info:
        apply_policy(ContextPolicy(system_tokens=1), conversation(1), counter=counter())
    assert info.value.segments == {"system": 2} and info.value.limit == 1


def test_tools_over_their_budget():
    assert TOOL_WORDS == 11
    with pytest.raises(
        ContextOverflowError, match=r"^tool specs are 11 tokens, over their budget of 10$"
    ):
        apply_policy(
            ContextPolicy(tools_tokens=10), conversation(1), counter=counter(), tools=[TOOL]
        )
    out = apply_policy(
        ContextPolicy(tools_tokens=11), conversation(1), counter=counter(), tools=[TOOL]
    )
    assert out == conversation(1)


def test_reserve_larger_than_the_context():
    with pytest.raises(ContextOverflowError, match="reserved answer .300 tokens. is larger"):
        apply_policy(ContextPolicy(), conversation(0), counter=counter(200), max_new_tokens=300)


def test_overflow_error_survives_pickling():
    err = ContextOverflowError("too big", {"system": 3}, 2)
    back = pickle.loads(pickle.dumps(err))
    assert (str(back), back.segments, back.limit) == ("too big", {"system": 3}, 2)


# ---------------------------------------------------------------------------- the rest


def test_input_is_not_mutated():
    msgs = conversation(3)
    msgs.insert(6, {"role": "tool", "tool_call_id": "c", "content": words(100)})
    msgs.append({"role": "tool", "tool_call_id": "d", "content": words(100)})
    before = copy.deepcopy(msgs)
    docs = [words(30), words(30)]
    policy = ContextPolicy(
        reserve_answer_tokens=10, summarize=True, tool_output_tokens=10, retrieved_tokens=20
    )
    out = apply_policy(policy, msgs, counter=counter(90), retrieved=docs, summarizer=lambda d: "s")
    assert msgs == before and docs == [words(30), words(30)]
    assert out != msgs


def test_count_segments():
    """System 2 words, history 3 turns of 20, latest 5, tools 11; template 4 per message (8)."""
    msgs = conversation(3)
    assert count_segments(msgs, counter=counter(), tools=[TOOL]) == {
        "system": 2, "tools": 11, "history": 60, "latest_turn": 5, "template": 32,
        "total_prompt": 99 + 11,
    }  # fmt: skip


def test_policy_is_strict_config():
    with pytest.raises(ValidationError):
        ContextPolicy(max_context=100)
    with pytest.raises(ValidationError):
        ContextPolicy(truncation_marker="[{x} cut]")
    with pytest.raises(ValidationError):
        ContextPolicy(summary_tokens=0)
