"""Exact and near-duplicate texts: normalized hashes, and MinHash LSH (datasketch).

Texts are compared after :func:`normalize_text`. Exact duplicates are found by
hashing (one pass). Near-duplicates are pairs whose shingle sets have a Jaccard
similarity at or above a threshold (0.85 by default, the usual setting for
training-data dedup): each text becomes a MinHash signature, an LSH index proposes
candidate pairs, and a pair is kept when its MinHash estimate of the Jaccard
similarity reaches the threshold. :func:`naive_near_duplicate_pairs` computes the
exact answer in O(n²) and is the baseline that tests and ``benchmarks/`` measure
the LSH against.

Shingles are word 5-grams of the normalized text; a text with fewer words than
that uses character 5-grams instead, so short texts can still be near-duplicates.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import unicodedata
from collections.abc import Iterator

import numpy as np

_MASK32 = 0xFFFFFFFF
_APOSTROPHES = "'\u2019\u02bc"


@functools.cache
def _punctuation_table() -> dict[int, str | None]:
    """``str.translate`` table: apostrophes deleted, other punctuation to a space."""
    import sys

    table: dict[int, str | None] = {
        cp: " " for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)).startswith("P")
    }
    table.update({ord(c): None for c in _APOSTROPHES})
    return table


def normalize_text(text: str) -> str:
    """The form in which texts are compared, for dedup and decontamination alike.

    Exactly, in order: Unicode NFKC (full-width letters, ligatures and the like fold
    to their plain forms); ``str.casefold`` (lower case, also ``ß`` -> ``ss``);
    apostrophes (``'``, ``’``, ``ʼ``) deleted, so ``don't`` and ``dont`` agree; every
    other punctuation character (Unicode category ``P*``: ``.,;:!?"()[]{}-_/…``)
    replaced by a space, so ``end.Next`` still splits into two words; whitespace runs
    collapsed to one space and the ends stripped. Symbols (category ``S*``: ``$ + = <
    > ^ |``) and digits are kept, since they change meaning (``$5`` vs ``5``); note
    that Unicode counts ``% # & * @`` as punctuation.

    >>> normalize_text("  Hello,   WORLD!  It's  “fine”…")
    'hello world its fine'
    """
    text = unicodedata.normalize("NFKC", text).casefold().translate(_punctuation_table())
    return " ".join(text.split())


def stable_hash(text: str) -> int:
    """64-bit hash of ``text`` that is the same in every process.

    Python's ``hash()`` of a ``str`` is salted per process, so it cannot name a
    shingle or an n-gram that another run (or another worker) must recognise.
    """
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def token_hashes(tokens: list[str], memo: dict[str, int]) -> list[int]:
    """:func:`stable_hash` of each token, memoised in ``memo`` (vocabularies repeat)."""
    out = list(map(memo.get, tokens))  # the common case, all known, stays in C
    if None in out:
        for i, h in enumerate(out):
            if h is None:
                out[i] = memo[tokens[i]] = stable_hash(tokens[i])
    return out


def grams(values: list[int], k: int) -> Iterator[tuple[int, ...]]:
    """The ``k``-long windows of ``values`` as tuples (``len(values) - k + 1`` of them)."""
    return zip(*(values[j:] for j in range(k)), strict=False)  # stops at the shortest


def _shingles(normalized: str, k: int, memo: dict[str, int]) -> set[int]:
    """64-bit hashes of the text's word k-grams (character k-grams for short texts).

    A gram of word hashes is hashed as a tuple of ints, which (unlike ``str``) CPython
    does not salt, so signatures are reproducible across runs.
    """
    words = normalized.split()
    if len(words) >= k:
        return set(map(hash, grams(token_hashes(words, memo), k)))
    if not normalized:
        return set()
    if len(normalized) <= k:
        return {stable_hash(normalized)}
    return {stable_hash(normalized[i : i + k]) for i in range(len(normalized) - k + 1)}


def exact_duplicate_groups(items: list[tuple[str, str]]) -> list[list[str]]:
    """Groups of keys whose texts are equal after :func:`normalize_text`.

    ``items`` are ``(key, text)``. Only groups of two or more are returned; keys keep
    their input order and groups are ordered by their first key. One pass: texts are
    grouped by a 128-bit digest of the normalized text, so memory stays small.

    >>> exact_duplicate_groups([("a", "Hi there!"), ("b", "other"), ("c", "hi  THERE")])
    [['a', 'c']]
    """
    groups: dict[bytes, list[str]] = {}
    for key, text in items:
        digest = hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=16).digest()
        groups.setdefault(digest, []).append(key)
    return [keys for keys in groups.values() if len(keys) > 1]


def _lsh_params(threshold: float, num_perm: int, recall: float = 0.99) -> tuple[int, int]:
    """Bands ``b`` and rows ``r`` so that a pair *at* the threshold is proposed with
    probability >= ``recall`` (``1 - (1 - t**r)**b``), with the most rows that allow it.

    datasketch's own choice balances false positives against false negatives and
    proposes only about half of the pairs right at the threshold (b=8, r=16 for 0.85).
    Here every candidate is re-checked with its MinHash estimate, so an extra
    candidate costs a comparison while a missed one is lost: recall wins.
    For 0.85 and 128 permutations this gives b=16, r=8.
    """
    for r in range(num_perm // 2, 0, -1):
        b = num_perm // r
        if 1.0 - (1.0 - threshold**r) ** b >= recall:
            return b, r
    return num_perm, 1


def _distinct_texts(items: list[tuple[str, str]]) -> list[list[int]]:
    """Input positions of each distinct non-empty normalized text, in first-seen order.

    Only digests are kept, not normalized copies: normalizing again later is cheaper
    than holding a second copy of a large corpus.
    """
    index: dict[bytes, int] = {}
    groups: list[list[int]] = []
    for pos, (_, text) in enumerate(items):
        norm = normalize_text(text)
        if not norm:
            continue
        digest = hashlib.blake2b(norm.encode("utf-8"), digest_size=16).digest()
        g = index.setdefault(digest, len(groups))
        if g == len(groups):
            groups.append([])
        groups[g].append(pos)
    return groups


def _shingle_sets(
    items: list[tuple[str, str]], groups: list[list[int]], k: int
) -> Iterator[set[int]]:
    """Shingles of each distinct text (its first occurrence), one at a time."""
    memo: dict[str, int] = {}
    for positions in groups:
        yield _shingles(normalize_text(items[positions[0]][1]), k, memo)


# MinHash's hash function: shingles are hashes already and its scheme takes 32 bits.
# A partial of a C function, since datasketch calls it once per shingle.
_low32 = functools.partial(operator.and_, _MASK32)


def _pairs_of_groups(
    items: list[tuple[str, str]], groups: list[list[int]], found: list[tuple[int, int, float]]
) -> list[tuple[str, str, float]]:
    """Expand pairs of distinct texts to pairs of keys, each in input order, sorted."""
    out = []
    for a, b, score in found:
        for pa in groups[a]:
            for pb in groups[b]:
                out.append((min(pa, pb), max(pa, pb), score))
    out.sort()
    return [(items[pa][0], items[pb][0], score) for pa, pb, score in out]


def near_duplicate_pairs(
    items: list[tuple[str, str]],
    threshold: float = 0.85,
    num_perm: int = 128,
    shingle: int = 5,
    seed: int = 1,
) -> list[tuple[str, str, float]]:
    """Pairs of keys whose texts are near-duplicates, by MinHash LSH.

    Returns ``(key_a, key_b, estimated_jaccard)`` with ``key_a`` before ``key_b`` in
    the input, sorted by input position, each unordered pair once, for pairs whose
    MinHash estimate (a multiple of ``1/num_perm``) is at least ``threshold``. Pairs of
    exact duplicates (equal normalized text) are left out: :func:`exact_duplicate_groups`
    reports those. Texts that normalize to nothing are ignored.

    Each distinct text is hashed once (``MinHash.generator``, the streaming form of
    ``MinHash.bulk``) and queried against the texts before it, then inserted, so the
    work is about linear in the number of texts plus the number of candidates. It is approximate: a pair whose true Jaccard is close to
    the threshold can fall on either side (the estimate's standard error is about
    ``sqrt(J(1-J)/num_perm)``, 0.03 at 0.85 with 128 permutations).
    """
    from datasketch import LeanMinHash, MinHash, MinHashLSH

    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if shingle < 1:
        raise ValueError(f"shingle must be at least 1, got {shingle}")
    groups = _distinct_texts(items)
    if len(groups) < 2:
        return []
    lsh = MinHashLSH(
        threshold=threshold, num_perm=num_perm, params=_lsh_params(threshold, num_perm)
    )
    # Shingles are made one text at a time, so only signatures (num_perm x 4 bytes
    # each) accumulate.
    shingle_lists = (list(s) for s in _shingle_sets(items, groups, shingle))
    minhashes = MinHash.generator(shingle_lists, num_perm=num_perm, seed=seed, hashfunc=_low32)
    signatures = None
    found: list[tuple[int, int, float]] = []
    for i, mh in enumerate(minhashes):
        lean = LeanMinHash(mh)
        if signatures is None:
            signatures = np.empty((len(groups), num_perm), dtype=lean.hashvalues.dtype)
        signatures[i] = lean.hashvalues
        candidates = lsh.query(lean)
        if candidates:
            cand = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
            scores = (signatures[cand] == lean.hashvalues).sum(axis=1) / num_perm
            for j, score in zip(cand.tolist(), scores.tolist(), strict=True):
                if score >= threshold:
                    found.append((j, i, score))
        lsh.insert(i, lean, check_duplication=False)
    return _pairs_of_groups(items, groups, found)


def naive_near_duplicate_pairs(
    items: list[tuple[str, str]], threshold: float, shingle: int = 5
) -> list[tuple[str, str, float]]:
    """The exact answer :func:`near_duplicate_pairs` approximates, in O(n²).

    Same shingles and the same output shape, but the third value is the exact
    Jaccard similarity of the two shingle sets, computed for every pair of distinct
    texts with no pruning. For tests and benchmarks; too slow beyond a few thousand
    texts.
    """
    groups = _distinct_texts(items)
    sets = list(_shingle_sets(items, groups, shingle))
    found = []
    for i in range(len(sets)):
        si = sets[i]
        li = len(si)
        for j in range(i + 1, len(sets)):
            inter = len(si & sets[j])
            score = inter / (li + len(sets[j]) - inter)
            if score >= threshold:
                found.append((i, j, score))
    return _pairs_of_groups(items, groups, found)
