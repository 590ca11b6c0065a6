"""The statistics of the scorecard: confidence intervals, paired tests, pass@k, win rates.

Pure functions over numbers (numpy arrays or lists); each returns a small pydantic model
or a float. Nothing here knows about tasks, models or files.

* :func:`bootstrap_ci`, :func:`win_rate`: a percentile-bootstrap interval of one metric.
* :func:`paired_bootstrap`, :func:`mcnemar`, :func:`non_inferior`: candidate vs baseline
  on the same items (the release gate's questions).
* :func:`pass_at_k`, :func:`pass_hat_k`, :func:`mean_pass_at_k`: sampling metrics.
* :func:`cohen_kappa`: agreement of two raters (e.g. a judge vs humans).
* :func:`length_controlled_win_rate`: a win rate with the judge's length bias regressed out.

Only numpy: scipy is present in most environments but not a declared dependency, and the
two distributions needed (chi-square with one degree of freedom, a fair binomial) are a
few lines each with :mod:`math`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Sequence

import numpy as np
from pydantic import BaseModel

_MAX_CELLS = 2_000_000
"""Resampled values held at once; bootstrap draws are made in chunks below this."""


class CI(BaseModel):
    """A point estimate with a percentile-bootstrap confidence interval."""

    estimate: float
    """The statistic on the values as given (NaN when ``empty``)."""
    low: float
    """Lower bound of the interval (NaN when ``empty``)."""
    high: float
    """Upper bound of the interval (NaN when ``empty``)."""
    n: int
    """How many values the statistic was computed over."""
    confidence: float = 0.95
    """Two-sided coverage the interval aims at."""
    method: str = "percentile"
    """How the interval was built."""
    empty: bool = False
    """True when there were no values: nothing was estimated and every number is NaN."""


class PairedResult(BaseModel):
    """Mean difference candidate − baseline over paired items, with a bootstrap CI."""

    difference: float
    """mean(candidate − baseline); positive means the candidate scored higher."""
    low: float
    """Lower bound of the percentile-bootstrap interval of the difference."""
    high: float
    """Upper bound of the interval."""
    p_value: float
    """Two-sided: 2 × the share of resampled means on the other side of 0 (ties with 0
    included), capped at 1; 1 when the difference is exactly 0. Its resolution is
    2 / n_resamples, so 0 means "below that"."""
    n: int
    """Number of pairs."""
    confidence: float
    """Two-sided coverage of the interval."""
    n_resamples: int
    """Bootstrap resamples drawn."""


class McNemarResult(BaseModel):
    """McNemar's test of paired pass/fail outcomes."""

    statistic: float
    """min(b, c) for the exact test; (|b − c| − 1)² / (b + c) for the chi-square one."""
    p_value: float
    """Two-sided p-value."""
    b: int
    """Items the candidate got right and the baseline wrong."""
    c: int
    """Items the baseline got right and the candidate wrong."""
    method: str
    """``"exact"`` (binomial, used when b + c < 25) or ``"chi2"`` (continuity-corrected)."""


class NonInferiority(BaseModel):
    """Whether the candidate is no worse than the baseline by more than a margin."""

    difference: float
    """Mean improvement of candidate over baseline (sign flipped for lower-is-better)."""
    low: float
    """Lower bound of the paired-bootstrap interval of the improvement."""
    high: float
    """Upper bound of that interval."""
    margin: float
    """The largest loss tolerated, in the metric's units (≥ 0)."""
    passed: bool
    """True when ``low > -margin``."""
    higher_is_better: bool
    """Orientation of the metric the improvement was computed for."""
    confidence: float
    """Two-sided coverage of the interval; its lower bound is a one-sided test at
    (1 + confidence) / 2."""
    n: int
    """Number of pairs."""


class LCWinRate(BaseModel):
    """A length-controlled win rate (AlpacaEval 2 style), all rates in percent."""

    raw_win_rate: float
    """100 × mean preference (ties count half)."""
    lc_win_rate: float
    """100 × σ(θ): the fitted win probability when both answers have the same length."""
    low: float
    """Lower bound of the bootstrap interval of ``lc_win_rate``."""
    high: float
    """Upper bound of that interval."""
    theta: float
    """Fitted intercept: the model's advantage with the length term removed (log-odds)."""
    phi: float
    """Fitted length coefficient; positive means the judge favours longer answers."""
    n: int
    """Number of judged items."""
    converged: bool
    """Whether Newton's method converged on the full data (it may not when the model
    wins or loses every item: θ then runs off towards ±∞ and the rate towards 100 or 0)."""
    confidence: float
    """Two-sided coverage of the interval."""
    n_resamples: int
    """Bootstrap resamples (each refitted) behind the interval."""


