"""N-gram overlap between training texts and eval sets (decontamination).

This follows the 13-gram overlap convention of the GPT-3 paper (Brown et al. 2020,
appendix C) and lm-evaluation-harness's decontamination: texts are normalized
(:func:`tuneloop.data.dedup.normalize_text`: case-folded, punctuation dropped,
whitespace collapsed), split into words, and a training text is contaminated by an
eval set when it shares at least one word 13-gram with it.

Memory: each eval set keeps a Python ``set`` of 64-bit n-gram hashes, not the
n-grams themselves (about 60-70 bytes per distinct n-gram, whatever n is). With 2^64
possible hashes, a false match needs a hash collision: negligible at eval-set sizes.
"""

from __future__ import annotations

from tuneloop.data.dedup import grams, normalize_text, token_hashes


class NgramIndex:
    """Word n-grams of named eval sets, queried with training texts.

    A text with fewer than ``n`` words is one gram by itself (its whole normalized
    text), so a short eval item copied verbatim into the training data is still
    found; a short text *inside* a longer one is not (it matches no n-gram).

    >>> index = NgramIndex(n=3)
    >>> index.add("quiz", "The capital of France is Paris.")
    >>> index.overlaps("Q: what is the capital of france?")
    {'quiz': 2}

    (The query's 3-grams ``the capital of`` and ``capital of france`` are in the set.)
    """

    def __init__(self, n: int = 13):
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        self.n = n
        self._sets: dict[str, set[int]] = {}
        self._memo: dict[str, int] = {}

    def _grams(self, text: str) -> set[int]:
        """64-bit hashes of the distinct n-grams of ``text`` (see the class docstring)."""
        words = normalize_text(text).split()
        if not words:
            return set()
        hs = token_hashes(words, self._memo)
        if len(hs) < self.n:
            return {hash(tuple(hs))}
        # A tuple of ints hashes the same in every process (only str/bytes are salted).
        return set(map(hash, grams(hs, self.n)))

    def add(self, set_name: str, text: str) -> None:
        """Index the n-grams of one eval text under ``set_name``."""
        self._sets.setdefault(set_name, set()).update(self._grams(text))

    def overlaps(self, text: str) -> dict[str, int]:
        """For every indexed set, how many of ``text``'s distinct n-grams it holds.

        Every set added so far has a key, with 0 where nothing overlaps; by the
        13-gram convention, any value above 0 means ``text`` is contaminated.
        """
        grams = self._grams(text)
        return {name: len(grams & hashes) for name, hashes in self._sets.items()}

    @property
    def set_names(self) -> list[str]:
        """Names of the sets indexed so far, in the order they were first added."""
        return list(self._sets)

    def __len__(self) -> int:
        """Number of distinct n-grams held, over all sets."""
        return sum(len(h) for h in self._sets.values())
