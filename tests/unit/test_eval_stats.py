"""The scorecard statistics against values worked out by hand (working in each docstring)
and, for the bootstrap, against their promised behaviour on synthetic data."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from tuneloop.annotate.agreement import cohen_kappa as annotate_kappa
from tuneloop.eval.stats import (
    bootstrap_ci,
    cohen_kappa,
    length_controlled_win_rate,
    mcnemar,
    mean_pass_at_k,
    non_inferior,
    paired_bootstrap,
    pass_at_k,
    pass_hat_k,
    win_rate,
)

# ------------------------------------------------------------------------- pass@k


def test_pass_at_k_small_hand_values():
    """n=5, c=2. k=1: 1 - C(3,1)/C(5,1) = 1 - 3/5 = 0.4.
    k=2: 1 - C(3,2)/C(5,2) = 1 - 3/10 = 0.7. k=4: n-c = 3 < 4, so every 4-subset holds a
    correct sample: 1. c=n: 1. c=0: 1 - C(5,k)/C(5,k) = 0."""
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(0.7)
    assert pass_at_k(5, 2, 4) == 1.0
    assert pass_at_k(5, 5, 3) == 1.0
    assert pass_at_k(5, 0, 3) == 0.0


def test_pass_hat_k_small_hand_values():
    """n=5, c=2. k=1: C(2,1)/C(5,1) = 2/5. k=2: C(2,2)/C(5,2) = 1/10. k=3: C(2,3) = 0.
    c=n: 1. c=0: 0."""
    assert pass_hat_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_hat_k(5, 2, 2) == pytest.approx(0.1)
    assert pass_hat_k(5, 2, 3) == 0.0
    assert pass_hat_k(5, 5, 5) == 1.0
    assert pass_hat_k(5, 0, 1) == 0.0


def test_pass_at_k_large_n_matches_exact_fractions():
    """n=200, c=100, k=50: C(200, 50) ~ 4.5e47 would overflow a naive float formula's
    intermediates in other settings; the product form must agree with the exact rational."""
    n, c, k = 200, 100, 50
    exact_at = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
    exact_hat = Fraction(math.comb(c, k), math.comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact_at), rel=1e-12)
    assert pass_hat_k(n, c, k) == pytest.approx(float(exact_hat), rel=1e-9)
    for n, c, k in [(10, 3, 4), (37, 11, 7), (1000, 1, 10), (1000, 999, 500)]:
        exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
        assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-10, abs=1e-15)


def test_mean_pass_at_k():
    """[(5, 2), (5, 5)], k=1: (0.4 + 1) / 2 = 0.7."""
    assert mean_pass_at_k([(5, 2), (5, 5)], 1) == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((5, 6, 1), "c=6, n=5"),
        ((5, -1, 1), "within 0..n"),
        ((5, 2, 0), "k=0, n=5"),
        ((5, 2, 6), "k=6, n=5"),
        ((5.0, 2, 1), "n must be an integer"),
        ((5, True, 1), "c must be an integer"),
    ],
)
def test_pass_at_k_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        pass_at_k(*args)
    with pytest.raises(ValueError, match=message):
        pass_hat_k(*args)


def test_mean_pass_at_k_rejects_empty():
    with pytest.raises(ValueError, match="no problems"):
        mean_pass_at_k([], 1)


# -------------------------------------------------------------------- bootstrap CI


def test_bootstrap_ci_covers_the_true_mean_about_95_percent_of_the_time():
    """200 data sets of 100 Bernoulli(0.7) draws, 500 resamples each: the percentile
    interval should cover 0.7 in about 95% of them (a little less for n=100 binary data);
    [88%, 99%] leaves room for sampling error of the coverage itself (sd ~ 1.5%)."""
    rng = np.random.default_rng(12345)
    data = rng.random((200, 100)) < 0.7
    covered = 0
    for i, row in enumerate(data):
        ci = bootstrap_ci(row, n_resamples=500, seed=i)
        covered += ci.low <= 0.7 <= ci.high
    assert 0.88 <= covered / 200 <= 0.99


def test_bootstrap_ci_empty_and_single_value():
    """No values: flagged empty, NaNs. One value: every resample is that value, so the
    interval is [v, v]."""
    empty = bootstrap_ci([])
    assert empty.empty and empty.n == 0
    assert math.isnan(empty.estimate) and math.isnan(empty.low) and math.isnan(empty.high)
    one = bootstrap_ci([0.25])
    assert not one.empty
    assert (one.estimate, one.low, one.high, one.n) == (0.25, 0.25, 0.25, 1)
    assert one.method == "percentile"


def test_bootstrap_ci_other_statistics():
    """median([1, 2, 3, 10]) = 2.5; max of any resample of [1, 2, 3] is at most 3; a stat
    without ``axis`` (a plain lambda) goes through the per-resample path."""
    ci = bootstrap_ci([1, 2, 3, 10], stat=np.median, n_resamples=300)
    assert ci.estimate == 2.5 and 1 <= ci.low <= ci.estimate <= ci.high <= 10
    ci = bootstrap_ci([1, 2, 3], stat=lambda v: float(max(v)), n_resamples=300)
    assert ci.estimate == 3 and ci.high == 3 and ci.low >= 1


def test_bootstrap_ci_is_reproducible_per_seed():
    values = np.random.default_rng(0).normal(size=50)
    assert bootstrap_ci(values, n_resamples=100, seed=3) == bootstrap_ci(
        values, n_resamples=100, seed=3
    )
    assert bootstrap_ci(values, n_resamples=100, seed=3) != bootstrap_ci(
        values, n_resamples=100, seed=4
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0}, "confidence"),
        ({"n_resamples": 0}, "n_resamples"),
    ],
)
def test_bootstrap_ci_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_ci([1.0, 2.0], **kwargs)


def test_bootstrap_ci_rejects_bad_values():
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="one-dimensional"):
        bootstrap_ci([[1.0, 2.0]])


def test_win_rate_hand_value():
    """[1, 1, 0, 0.5]: (1 + 1 + 0 + 0.5) / 4 = 62.5%."""
    ci = win_rate([1, 1, 0, 0.5], n_resamples=300)
    assert ci.estimate == pytest.approx(62.5)
    assert 0 <= ci.low <= 62.5 <= ci.high <= 100
    with pytest.raises(ValueError, match=r"got 2.0 at index 1"):
        win_rate([1, 2])


# ------------------------------------------------------------------ paired bootstrap


def test_paired_bootstrap_hand_values():
    """Differences [1, 1, 1, 1]: every resample mean is 1, interval [1, 1], no resample on
    the other side of 0, p = 0. Differences [1, -1]: mean exactly 0, p = 1."""
    r = paired_bootstrap([1, 1, 1, 1], [0, 0, 0, 0], n_resamples=200)
    assert (r.difference, r.low, r.high, r.p_value, r.n) == (1.0, 1.0, 1.0, 0.0, 4)
    r = paired_bootstrap([1, 0], [0, 1], n_resamples=200)
    assert r.difference == 0.0 and r.p_value == 1.0


def test_paired_bootstrap_detects_a_true_difference():
    """Candidate Bernoulli(0.75) vs baseline Bernoulli(0.55) on 300 items: a 0.2 gain with a
    standard error of about 0.038, so z ~ 5: every one of 20 data sets is significant."""
    rng = np.random.default_rng(7)
    for i in range(20):
        cand, base = rng.random(300) < 0.75, rng.random(300) < 0.55
        r = paired_bootstrap(cand, base, n_resamples=500, seed=i)
        assert r.p_value < 0.01 and r.low > 0
        assert r.low <= r.difference <= r.high


def test_paired_bootstrap_false_positive_rate_under_the_null():
    """Both Bernoulli(0.7): p < 0.05 should happen in about 5% of 200 data sets; allow
    [1%, 11%] for the sampling error of that share."""
    rng = np.random.default_rng(11)
    hits = 0
    for i in range(200):
        cand, base = rng.random(100) < 0.7, rng.random(100) < 0.7
        hits += paired_bootstrap(cand, base, n_resamples=400, seed=i).p_value < 0.05
    assert 0.01 <= hits / 200 <= 0.11


def test_paired_bootstrap_errors():
    with pytest.raises(ValueError, match="candidate has 3 values and baseline has 2"):
        paired_bootstrap([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="empty"):
        paired_bootstrap([], [])


# ------------------------------------------------------------------------ McNemar


def test_mcnemar_exact_known_example():
    """b=10, c=2 (plus 5 both right, 3 both wrong, which do not count): n = 12,
    P(X <= 2) = (C(12,0) + C(12,1) + C(12,2)) / 2^12 = (1 + 12 + 66) / 4096 = 79/4096,
    two-sided p = 158/4096 = 0.03857."""
    cand = [True] * 10 + [False] * 2 + [True] * 5 + [False] * 3
    base = [False] * 10 + [True] * 2 + [True] * 5 + [False] * 3
    r = mcnemar(cand, base)
    assert (r.b, r.c, r.method, r.statistic) == (10, 2, "exact", 2.0)
    assert r.p_value == pytest.approx(158 / 4096)
    assert r.p_value == pytest.approx(0.0386, abs=1e-4)


def test_mcnemar_chi_square_by_hand():
    """b=30, c=15: b + c = 45 >= 25, so chi-square with continuity correction:
    (|30 - 15| - 1)^2 / 45 = 196/45 = 4.3556; with one degree of freedom
    p = erfc(sqrt(4.3556 / 2)) = erfc(1.47573) = 0.03689."""
    r = mcnemar([True] * 30 + [False] * 15, [False] * 30 + [True] * 15)
    assert (r.b, r.c, r.method) == (30, 15, "chi2")
    assert r.statistic == pytest.approx(196 / 45)
    assert r.p_value == pytest.approx(0.03689, abs=1e-5)


def test_mcnemar_edges_and_errors():
    """No discordant pairs: nothing to test, p = 1. b = c = 3: P(X <= 3 | n=6) = 42/64,
    doubled > 1, capped at 1."""
    r = mcnemar([True, False], [True, False])
    assert (r.b, r.c, r.p_value) == (0, 0, 1.0)
    assert mcnemar([1, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]).p_value == 1.0
    with pytest.raises(ValueError, match="candidate has 2 values and baseline has 1"):
        mcnemar([True, False], [True])
    with pytest.raises(ValueError, match=r"baseline\[1\] must be a boolean"):
        mcnemar([True, False], [True, "no"])


def test_mcnemar_matches_scipy_where_installed():
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(10, 2), (0, 7), (12, 11), (30, 15), (40, 70)]:
        r = mcnemar([True] * b + [False] * c, [False] * b + [True] * c)
        if r.method == "exact":
            expected = stats.binomtest(min(b, c), b + c, 0.5).pvalue
        else:
            expected = stats.chi2.sf(r.statistic, 1)
        assert r.p_value == pytest.approx(expected, rel=1e-9)


# ----------------------------------------------------------------- non-inferiority


def test_non_inferior_pass_and_fail_by_hand():
    """Candidate exactly 0.01 below baseline on every item: the interval is [-0.01, -0.01];
    margin 0.02 tolerates it (-0.01 > -0.02), margin 0.005 does not."""
    base = np.array([0.5, 0.7, 0.9, 0.6])
    ok = non_inferior(base - 0.01, base, 0.02, n_resamples=200)
    assert ok.passed and ok.difference == pytest.approx(-0.01)
    assert ok.low == pytest.approx(-0.01) and ok.margin == 0.02
    assert not non_inferior(base - 0.01, base, 0.005, n_resamples=200).passed


def test_non_inferior_lower_is_better():
    """Latency 110 ms vs 100 ms: the improvement baseline - candidate is -10 ms; a 15 ms
    margin passes, a 5 ms one fails."""
    base = np.array([100.0, 120.0, 90.0])
    slower = base + 10
    r = non_inferior(slower, base, 15, higher_is_better=False, n_resamples=200)
    assert r.passed and r.difference == pytest.approx(-10) and not r.higher_is_better
    assert not non_inferior(slower, base, 5, higher_is_better=False, n_resamples=200).passed


def test_non_inferior_noisy_data():
    """Equal quality (both Bernoulli(0.8), 400 items): the lower bound sits near -0.05, so a
    0.1 margin passes; a candidate 0.25 worse fails the same margin."""
    rng = np.random.default_rng(5)
    base = rng.random(400) < 0.8
    same = rng.random(400) < 0.8
    worse = rng.random(400) < 0.55
    assert non_inferior(same, base, 0.1, n_resamples=500).passed
    assert not non_inferior(worse, base, 0.1, n_resamples=500).passed
    with pytest.raises(ValueError, match="margin"):
        non_inferior(same, base, -0.1)


# --------------------------------------------------------------------------- kappa


def test_cohen_kappa_hand_values():
    """a = [x, x, y, y], b = [x, y, y, y]: p_o = 3/4; marginals a (x 2/4, y 2/4),
    b (x 1/4, y 3/4); p_e = 2/16 + 6/16 = 1/2; kappa = (3/4 - 1/2)/(1/2) = 1/2.
    Swapped labels [x, y] vs [y, x]: p_o = 0, p_e = 1/2, kappa = -1."""
    raw, kappa = cohen_kappa(["x", "x", "y", "y"], ["x", "y", "y", "y"])
    assert raw == pytest.approx(0.75) and kappa == pytest.approx(0.5)
    assert cohen_kappa(["x", "y"], ["y", "x"]) == (0.0, -1.0)
    assert cohen_kappa([1, 0, 1], [1, 0, 1]) == (1.0, 1.0)


def test_cohen_kappa_agrees_with_the_annotation_one_on_verdicts():
    """The annotate docstring's example: p_o = 3/4, p_e = 5/16, kappa = 7/11."""
    a, b = ["a", "a", "b", "tie"], ["a", "b", "b", "tie"]
    raw, kappa = cohen_kappa(a, b)
    assert kappa == pytest.approx(7 / 11)
    assert (raw, kappa) == pytest.approx(annotate_kappa(list(zip(a, b, strict=True))))


