"""The context policy with the real default model's tokenizer and chat template.

Only token counting is used (no generation): the window must fit exactly as the
engine itself counts the prompt.
"""

from __future__ import annotations

import pytest

from tuneloop.runtime.backends.local import LocalEngine
from tuneloop.runtime.context import ContextPolicy, apply_policy

pytestmark = pytest.mark.integration

LIMIT = 300
RESERVE = 64


@pytest.fixture(scope="module")
def engine(default_model_dir):
    return LocalEngine.from_ref(str(default_model_dir))


def twenty_turns() -> list[dict]:
    msgs = [{"role": "system", "content": "You are a patient tutor of geography."}]
    for t in range(20):
        msgs.append(
            {"role": "user", "content": f"Question {t}: which rivers flow through city {t}?"}
        )
        msgs.append(
            {"role": "assistant", "content": f"City {t} lies on {t % 3 + 1} rivers; " * (t % 4 + 1)}
        )
    msgs.append({"role": "user", "content": "Summarize what we covered, please."})
    return msgs


def test_twenty_turns_are_windowed_to_fit_exactly(engine):
    msgs = twenty_turns()
    assert engine.count_prompt(msgs) + RESERVE > LIMIT
    events = []
    policy = ContextPolicy(max_context_tokens=LIMIT, reserve_answer_tokens=RESERVE)
    out = apply_policy(policy, msgs, counter=engine, emit=events.append)
    assert engine.count_prompt(out) + RESERVE <= LIMIT
    assert out[0] == msgs[0] and out[-1] == msgs[-1]
    kept = len(out) - 2
    assert 0 < kept < len(msgs) - 2 and kept % 2 == 0
    assert out == [msgs[0], *msgs[len(msgs) - 1 - kept :]]
    # Minimal: keeping one more turn would not fit.
    one_more = [msgs[0], *msgs[len(msgs) - 3 - kept :]]
    assert engine.count_prompt(one_more) + RESERVE > LIMIT
    [event] = events
    assert event.detail["turns_dropped"] == (len(msgs) - 2 - kept) // 2
    assert event.tokens_after == engine.count_prompt(out)


def test_summary_fits_as_the_real_tokenizer_counts_it(engine):
    msgs = twenty_turns()
    policy = ContextPolicy(
        max_context_tokens=LIMIT, reserve_answer_tokens=RESERVE, summarize=True, summary_tokens=40
    )
    long_summary = "The student asked about rivers and cities, one after another. " * 20
    out = apply_policy(policy, msgs, counter=engine, summarizer=lambda dropped: long_summary)
    assert engine.count_prompt(out) + RESERVE <= LIMIT
    head, summary = out[0]["content"].split("## Summary of the earlier conversation\n")
    assert head.startswith(msgs[0]["content"])
    assert 0 < engine.count_text(summary) <= 40


def test_long_tool_output_is_cut_to_its_budget(engine):
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "read_file", "arguments": '{"path": "notes.txt"}'},
    }
    output = "\n".join(f"line {i}: the quick brown fox jumps over the lazy dog" for i in range(300))
    msgs = [
        *twenty_turns()[:5],
        {"role": "user", "content": "Read notes.txt for me."},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "c1", "content": output},
    ]
    assert engine.count_text(output) > 2000
    events = []
    policy = ContextPolicy(
        max_context_tokens=LIMIT, reserve_answer_tokens=RESERVE, tool_output_tokens=100
    )
    out = apply_policy(policy, msgs, counter=engine, emit=events.append)
    cut = out[-1]["content"]
    assert engine.count_text(cut) <= 100
    assert cut.startswith("line 0: the quick brown fox")
    assert cut.endswith(" tokens truncated ...]")
    assert engine.count_prompt(out) + RESERVE <= LIMIT
    assert out[-3:-1] == msgs[-3:-1]
    first = events[0]
    assert first.action == "truncate_tool_output" and first.detail["index"] == len(msgs) - 1
    assert first.tokens_after == engine.count_text(cut)
