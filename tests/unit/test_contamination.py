"""13-gram overlap with eval sets (tuneloop.data.contamination)."""

from __future__ import annotations

import pytest

from tuneloop.data.contamination import NgramIndex

# 20 distinct words: w01 .. w20
EVAL = " ".join(f"w{i:02d}" for i in range(1, 21))


def test_one_shared_13gram_counts_one():
    """The training text 'a b w05 .. w17 c d' (17 words) has 17 - 13 + 1 = 5 13-grams;
    only the middle one, w05..w17, is among the eval text's 8 (w01..w13 .. w08..w20)."""
    index = NgramIndex()
    index.add("quiz", EVAL)
    train = "a b " + " ".join(f"w{i:02d}" for i in range(5, 18)) + " c d"
    assert index.overlaps(train) == {"quiz": 1}


def test_twelve_shared_words_do_not_count():
    index = NgramIndex()
    index.add("quiz", EVAL)
    train = "a b " + " ".join(f"w{i:02d}" for i in range(5, 17)) + " c d"  # w05..w16
    assert index.overlaps(train) == {"quiz": 0}


def test_whole_copy_counts_every_gram_once():
    """The eval text itself has 20 - 13 + 1 = 8 13-grams; a text repeating it twice
    still holds those 8 distinct grams (plus 12 across the seam that are not in the set)."""
    index = NgramIndex()
    index.add("quiz", EVAL)
    assert index.overlaps(EVAL) == {"quiz": 8}
    assert index.overlaps(EVAL + " " + EVAL) == {"quiz": 8}


def test_normalization_ignores_case_punctuation_and_spacing():
    index = NgramIndex()
    index.add("quiz", EVAL)
    shouted = " ".join(f"W{i:02d}," for i in range(1, 14))  # "W01, W02, ... W13,"
    assert index.overlaps("Q:  " + shouted + "!") == {"quiz": 1}


def test_short_texts_are_one_gram():
    """Texts under 13 words are a single gram: an exact (normalized) copy counts, the
    same words inside a longer text do not."""
    index = NgramIndex()
    index.add("arith", "What is 2+2?")
    assert index.overlaps("what is 2+2") == {"arith": 1}
    assert index.overlaps("WHAT is 2+2 ?!") == {"arith": 1}
    assert index.overlaps("what is 2+3") == {"arith": 0}
    assert index.overlaps("so, what is 2+2 then") == {"arith": 0}
    assert index.overlaps("") == {"arith": 0}


def test_several_sets_each_reported_with_zero_default():
    index = NgramIndex(n=3)
    index.add("a", "the cat sat on the mat")
    index.add("b", "a dog ran in the park")
    index.add("c", "")
    assert index.set_names == ["a", "b", "c"]
    # 3-grams of the query: "the cat sat", "cat sat in", "sat in the", "in the park"
    assert index.overlaps("The cat sat in the park.") == {"a": 1, "b": 1, "c": 0}
    assert NgramIndex().overlaps("anything") == {}


def test_index_stores_distinct_hashes_only():
    index = NgramIndex(n=3)
    index.add("a", "one two three four")  # 2 grams
    index.add("a", "one two three four")  # same grams again
    index.add("a", "two three four five")  # 1 new: "three four five"
    assert len(index) == 3


def test_n_must_be_positive():
    with pytest.raises(ValueError):
        NgramIndex(0)
    index = NgramIndex(1)
    index.add("s", "alpha beta")
    assert index.overlaps("beta gamma alpha") == {"s": 2}
