"""The built-in tools: right answers, and refusals for every abuse we could think of."""

from __future__ import annotations

import datetime as dt
import os
import re
import time

import pytest

from tuneloop.runtime import builtin_tools
from tuneloop.runtime.builtin_tools import (
    BUILTIN_TOOLS,
    builtin_registry,
    calculator,
    clock,
    make_read_file,
    make_search_docs,
)
from tuneloop.runtime.tools import ToolError, tool

# --- calculator ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("1234 * 5678", "7006652"),
        ("2 + 3 * 4", "14"),  # precedence
        ("(2 + 3) * 4", "20"),
        ("-2 ** 2", "-4"),  # ** binds tighter than unary minus, as in Python
        ("+5 - -3", "8"),
        ("7 // 2", "3"),
        ("-7 % 3", "2"),
        ("1 / 3", "0.333333333333"),  # 12 significant digits
        ("0.1 + 0.2", "0.3"),
        ("10 / 4", "2.5"),
        ("6 / 3", "2"),  # an integral float prints as an int
        ("1e20", "1e+20"),  # ... unless it is 1e15 or more
        ("2 ** -2", "0.25"),
        ("2 ** 0.5", "1.41421356237"),
        ("sqrt(16)", "4"),
        ("abs(-3) + max(1, 5, 2) - min(4, 2)", "6"),
        ("round(2.567, 2)", "2.57"),
        ("round(2.5)", "2"),  # Python rounds half to even
        ("floor(-1.5) + ceil(1.2)", "0"),
        ("log(e)", "1"),
        ("log(8, 2)", "3"),
        ("exp(0)", "1"),
        ("2 * pi", "6.28318530718"),
        ("6 × 7", "42"),
        ("84 ÷ 2", "42"),
        ("2^10", "1024"),
        ("10 ** 1000", "1" + "0" * 1000),  # the largest power allowed
        ("  3  ", "3"),
    ],
)
def test_calculator_computes(expression, expected):
    assert calculator(expression) == expected


@pytest.mark.parametrize(
    "expression, message",
    [
        ("2**10**10", "exponent is too large"),
        ("9**9**9", "exponent is too large"),
        ("10**1001", "exponent is too large"),
        ("(10**1000) ** 2", "result would be too large"),
        ("10**1000 * 10**1000 * 10**1000 * 10**1000", "more than 4000 digits"),
        ("10.0 ** 400", "result is too large"),
        ("exp(1000)", "result is too large"),
        ("().__class__", "attribute access"),
        ("(1).__class__.__bases__", "attribute access"),
        ("math.pi", "attribute access"),
        ("__import__('os')", "function '__import__' is not allowed"),
        ("open('x')", "function 'open' is not allowed"),
        ("x", "name 'x' is not allowed"),
        ("[1]*10", "lists"),
        ("'a'*3", "str values"),
        ("lambda: 1", "lambda"),
        ("[x for x in (1, 2)]", "comprehensions"),
        ("(x for x in (1,))", "comprehensions"),
        ("1, 234", "tuples"),
        ("1 < 2", "comparisons"),
        ("1 << 10", "operator LShift"),
        ("True + 1", "bool values"),
        ("1j", "complex values"),
        ("min(1, key=abs)", "keyword arguments"),
        ("(-8) ** (1/3)", "not a real number"),
        ("sqrt(-1)", "sqrt: math domain error"),
        ("round(1.5, 10**9)", "round(x, n)"),
        ("1 +", "invalid expression"),
        ("1\x00", "invalid expression"),
        ("1" * 600, "expression is too long (600 characters"),
        ("-" * 300 + "1", "nested too deeply"),
        ("1/0", "division by zero"),
        ("1 // 0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0 ** -1", "division by zero"),
    ],
)
def test_calculator_refuses_quickly(expression, message):
    start = time.perf_counter()
    with pytest.raises(ToolError, match=re.escape(message)):
        calculator(expression)
    assert time.perf_counter() - start < 1.0


