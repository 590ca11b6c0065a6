"""Exact and near-duplicate detection (tuneloop.data.dedup)."""

from __future__ import annotations

import random

import pytest

from tuneloop.data.dedup import (
    _lsh_params,
    exact_duplicate_groups,
    naive_near_duplicate_pairs,
    near_duplicate_pairs,
    normalize_text,
)


def _doc(rng: random.Random, vocab: list[str], n_words: int) -> str:
    return " ".join(rng.choice(vocab) for _ in range(n_words))


def _edit(rng: random.Random, text: str, n_edits: int) -> str:
    """Replace ``n_edits`` random words (a light edit)."""
    words = text.split()
    for _ in range(n_edits):
        words[rng.randrange(len(words))] = f"edit{rng.randrange(10**6)}"
    return " ".join(words)


# -------------------------------------------------------------------- normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Hello,   WORLD!  ", "hello world"),
        ("Don't stop", "dont stop"),  # apostrophes dropped, not split
        ("Don’t stop", "dont stop"),  # typographic apostrophe too
        ("end.Next line\n\tthen", "end next line then"),  # punctuation splits words
        ("“quoted” (text) — dash…", "quoted text dash"),
        ("Straße", "strasse"),  # casefold, not lower
        ("ＦＵＬＬ width", "full width"),  # NFKC
        ("costs $5 + 10%", "costs $5 + 10"),  # symbols ($ +) kept; % is punctuation
        ("snake_case", "snake case"),
        ("", ""),
        ("?!...", ""),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


# ------------------------------------------------------------------------ exact


def test_exact_groups_keep_input_order_and_drop_singletons():
    items = [
        ("a", "Hello there!"),
        ("b", "something else"),
        ("c", "hello   THERE"),
        ("d", "something else."),
        ("e", "unique"),
        ("f", "Hello, there"),
    ]
    assert exact_duplicate_groups(items) == [["a", "c", "f"], ["b", "d"]]


def test_exact_groups_empty_and_no_duplicates():
    assert exact_duplicate_groups([]) == []
    assert exact_duplicate_groups([("a", "x"), ("b", "y")]) == []


# ------------------------------------------------------------------------- near

_RNG_VOCAB = [f"word{i}" for i in range(3000)]


def test_near_duplicate_finds_light_edit_not_unrelated():
    rng = random.Random(0)
    base = _doc(rng, _RNG_VOCAB, 150)
    items = [
        ("orig", base),
        ("other1", _doc(rng, _RNG_VOCAB, 150)),
        ("edited", _edit(rng, base, 1)),
        ("other2", _doc(rng, _RNG_VOCAB, 150)),
    ]
    pairs = near_duplicate_pairs(items)
    assert [(a, b) for a, b, _ in pairs] == [("orig", "edited")]
    # One replaced word changes at most 5 of the 146 shingles: exact Jaccard >= 141/151.
    ((_, _, estimate),) = pairs
    ((_, _, exact),) = naive_near_duplicate_pairs(items, 0.85)
    assert exact >= 141 / 151
    assert abs(estimate - exact) < 0.1


def test_near_duplicates_leave_out_exact_duplicates_but_pair_their_copies():
    rng = random.Random(1)
    base = _doc(rng, _RNG_VOCAB, 120)
    items = [("a", base), ("b", base.upper() + "!"), ("c", _edit(rng, base, 1))]
    pairs = near_duplicate_pairs(items)
    # a and b are exact duplicates (same normalized text): not a near pair; c is near both.
    assert [(a, b) for a, b, _ in pairs] == [("a", "c"), ("b", "c")]
    assert [(a, b) for a, b, _ in naive_near_duplicate_pairs(items, 0.85)] == [
        ("a", "c"),
        ("b", "c"),
    ]


def test_short_texts_use_character_shingles():
    items = [
        ("a", "reset my password"),
        ("b", "reset my passwords"),
        ("c", "book a flight"),
        ("d", ""),
        ("e", "!!!"),  # normalizes to nothing: ignored
    ]
    # Character 5-grams of "reset my password" (13) vs "...passwords" (14): 13 shared,
    # Jaccard 13/14 = 0.93.
    exact = naive_near_duplicate_pairs(items, 0.85)
    assert exact == [("a", "b", pytest.approx(13 / 14))]
    assert [(a, b) for a, b, _ in near_duplicate_pairs(items)] == [("a", "b")]


def test_near_duplicate_pairs_are_deterministic_and_validate_threshold():
    rng = random.Random(2)
    items = [(str(i), _doc(rng, _RNG_VOCAB, 40)) for i in range(50)]
    items += [(f"e{i}", _edit(rng, items[i][1], 1)) for i in range(5)]
    assert near_duplicate_pairs(items) == near_duplicate_pairs(items)
    assert near_duplicate_pairs([]) == [] and near_duplicate_pairs(items[:1]) == []
    with pytest.raises(ValueError, match="threshold"):
        near_duplicate_pairs(items, threshold=0.0)


def test_lsh_params_favour_recall_at_the_threshold():
    """0.85 with 128 permutations: r=8, b=16 proposes a pair at J=0.85 with probability
    1 - (1 - 0.85**8)**16 = 1 - 0.7275**16 = 0.994 (>= 0.99); r=9 (b=14) gives only
    1 - (1 - 0.85**9)**14 = 0.975."""
    assert _lsh_params(0.85, 128) == (16, 8)
    b, r = _lsh_params(0.5, 128)
    assert 1 - (1 - 0.5**r) ** b >= 0.99 and b * r <= 128


def test_lsh_recall_against_naive_baseline():
    """2k synthetic documents (50-70 random words) with 150 planted near-duplicates
    (1-2 words replaced: exact Jaccard about 0.65-0.9): MinHash LSH finds at least 90%
    of the pairs the exact O(n^2) baseline finds at threshold 0.7. What it misses sits
    just above the threshold, where the MinHash estimate (standard error ~0.04) can
    fall below it."""
    rng = random.Random(42)
    vocab = [f"w{i}" for i in range(8000)]
    items = [(f"d{i}", _doc(rng, vocab, rng.randint(50, 70))) for i in range(1850)]
    for i in rng.sample(range(len(items)), 150):
        items.append((f"near{i}", _edit(rng, items[i][1], rng.randint(1, 2))))
    threshold = 0.7
    exact = {(a, b): s for a, b, s in naive_near_duplicate_pairs(items, threshold - 0.15)}
    naive = {pair for pair, s in exact.items() if s >= threshold}
    lsh = {(a, b) for a, b, _ in near_duplicate_pairs(items, threshold=threshold)}
    assert len(naive) >= 100
    recall = len(naive & lsh) / len(naive)
    assert recall >= 0.9, f"recall {recall:.3f}"
    # What LSH reports beyond the baseline is borderline (exact Jaccard within 0.15), not noise.
    assert lsh - naive <= set(exact)