def _as_1d(values: Sequence[float] | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _check_settings(n_resamples: int, confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence}")
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")


def _check_same_length(a: Sequence | np.ndarray, b: Sequence | np.ndarray, names: str) -> None:
    first, second = names.split(",")
    if len(a) != len(b):
        raise ValueError(
            f"{first} and {second} must be paired item by item, "
            f"but {first} has {len(a)} values and {second} has {len(b)}"
        )


def _apply_rows(stat: Callable, sample: np.ndarray) -> np.ndarray:
    """``stat`` of each row; one vectorised call when ``stat`` takes ``axis``."""
    try:
        result = np.asarray(stat(sample, axis=1), dtype=float)
        if result.shape == (sample.shape[0],):
            return result
    except TypeError:
        pass
    return np.array([stat(row) for row in sample], dtype=float)


def _resampled(values: np.ndarray, stat: Callable, n_resamples: int, seed: int) -> np.ndarray:
    """``stat`` of ``n_resamples`` with-replacement resamples of ``values`` (n ≥ 1)."""
    rng = np.random.default_rng(seed)
    n = len(values)
    rows_per_chunk = max(1, _MAX_CELLS // n)
    out = []
    for start in range(0, n_resamples, rows_per_chunk):
        rows = min(rows_per_chunk, n_resamples - start)
        out.append(_apply_rows(stat, values[rng.integers(0, n, size=(rows, n))]))
    return np.concatenate(out)


def _percentiles(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1 - confidence
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    stat: Callable = np.mean,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> CI:
    """``stat(values)`` with a percentile-bootstrap interval.

    ``stat`` is called as ``stat(matrix, axis=1)`` on a block of resamples when it accepts
    ``axis`` (numpy reductions do), otherwise once per resample. No values gives a CI
    with ``empty=True`` and NaN numbers rather than an error, so a scorecard can show an
    empty slice; a single value gives a zero-width interval at that value (every resample
    is that value) — honest about what one item can say, which is nothing about spread.
    """
    _check_settings(n_resamples, confidence)
    arr = _as_1d(values, "values")
    if len(arr) == 0:
        nan = float("nan")
        return CI(estimate=nan, low=nan, high=nan, n=0, confidence=confidence, empty=True)
    low, high = _percentiles(_resampled(arr, stat, n_resamples, seed), confidence)
    estimate = float(stat(arr))
    return CI(estimate=estimate, low=low, high=high, n=len(arr), confidence=confidence)


def win_rate(
    preferences: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> CI:
    """Win rate in percent with a bootstrap CI; outcomes 1 win, 0 loss, 0.5 tie.

    ``[1, 1, 0, 0.5] -> estimate 100 × 2.5 / 4 = 62.5``.
    """
    arr = _check_preferences(preferences)
    return bootstrap_ci(100 * arr, n_resamples=n_resamples, confidence=confidence, seed=seed)


def paired_bootstrap(
    candidate: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedResult:
    """Mean of candidate − baseline over the same items, resampling items (not runs).

    Resampling the per-item differences keeps the pairing, so item difficulty cancels.
    Example: differences [1, 1, 1, 1] resample to a mean of 1 every time: difference 1,
    interval [1, 1], p-value 0. An empty pair of lists is an error: a comparison on no
    items must not be able to pass a gate.
    """
    _check_settings(n_resamples, confidence)
    _check_same_length(candidate, baseline, "candidate,baseline")
    diff = _as_1d(candidate, "candidate") - _as_1d(baseline, "baseline")
    if len(diff) == 0:
        raise ValueError("candidate and baseline are empty: nothing to compare")
    means = _resampled(diff, np.mean, n_resamples, seed)
    difference = float(diff.mean())
    if difference > 0:
        p_value = min(1.0, 2 * float(np.mean(means <= 0)))
    elif difference < 0:
        p_value = min(1.0, 2 * float(np.mean(means >= 0)))
    else:
        p_value = 1.0
    low, high = _percentiles(means, confidence)
    return PairedResult(
        difference=difference,
        low=low,
        high=high,
        p_value=p_value,
        n=len(diff),
        confidence=confidence,
        n_resamples=n_resamples,
    )


def _as_bools(values: Sequence[bool] | np.ndarray, name: str) -> list[bool]:
    out = []
    for i, v in enumerate(values):
        if v not in (True, False):  # also admits 0/1 and numpy bools
            raise ValueError(f"{name}[{i}] must be a boolean (pass/fail), got {v!r}")
        out.append(bool(v))
    return out


def mcnemar(
    candidate: Sequence[bool] | np.ndarray, baseline: Sequence[bool] | np.ndarray
) -> McNemarResult:
    """McNemar's test on paired pass/fail outcomes; only the discordant items count.

    b = candidate right & baseline wrong, c = the reverse. When b + c < 25 the exact test:
    p = min(1, 2 · P(X ≤ min(b, c))), X ~ Binomial(b + c, 1/2). Otherwise the
    continuity-corrected chi-square (|b − c| − 1)² / (b + c) with one degree of freedom,
    whose survival function is erfc(√(x/2)).
    Example: b = 10, c = 2: P(X ≤ 2) = (1 + 12 + 66) / 2¹² = 79/4096, p = 158/4096 ≈ 0.0386.
    """
    _check_same_length(candidate, baseline, "candidate,baseline")
    cand, base = _as_bools(candidate, "candidate"), _as_bools(baseline, "baseline")
    b = sum(x and not y for x, y in zip(cand, base, strict=True))
    c = sum(y and not x for x, y in zip(cand, base, strict=True))
    n = b + c
    if n < 25:
        k = min(b, c)
        tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
        return McNemarResult(
            statistic=float(k), p_value=min(1.0, 2 * tail), b=b, c=c, method="exact"
        )
    statistic = (abs(b - c) - 1) ** 2 / n
    p_value = math.erfc(math.sqrt(statistic / 2))
    return McNemarResult(statistic=statistic, p_value=p_value, b=b, c=c, method="chi2")


def non_inferior(
    candidate: Sequence[float] | np.ndarray,
    baseline: Sequence[float] | np.ndarray,
    margin: float,
    *,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    seed: int = 0,
    n_resamples: int = 2000,
) -> NonInferiority:
    """Is the candidate at most ``margin`` worse than the baseline, with confidence?

    The improvement is candidate − baseline (baseline − candidate when lower is better,
    e.g. latency), with a paired-bootstrap interval; the check passes when the interval's
    lower bound is above −margin. Example: improvements all −0.01 with margin 0.02 give the
    interval [−0.01, −0.01] and pass; with margin 0.005 they fail.
    """
    if not math.isfinite(margin) or margin < 0:
        raise ValueError(f"margin must be a finite number ≥ 0, got {margin}")
    first, second = (candidate, baseline) if higher_is_better else (baseline, candidate)
    result = paired_bootstrap(
        first, second, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    return NonInferiority(
        difference=result.difference,
        low=result.low,
        high=result.high,
        margin=margin,
        passed=result.low > -margin,
        higher_is_better=higher_is_better,
        confidence=confidence,
        n=result.n,
    )


def _check_nck(n: int, c: int, k: int) -> None:
    for name, v in (("n", n), ("c", c), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {v!r}")
    if not 0 <= c <= n:
        raise ValueError(f"c (correct samples) must be within 0..n, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"k must be within 1..n (n samples drawn per problem), got k={k}, n={n}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 − C(n−c, k) / C(n, k).

    Computed as 1 − ∏_{i=n−c+1}^{n} (1 − k/i) (Chen et al. 2021, "Evaluating Large Language
    Models Trained on Code"), which never forms the huge binomials. n=5, c=2, k=2:
    1 − C(3, 2)/C(5, 2) = 1 − 3/10 = 0.7.
    """
    _check_nck(n, c, k)
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k: the chance that k draws without replacement are all correct, C(c, k) / C(n, k).

    Computed as ∏_{i=0}^{k−1} (c − i)/(n − i). n=5, c=2, k=2: C(2, 2)/C(5, 2) = 1/10.
    It measures consistency (all k tries succeed) where pass@k measures coverage.
    """
    _check_nck(n, c, k)
    if c < k:
        return 0.0
    i = np.arange(k)
    return float(np.prod((c - i) / (n - i)))


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems given as ``(n samples, c correct)``; n may differ.

    ``[(5, 2), (5, 5)]`` with k=1 -> (0.4 + 1) / 2 = 0.7.
    """
    if not counts:
        raise ValueError("no problems given: mean pass@k of nothing is undefined")
    return float(np.mean([pass_at_k(n, c, k) for n, c in counts]))


def cohen_kappa(
    labels_a: Sequence[Hashable], labels_b: Sequence[Hashable]
) -> tuple[float | None, float | None]:
    """``(raw agreement, kappa)`` of two raters' labels on the same items, any label set.

    kappa = (p_o − p_e) / (1 − p_e), p_e = Σ_l p_a(l) · p_b(l); kappa is None when chance
    agreement is 1 (both raters always used one and the same label), and both are None
    for no items. Written here rather than reusing ``tuneloop.annotate.agreement``: that one
    only counts the a/b/tie verdicts, and eval may not import annotate (STYLE.md, rule 8).
    Example: a = [x, x, y, y], b = [x, y, y, y]: p_o = 3/4, p_e = (2·1 + 2·3)/16 = 1/2,
    kappa = (3/4 − 1/2) / (1/2) = 1/2.
    """
    _check_same_length(labels_a, labels_b, "labels_a,labels_b")
    n = len(labels_a)
    if n == 0:
        return None, None
    agree = sum(x == y for x, y in zip(labels_a, labels_b, strict=True))
    first, second = Counter(labels_a), Counter(labels_b)
    chance = sum(first[label] * second[label] for label in first)  # p_e · n²
    if chance == n * n:
        return agree / n, None
    return agree / n, (agree * n - chance) / (n * n - chance)


def _check_preferences(preferences: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = _as_1d(preferences, "preferences")
    bad = np.flatnonzero((arr < 0) | (arr > 1))
    if len(bad):
        i = int(bad[0])
        raise ValueError(
            f"preferences must be in [0, 1] (1 model wins, 0 baseline wins, 0.5 tie), "
            f"got {arr[i]} at index {i}"
        )
    return arr


def _sigmoid(z: np.ndarray | float) -> np.ndarray:
    return np.exp(-np.logaddexp(0.0, -np.asarray(z, dtype=float)))


def _fit_length_glm(
    y: np.ndarray, x: np.ndarray, l2: float, start: np.ndarray, max_iter: int = 100
) -> tuple[np.ndarray, bool]:
    """Newton's method for p(win) = σ(θ + φx), L2 penalty ``l2`` on φ only.

    Soft targets y ∈ [0, 1] give the same likelihood as the expanded binary data (one win
    weighted y, one loss weighted 1 − y), so ties need no duplicated rows. Steps are
    halved until the penalised log-likelihood does not fall, which keeps the iteration
    stable when wins and losses are (nearly) separated by length.
    """
    design = np.column_stack([np.ones_like(x), x])
    penalty = np.array([0.0, l2])

    def objective(beta: np.ndarray) -> float:
        z = design @ beta
        return float(np.sum(y * z - np.logaddexp(0.0, z)) - 0.5 * l2 * beta[1] ** 2)

    beta = start.copy()
    value = objective(beta)
    for _ in range(max_iter):
        mu = _sigmoid(design @ beta)
        grad = design.T @ (y - mu) - penalty * beta
        hess = (design.T * (mu * (1 - mu))) @ design + np.diag(penalty) + 1e-12 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while objective(beta + t * step) < value - 1e-12 and t > 1e-6:
            t /= 2
        beta = beta + t * step
        value = objective(beta)
        if np.max(np.abs(t * step)) < 1e-8:
            return beta, True
    return beta, False


def length_controlled_win_rate(
    preferences: Sequence[float] | np.ndarray,
    len_model: Sequence[float] | np.ndarray,
    len_baseline: Sequence[float] | np.ndarray,
    *,
    n_resamples: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
    l2: float = 1e-3,
) -> LCWinRate:
    """Win rate with the judge's preference for length regressed out (AlpacaEval 2 style).

    Fits p(win) = σ(θ + φ · tanh(Δ / σ_Δ)), Δ = len_model − len_baseline, σ_Δ the standard
    deviation of Δ over the items, and reports 100 · σ(θ), the predicted win rate for
    answers of equal length. When every Δ is the same (σ_Δ = 0) length cannot be told apart
    from quality, the length feature is set to 0 and the LC rate is the raw one.
    The tanh bounds how much length can explain; the small L2 penalty on φ keeps φ finite
    when wins are perfectly separated by length. The interval resamples items and refits
    (σ_Δ kept from the full data). AlpacaEval's own GLM also has a per-instruction
    difficulty term; with one baseline and one model that term is left out.
    """
    _check_settings(n_resamples, confidence)
    _check_same_length(preferences, len_model, "preferences,len_model")
    _check_same_length(preferences, len_baseline, "preferences,len_baseline")
    y = _check_preferences(preferences)
    delta = _as_1d(len_model, "len_model") - _as_1d(len_baseline, "len_baseline")
    if len(y) == 0:
        raise ValueError("no preferences given: a win rate of nothing is undefined")
    scale = float(np.std(delta))
    x = np.tanh(delta / scale) if scale > 0 else np.zeros_like(delta)
    beta, converged = _fit_length_glm(y, x, l2, np.zeros(2))

    rng = np.random.default_rng(seed)
    n = len(y)
    draws = np.empty(n_resamples)
    for r in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        beta_r, _ = _fit_length_glm(y[idx], x[idx], l2, beta)
        draws[r] = 100 * float(_sigmoid(beta_r[0]))
    low, high = _percentiles(draws, confidence)
    return LCWinRate(
        raw_win_rate=100 * float(y.mean()),
        lc_win_rate=100 * float(_sigmoid(beta[0])),
        low=low,
        high=high,
        theta=float(beta[0]),
        phi=float(beta[1]),
        n=n,
        converged=converged,
        confidence=confidence,
        n_resamples=n_resamples,
    )