def test_power_bound_is_estimated_from_the_logarithm():
    """3**700: 700 * log10(3) = 700 * 0.477 = 334 digits, allowed; 3**1000 = 477 digits,
    allowed; 10**999 * 10 is 1001 digits (multiplication, under the 4000-digit cap);
    but 11**1000 = 10**(1000 * 1.041) = 10**1041 is over 10**1000: refused."""
    assert len(calculator("3**700")) == 334
    assert len(calculator("3**1000")) == 478
    assert len(calculator("10**999 * 10")) == 1001
    with pytest.raises(ToolError, match="result would be too large"):
        calculator("11**1000")


def test_calculator_through_the_registry():
    registry = builtin_registry(["calculator"])
    assert registry.execute("calculator", {"expression": "1234 * 5678"}).output == "7006652"
    refused = registry.execute("calculator", {"expression": "__import__('os').system('ls')"})
    assert (refused.ok, refused.error_type) == (False, "refused")
    assert refused.error == "only plain function names like sqrt(...) are allowed"


# --- clock ---------------------------------------------------------------------------


@pytest.fixture
def frozen(monkeypatch):
    """Freeze clock() at 2026-11-30 20:04:22 UTC (a Monday)."""
    moment = dt.datetime(2026, 11, 30, 20, 4, 22, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(builtin_tools, "now", lambda: moment)
    return moment


@pytest.mark.parametrize(
    "zone, expected",
    [
        ("Europe/Paris", "2026-11-30T21:04:22+01:00 (Europe/Paris, Monday)"),  # CET, +1
        ("America/New_York", "2026-11-30T15:04:22-05:00 (America/New_York, Monday)"),  # EST
        ("Asia/Kolkata", "2026-12-01T01:34:22+05:30 (Asia/Kolkata, Tuesday)"),  # next day
        ("UTC", "2026-11-30T20:04:22+00:00 (UTC, Monday)"),
        ("utc", "2026-11-30T20:04:22+00:00 (UTC, Monday)"),
        ("europe/paris", "2026-11-30T21:04:22+01:00 (Europe/Paris, Monday)"),
    ],
)
def test_clock_in_zones(frozen, zone, expected):
    assert clock(zone) == expected


def test_clock_defaults_to_utc_and_follows_summer_time(monkeypatch, frozen):
    assert clock() == "2026-11-30T20:04:22+00:00 (UTC, Monday)"
    summer = dt.datetime(2026, 7, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(builtin_tools, "now", lambda: summer)
    assert clock("Europe/Paris") == "2026-07-01T14:00:00+02:00 (Europe/Paris, Wednesday)"


@pytest.mark.parametrize(
    "zone",
    [
        "Mars/Olympus_Mons",
        "../../etc/passwd",
        "/etc/passwd",
        "Europe/../../etc/passwd",
        "Europe",
        "",
        "Europe/Paris\x00",
        "x" * 200,
    ],
)
def test_clock_refuses_unknown_zones(frozen, zone):
    with pytest.raises(ToolError, match="unknown time zone"):
        clock(zone)


def test_clock_really_reads_the_time():
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    stamp = dt.datetime.fromisoformat(clock("UTC").split(" ")[0])
    assert before <= stamp <= before + dt.timedelta(seconds=5)


# --- read_file -----------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    """root/ with nested files and links, and secrets beside it (outside root)."""
    root = tmp_path / "root"
    (root / "docs" / "guide").mkdir(parents=True)
    (root / "docs" / "guide" / "intro.md").write_text("Hello, world.\n", encoding="utf-8")
    (root / "binary.bin").write_bytes(b"ok \xff\xfe end")
    (tmp_path / "secret.txt").write_text("TOP SECRET", encoding="utf-8")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret2.txt").write_text("ALSO SECRET", encoding="utf-8")
    os.symlink(tmp_path / "secret.txt", root / "link_out.txt")
    os.symlink(tmp_path / "outside", root / "dir_out")
    os.symlink(root / "docs" / "guide" / "intro.md", root / "alias.md")
    os.symlink("guide", root / "docs" / "guide_link")  # relative link, inside
    return root


def test_read_file_reads_inside_root(tree):
    read = make_read_file(tree)
    assert read.name == "read_file"
    assert list(read.parameters["properties"]) == ["path"]
    assert read(path="docs/guide/intro.md") == "Hello, world.\n"
    assert read(path="docs/./guide/../guide/intro.md") == "Hello, world.\n"
    assert read(path="alias.md") == "Hello, world.\n"  # a link that stays inside is fine
    assert read(path="docs/guide_link/intro.md") == "Hello, world.\n"
    assert read(path="binary.bin") == "ok \ufffd\ufffd end"


@pytest.mark.parametrize(
    "path, message",
    [
        ("../secret.txt", "outside the project folder"),
        ("docs/../../secret.txt", "outside the project folder"),
        ("a/../../secret.txt", "outside the project folder"),
        ("link_out.txt", "outside the project folder"),
        ("dir_out/secret2.txt", "outside the project folder"),
        ("docs/guide/../../../outside/secret2.txt", "outside the project folder"),
        ("/etc/passwd", "absolute paths are not allowed"),
        ("~/.ssh/id_rsa", "absolute paths are not allowed"),
        ("C:\\Windows\\win.ini", "absolute paths are not allowed"),
        ("\\\\server\\share\\x", "absolute paths are not allowed"),
        ("docs", "is a directory"),
        (".", "is a directory"),
        ("nope.txt", "no such file: nope.txt"),
        ("docs/guide/intro.md\x00.png", "NUL byte"),
        ("", "path is empty"),
    ],
)
def test_read_file_refuses(tree, path, message):
    read = make_read_file(tree)
    with pytest.raises(ToolError, match=message) as info:
        read(path=path)
    assert str(tree.parent) not in str(info.value)  # never reveals where the root is
    assert "SECRET" not in str(info.value)


def test_read_file_refusals_reach_the_model_as_refused(tree):
    registry = builtin_registry(["read_file"], root=tree)
    result = registry.execute("read_file", {"path": "../secret.txt"})
    assert (result.ok, result.error_type) == (False, "refused")
    assert result.error == "path is outside the project folder: '../secret.txt'"


def test_read_file_size_limit_and_special_files(tree):
    (tree / "big.txt").write_text("x" * 101, encoding="utf-8")
    read = make_read_file(tree, max_bytes=100)
    with pytest.raises(
        ToolError, match="file is too large: 'big.txt' has 101 bytes, the limit is 100"
    ):
        read(path="big.txt")
    os.mkfifo(tree / "pipe")
    start = time.perf_counter()
    with pytest.raises(ToolError, match="not a regular file"):
        read(path="pipe")  # opening a FIFO must not block
    assert time.perf_counter() - start < 1.0


def test_read_file_root_must_exist(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        make_read_file(tmp_path / "missing")


# --- search_docs ---------------------------------------------------------------------


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    (folder / "training").mkdir(parents=True)
    (folder / "install.md").write_text(
        "# Installing\n\nRun pip install tuneloop to install the package.\n\nYou need Python.\n",
        encoding="utf-8",
    )
    (folder / "training" / "sft.md").write_text(
        "# Supervised fine-tuning\n\nSFT trains the model on conversations.\n\n"
        "Use a small learning rate for the model adapters.\n",
        encoding="utf-8",
    )
    (folder / "faq.txt").write_text(
        "Frequently asked questions.\n\nHow do I reset my password? Open the settings and "
        "choose reset password.\n\nWhere are the logs? In the run folder.\n",
        encoding="utf-8",
    )
    (folder / "notes.py").write_text("password = 'reset password reset'\n", encoding="utf-8")
    (folder / "huge.md").write_text("password " * 120_000, encoding="utf-8")  # over 1 MB
    return folder


def test_search_docs_ranks_the_relevant_document_first(docs):
    search = make_search_docs(docs)
    assert search.name == "search_docs"
    out = search(query="How do I reset my password?")
    assert out.startswith("[1] faq.txt (score ")
    assert out.splitlines()[1] == (
        "How do I reset my password? Open the settings and choose reset password."
    )  # the paragraph with the most query words, not the file's first one
    assert "notes.py" not in out and "huge.md" not in out  # wrong extension, too big

    assert search(query="install tuneloop", k=1).startswith("[1] install.md (score ")
    assert search(query="model adapters").startswith("[1] training/sft.md (score ")


def test_search_docs_respects_k(docs):
    search = make_search_docs(docs)
    # "the" is in all three indexed documents
    assert [line[:3] for line in search(query="the", k=2).splitlines() if line.startswith("[")] == [
        "[1]",
        "[2]",
    ]
    assert search(query="the", k=10).count("\n[") == 2  # only three documents match
    with pytest.raises(ToolError, match="k must be a whole number from 1 to 10, got 11"):
        search(query="the", k=11)
    assert search.validate_arguments({"query": "the", "k": 0}) == [
        "k: 0 is less than the minimum of 1"
    ]


def test_search_docs_without_hits(docs):
    assert make_search_docs(docs)(query="kubernetes") == "no documents match 'kubernetes'"
    assert make_search_docs(docs)(query="?!") == "no documents match '?!'"


def test_bm25_scores_worked_by_hand(tmp_path):
    """Two documents, a.md = "cat dog" (2 tokens) and b.md = "dog dog fish fish" (4);
    N = 2, avgdl = 3, k1 = 1.5, b = 0.75.

    "cat": df 1, idf = ln((2 - 1 + .5) / (1 + .5) + 1) = ln 2 = 0.6931.
      a: tf 1, norm = 1 + 1.5 * (.25 + .75 * 2/3) = 2.125; 0.6931 * 2.5 / 2.125 = 0.82.
    "dog": df 2, idf = ln(.5 / 2.5 + 1) = ln 1.2 = 0.1823.
      a: 0.1823 * 1 * 2.5 / 2.125 = 0.21.
      b: tf 2, norm = 2 + 1.5 * (.25 + .75 * 4/3) = 3.875; 0.1823 * 2 * 2.5 / 3.875 = 0.24.
    """
    (tmp_path / "a.md").write_text("cat dog", encoding="utf-8")
    (tmp_path / "b.md").write_text("dog dog fish fish", encoding="utf-8")
    search = make_search_docs(tmp_path)
    assert search(query="cat") == "[1] a.md (score 0.82)\ncat dog"
    assert (
        search(query="dog")
        == "[1] b.md (score 0.24)\ndog dog fish fish\n\n[2] a.md (score 0.21)\ncat dog"
    )


def test_search_docs_caps_snippets(tmp_path):
    (tmp_path / "long.md").write_text("word " * 500, encoding="utf-8")
    out = make_search_docs(tmp_path, max_chars_per_hit=20)(query="word")
    assert out.splitlines()[1] == "word word word word ..."


def test_search_docs_folder_must_exist(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        make_search_docs(tmp_path / "missing")


# --- builtin_registry ----------------------------------------------------------------


def test_builtin_registry_allows_exactly_the_names(tree, docs):
    registry = builtin_registry(["clock", "calculator"])
    assert registry.names == ["calculator", "clock"]
    assert not registry.is_allowed("read_file")
    full = builtin_registry(BUILTIN_TOOLS, root=tree, docs=docs)
    assert full.names == sorted(BUILTIN_TOOLS)
    assert [s["function"]["name"] for s in full.specs()] == list(BUILTIN_TOOLS)


def test_builtin_registry_errors():
    with pytest.raises(ValueError, match="read_file needs a root folder: pass --tools-root"):
        builtin_registry(["read_file"])
    with pytest.raises(ValueError, match="search_docs needs a docs folder: pass --docs"):
        builtin_registry(["search_docs"])
    with pytest.raises(ValueError, match="unknown tool.*'shell'.*known: calculator, clock"):
        builtin_registry(["calculator", "shell"])


def test_builtin_registry_takes_extra_tools():
    @tool
    def weather(city: str) -> str:
        """Weather in a city."""
        return f"sunny in {city}"

    @tool(name="read_file")
    def my_read_file(path: str) -> str:
        """A user's own read_file replaces the built-in one (no root needed)."""
        return "mine"

    registry = builtin_registry(["weather", "read_file"], extra=[weather, my_read_file])
    assert registry.names == ["read_file", "weather"]
    assert registry.execute("weather", {"city": "Oslo"}).output == "sunny in Oslo"
    assert registry.execute("read_file", {"path": "x"}).output == "mine"
    assert not builtin_registry(["calculator"], extra=[weather]).is_allowed("weather")