def test_cohen_kappa_undefined_cases():
    """One label used by both raters throughout: p_e = 1, kappa undefined (None)."""
    assert cohen_kappa(["x", "x"], ["x", "x"]) == (1.0, None)
    assert cohen_kappa([], []) == (None, None)
    with pytest.raises(ValueError, match="labels_a has 2 values and labels_b has 1"):
        cohen_kappa(["x", "y"], ["x"])


# -------------------------------------------------------- length-controlled win rate


def _lengths(rng, n):
    return rng.integers(100, 400, n).astype(float)


def test_lc_win_rate_removes_a_pure_length_preference():
    """Half the items: the model's answer is longer and always wins. The other half: same
    length, same quality, a tie. Raw win rate = (100 + 50) / 2 = 75%; at equal length the
    data say "tie", so the LC rate is ~50%."""
    rng = np.random.default_rng(1)
    base = _lengths(rng, 200)
    longer = np.arange(200) < 100
    model = base + np.where(longer, rng.integers(20, 300, 200), 0)
    r = length_controlled_win_rate(np.where(longer, 1.0, 0.5), model, base, n_resamples=50)
    assert r.raw_win_rate == pytest.approx(75.0)
    assert abs(r.lc_win_rate - 50) < 10
    assert r.phi > 0 and r.converged
    assert r.low <= r.lc_win_rate <= r.high


