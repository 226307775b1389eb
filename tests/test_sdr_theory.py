"""SDR matching theory (Ahmad & Hawkins 2016) against scipy, published anchors and Monte Carlo.

The Monte-Carlo simulator below is independent of the library: it draws real random
SDRs (Floyd's sampling of distinct bits) and counts segment firings, 10^5 draws per
grid point, and accepts counts inside a 5-sigma binomial band.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy.stats import hypergeom

from neurosparse.errors import ParameterError
from neurosparse.sdr import theory

N_DRAWS = 100_000


@numba.njit(cache=False)
def _pick(n, a, mark, out):
    # Floyd's algorithm: a distinct uniformly random bits of n, marked in `mark`.
    k = 0
    for j in range(n - a, n):
        t = np.random.randint(0, j + 1)
        if mark[t]:
            t = j
        mark[t] = True
        out[k] = t
        k += 1


@numba.njit(cache=False)
def _overlap_of_random_pattern(n, a, syn, mark, buf):
    # a fresh random pattern of a bits: how many of them carry a synapse (marks cleared)
    _pick(n, a, mark, buf)
    c = 0
    for i in range(a):
        c += syn[buf[i]]
        mark[buf[i]] = False
    return c


@numba.njit(cache=False)
def _mc_false_match(n, a, s, theta, draws, seed):
    np.random.seed(seed)
    mark = np.zeros(n, np.bool_)
    syn = np.zeros(n, np.bool_)
    buf = np.empty(max(a, s), np.int64)
    _pick(n, s, syn, buf)  # the segment: s synapses on random bits
    hits = 0
    for _ in range(draws):
        hits += _overlap_of_random_pattern(n, a, syn, mark, buf) >= theta
    return hits


@numba.njit(cache=False)
def _mc_noise(n, a, s, theta, v, draws, seed):
    np.random.seed(seed)
    hits = 0
    for _ in range(draws):
        pattern = np.random.permutation(n)[:a]
        synapses = np.random.permutation(pattern)[:s]  # segment samples s pattern bits
        outside = np.random.permutation(n)
        inp = np.zeros(n, np.bool_)
        inp[pattern] = True
        # move v random pattern bits to random bits outside the pattern
        moved = np.random.permutation(pattern)[:v]
        for b in moved:
            inp[b] = False
        placed = 0
        for b in outside:
            if placed == v:
                break
            if not np.any(pattern == b):
                inp[b] = True
                placed += 1
        c = 0
        for b in synapses:
            c += inp[b]
        hits += c >= theta
    return hits


@numba.njit(cache=False)
def _mc_union(n, a, s, theta, m, draws, seed):
    np.random.seed(seed)
    syn = np.zeros(n, np.bool_)
    mark = np.zeros(n, np.bool_)
    pat = np.empty(a, np.int64)
    sub = np.empty(s, np.int64)
    hits = 0
    for _ in range(draws):
        syn[:] = False
        for _k in range(m):
            _pick(n, a, mark, pat)  # a stored pattern ...
            for i in range(a):
                mark[pat[i]] = False
            idx = np.random.permutation(a)[:s]  # ... and s of its bits get synapses
            for i in range(s):
                sub[i] = pat[idx[i]]
                syn[sub[i]] = True
        hits += _overlap_of_random_pattern(n, a, syn, mark, pat) >= theta
    return hits


def _in_band(hits: int, p: float, draws: int) -> bool:
    mean = draws * p
    sd = math.sqrt(draws * p * (1 - p))
    return abs(hits - mean) <= 5 * sd + 1


@pytest.mark.parametrize(
    ("n", "a", "s", "theta", "expected"),
    [
        (2048, 40, 20, 10, 3.91e-13),
        (2048, 40, 24, 12, 1.18e-15),
        (2048, 40, 32, 16, 7.31e-21),
        (2048, 40, 20, 8, 1.08e-09),
        (1024, 20, 16, 8, 5.11e-11),
    ],
)
def test_false_match_anchor_values(n, a, s, theta, expected):
    p = theory.false_match_probability(n, a, s, theta)
    assert p == pytest.approx(expected, rel=6e-3)


@pytest.mark.parametrize(
    ("n", "a", "s", "theta"),
    [(2048, 40, 20, 10), (2048, 40, 20, 2), (600, 30, 20, 4), (64, 8, 8, 3), (50, 50, 10, 10)],
)
def test_false_match_equals_hypergeometric_tail(n, a, s, theta):
    ref = hypergeom(M=n, n=s, N=a).sf(theta - 1)
    assert theory.false_match_probability(n, a, s, theta) == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize(
    ("n", "a", "s", "theta"),
    [
        (2048, 40, 20, 10),  # the paper's example size: P ~ 4e-13, so 0 hits expected
        (2048, 40, 20, 3),
        (2048, 40, 32, 2),
        (1024, 20, 16, 2),
        (256, 32, 24, 6),
        (64, 8, 8, 2),
    ],
)
def test_false_match_monte_carlo(n, a, s, theta):
    p = theory.false_match_probability(n, a, s, theta)
    hits = _mc_false_match(n, a, s, theta, N_DRAWS, 1234 + n + theta)
    assert _in_band(hits, p, N_DRAWS), (hits, N_DRAWS * p)


def test_noise_anchor_values():
    assert theory.match_probability_with_noise(40, 20, 10, 20) == pytest.approx(0.62, abs=5e-3)
    assert theory.match_probability_with_noise(40, 20, 10, 25) == pytest.approx(0.095, abs=5e-4)
    # no noise -> always fires; all synapse bits removed -> never (theta > 0)
    assert theory.match_probability_with_noise(40, 20, 10, 0) == 1.0
    assert theory.match_probability_with_noise(40, 40, 1, 40) == 0.0


@pytest.mark.parametrize(
    ("a", "s", "theta", "v"), [(40, 20, 10, 20), (40, 20, 10, 25), (20, 12, 6, 9)]
)
def test_noise_monte_carlo(a, s, theta, v):
    draws = 20_000  # each draw builds full SDRs of 256 bits; 20k keeps the test fast
    p = theory.match_probability_with_noise(a, s, theta, v)
    hits = _mc_noise(256, a, s, theta, v, draws, 99 + v)
    assert _in_band(hits, p, draws), (hits, draws * p)


def test_union_anchor_values_and_bound():
    # REFERENCES §4 anchors use the m·s substitution (bound)
    for m, ref in ((5, 1.2e-05), (10, 3.9e-03), (20, 0.24)):
        bound = theory.union_false_match_bound(2048, 40, 20, 10, m)
        assert bound == pytest.approx(ref, rel=0.03)
        exact = theory.union_false_match_probability(2048, 40, 20, 10, m)
        assert exact < bound
    # one stored pattern: nothing to merge
    assert theory.union_false_match_probability(2048, 40, 20, 10, 1) == pytest.approx(
        theory.false_match_probability(2048, 40, 20, 10), rel=1e-12
    )


@pytest.mark.parametrize(
    ("n", "a", "s", "theta", "m"), [(2048, 40, 20, 10, 10), (200, 20, 10, 4, 6)]
)
def test_union_monte_carlo(n, a, s, theta, m):
    p = theory.union_false_match_probability(n, a, s, theta, m)
    hits = _mc_union(n, a, s, theta, m, N_DRAWS, 7 + m)
    assert _in_band(hits, p, N_DRAWS), (hits, N_DRAWS * p)


def test_expected_union_synapses_matches_distribution_mean():
    dist = theory._union_size_distribution(300, 15, 7)
    mean = sum(k * p for k, p in dist.items())
    assert mean == pytest.approx(theory.expected_union_synapses(300, 15, 7), rel=1e-9)


def test_bad_arguments_raise():
    with pytest.raises(ParameterError, match="a <= n"):
        theory.false_match_probability(10, 20, 5, 2)
    with pytest.raises(ParameterError, match="m"):
        theory.union_false_match_probability(100, 10, 5, 2, 0)


def test_union_bound_checks_m_like_the_exact_union():
    # m = 2.5 passed (s·m = 50 looked integral) and was then truncated to 2; m = 0 gave 1.0
    for m in (2.5, 0):
        with pytest.raises(ParameterError, match="m"):
            theory.union_false_match_bound(2048, 40, 20, 10, m)
    assert theory.union_false_match_bound(2048, 40, 20, 10, 2) == pytest.approx(
        theory.false_match_probability(2048, 40, 40, 10), rel=1e-12
    )
