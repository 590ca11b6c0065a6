"""``tuneloop data stats``: numbers on a four-record file, worked out by hand below.

    rec 1  conversation  system "You are helpful." (3 words), user "hello there" (2),
                         assistant "hi" (1)                                   turns 2
    rec 2  conversation  declares tool get_weather; user "weather in Paris please" (4),
                         assistant calls get_weather, tool "sunny" (1),
                         assistant "It is sunny." (3)                         turns 4
    rec 3  conversation  user "a b c d e f" (6), assistant "ok ok" + a call to search
                                                                              turns 2
    rec 4  preference    prompt user "pick one" (2), chosen "A", rejected "B" turns 3

Turns (system left out) [2, 4, 2, 3]: mean 2.75; nearest-rank p50 of [2, 2, 3, 4] is the
ceil(0.5 * 4) = 2nd value, 2; p95 the ceil(3.8) = 4th, 4. User lengths [2, 4, 6, 2]:
mean 3.5, p50 2, max 6.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tuneloop.data.records import Conversation
from tuneloop.data.stats import (
    compute_stats,
    distribution,
    stats_html,
    token_stats,
    write_stats_html,
)

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}}
RECORDS = [
    {"messages": [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": "hello there"},
                  {"role": "assistant", "content": "hi"}]},
    {"tools": [WEATHER], "messages": [
        {"role": "user", "content": "weather in Paris please"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "tool_call_id": "c1", "name": "get_weather", "content": "sunny"},
        {"role": "assistant", "content": "It is sunny."}]},
    {"messages": [{"role": "user", "content": "a b c d e f"},
                  {"role": "assistant", "content": "ok ok", "tool_calls": [{"function": {"name": "search", "arguments": {}}}]}]},
    {"prompt": [{"role": "user", "content": "pick one"}], "chosen": [{"role": "assistant", "content": "A"}],
     "rejected": [{"role": "assistant", "content": "B"}]},
]  # fmt: skip


@pytest.fixture
def sample(tmp_path):
    path = tmp_path / "sample.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in RECORDS), encoding="utf-8")
    return path


class CharTokenizer:
    """One token per character: lengths are character counts."""

    name_or_path = "chars"

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


def test_numbers_on_a_small_file(sample):
    s = compute_stats(sample).summary()
    assert s["records"] == 4
    assert s["kinds"] == {"conversation": 3, "preference": 1}
    assert s["length_unit"] == "words (whitespace)"
    assert s["turns"] == {"count": 4, "mean": 2.75, "min": 2, "p50": 2, "p95": 4, "max": 4}
    user = s["lengths_by_role"]["user"]
    assert (user["count"], user["mean"], user["p50"], user["max"]) == (4, 3.5, 2, 6)
    assert s["lengths_by_role"]["system"]["max"] == 3
    assert s["lengths_by_role"]["tool"] == {"count": 1, "mean": 1.0, "min": 1, "p50": 1, "p95": 1, "max": 1}
    assert s["lengths_by_role"]["assistant"]["count"] == 6  # 1 + 2 + 1 + chosen + rejected
    assert s["tools"] == {"records_with_tools": 1, "records_with_tool_calls": 2,
                          "calls_per_tool": {"get_weather": 1, "search": 1}}  # fmt: skip


def test_lengths_in_tokens_when_a_tokenizer_is_given(sample):
    s = compute_stats(sample, CharTokenizer()).summary()
    assert s["length_unit"] == "tokens (chars)"
    # "hello there" 11, "weather in Paris please" 23, "a b c d e f" 11, "pick one" 8:
    # mean 53 / 4, sorted [8, 11, 11, 23] -> p50 the 2nd (11), p95 the 4th (23).
    assert s["lengths_by_role"]["user"] == {"count": 4, "mean": 13.25, "min": 8, "p50": 11, "p95": 23, "max": 23}


def test_distribution_is_nearest_rank():
    """p95 of 1..20: ceil(0.95 * 20) = 19th value, 19; p50: 10th value, 10."""
    d = distribution(list(range(1, 21)))
    assert (d["p50"], d["p95"], d["max"], d["mean"]) == (10, 19, 20, 10.5)
    assert distribution([]) == {"count": 0}


def test_token_stats_with_render_and_max_len():
    """Fake render: 10 tokens per message, 3 trainable per record; a record not ending in an
    assistant turn is rejected. Measured: 3 messages (30) and 2 (20); one error; tokens 50,
    mean 25, p50 of [20, 30] the 1st (20), p95 the 2nd (30); over max_len 25: one."""
    recs = [Conversation.model_validate(RECORDS[0]), Conversation.model_validate(RECORDS[2])]
    recs.insert(1, Conversation.model_validate({"messages": [{"role": "user", "content": "no answer"}]}))

    def render(messages, tools, max_length):
        if messages[-1]["role"] != "assistant":
            raise ValueError("no_trainable_tokens")
        return SimpleNamespace(input_ids=[0] * (10 * len(messages)), num_trainable=3)

    got = token_stats(recs, render=render, max_len=25)
    assert got == {"records": 3, "tokens": 50, "mean": 25.0, "p50": 20, "p95": 30, "max": 30,
                   "trainable_tokens": 6, "render_errors": 1, "over_max_len": 1}  # fmt: skip
    plain = token_stats(recs[:1], tokenizer=CharTokenizer())
    # "You are helpful." + "\n" + "hello there" + "\n" + "hi" = 16 + 1 + 11 + 1 + 2
    assert plain["tokens"] == 31 and "trainable_tokens" not in plain


def test_html_embeds_png_histograms(sample, tmp_path):
    stats = compute_stats(sample)
    out = write_stats_html(stats, tmp_path / "report" / "stats.html")
    page = out.read_text(encoding="utf-8")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    # one per role (assistant, system, tool, user) + record length + turns + tool calls
    assert len(images) == 7
    assert all(base64.b64decode(b64).startswith(b"\x89PNG\r\n\x1a\n") for b64 in images)
    assert "words (whitespace)" in page and stats_html(stats) == page


def test_cli_prints_summary_and_writes_html(sample, tmp_path):
    html = tmp_path / "s.html"
    result = subprocess.run([sys.executable, "-m", "tuneloop.cli", "data", "stats", str(sample), "-o", str(html)],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "words (whitespace)" in result.stdout and "get_weather 1" in result.stdout
    assert "data:image/png;base64," in html.read_text()


def test_cli_bad_line_is_one_clear_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(RECORDS[0]) + "\n{not json\n")
    result = subprocess.run([sys.executable, "-m", "tuneloop.cli", "data", "stats", "bad.jsonl"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("error: bad.jsonl:2: invalid JSON")