def test_lc_win_rate_removes_a_noisy_length_preference():
    """Model longer on ~80% of items; the judge prefers it with probability
    σ(3·tanh(Δ/σ_Δ)) and nothing else: the raw rate is well above 50, the LC rate near it."""
    rng = np.random.default_rng(2)
    base = _lengths(rng, 400)
    delta = np.where(rng.random(400) < 0.8, 1, -1) * rng.integers(10, 300, 400)
    p = 1 / (1 + np.exp(-3 * np.tanh(delta / delta.std())))
    prefs = (rng.random(400) < p).astype(float)
    r = length_controlled_win_rate(prefs, base + delta, base, n_resamples=50)
    assert r.raw_win_rate > 65
    assert abs(r.lc_win_rate - 50) < 10


def test_lc_win_rate_keeps_a_real_advantage():
    """Model wins 80% of the time whatever the lengths: LC stays near the raw rate; and a
    model that wins while being *shorter* gets an LC rate at least its raw one."""
    rng = np.random.default_rng(3)
    base = _lengths(rng, 300)
    prefs = (rng.random(300) < 0.8).astype(float)
    r = length_controlled_win_rate(prefs, base + rng.normal(0, 100, 300), base, n_resamples=50)
    assert r.lc_win_rate > 70 and abs(r.lc_win_rate - r.raw_win_rate) < 5
    assert r.low < r.lc_win_rate < r.high
    shorter = length_controlled_win_rate(
        prefs, base - rng.integers(0, 200, 300), base, n_resamples=50
    )
    assert shorter.lc_win_rate >= shorter.raw_win_rate - 1


def test_lc_win_rate_constant_length_gap_is_the_raw_rate():
    """Every Δ equal: σ_Δ = 0, length cannot be separated from quality, LC = raw = 2/3."""
    r = length_controlled_win_rate([1, 1, 0], [200, 300, 400], [100, 200, 300], n_resamples=20)
    assert r.phi == 0.0
    assert r.lc_win_rate == pytest.approx(200 / 3, abs=1e-6)
    assert r.raw_win_rate == pytest.approx(200 / 3)


def test_lc_win_rate_errors():
    with pytest.raises(ValueError, match="preferences has 2 values and len_model has 3"):
        length_controlled_win_rate([1, 0], [1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=r"got -1.0 at index 0"):
        length_controlled_win_rate([-1], [1], [1])
    with pytest.raises(ValueError, match="no preferences"):
        length_controlled_win_rate([], [], [])
