"""The combinatorics of SDR matching (Ahmad & Hawkins 2016, arXiv 1601.00720).

A dendritic segment holds ``s`` synapses onto bits of one stored pattern and fires
when at least ``θ`` of them are active. Inputs are SDRs of ``n`` bits with ``a``
active. All probabilities are computed with exact integer arithmetic
(:func:`math.comb`) and converted to ``float`` once, so values down to 1e-300 are
accurate (no cancellation, no floating binomials).

Functions
---------
false_match_probability
    P(random SDR makes the segment fire) — the upper tail of a hypergeometric law.
match_probability_with_noise
    P(segment still fires) after ``v`` of the stored pattern's bits are replaced.
union_false_match_probability
    False-match probability of one segment that stores ``m`` patterns (union
    property), exact over the random number of distinct synapses.
union_false_match_bound
    The same with every one of the ``m · s`` synapses counted as distinct (an upper
    bound; the paper's approximation).
"""

from __future__ import annotations

from fractions import Fraction
from math import comb

from ..errors import ParameterError


def _check(n: int, a: int, s: int, theta: int) -> None:
    for name, v in (("n", n), ("a", a), ("s", s), ("theta", theta)):
        if int(v) != v or v < 0:
            raise ParameterError(f"{name} must be a non-negative integer, got {v}")
    if n == 0 or a > n:
        raise ParameterError(f"need 0 < n and a <= n, got n={n}, a={a}")
    if s > n:
        raise ParameterError(f"s (synapses) must be <= n={n}, got {s}")


def _tail(n: int, a: int, s: int, theta: int) -> Fraction:
    # Σ_{b=θ}^{min(s,a)} C(s,b)·C(n−s, a−b) / C(n,a)
    num = sum(comb(s, b) * comb(n - s, a - b) for b in range(max(theta, 0), min(s, a) + 1))
    return Fraction(num, comb(n, a))


def false_match_probability(n: int, a: int, s: int, theta: int) -> float:
    """Probability that a uniformly random SDR makes a segment fire.

    ``P = Σ_{b=θ}^{min(s,a)} C(s,b)·C(n−s,a−b) / C(n,a)``, equal to
    ``scipy.stats.hypergeom(M=n, n=s, N=a).sf(θ − 1)``.

    Parameters
    ----------
    n : int
        Bits in the input SDRs.
    a : int
        Active bits in each input.
    s : int
        Synapses on the segment (each onto a distinct input bit).
    theta : int
        Activation threshold (active synapses needed to fire).

    Examples
    --------
    >>> f"{false_match_probability(2048, 40, 20, 10):.2e}"
    '3.91e-13'
    """
    _check(n, a, s, theta)
    return float(_tail(n, a, s, theta))


def match_probability_with_noise(a: int, s: int, theta: int, v: int) -> float:
    """Probability that a segment still fires after ``v`` of its pattern's bits moved.

    The segment samples ``s`` of the ``a`` active bits of a stored pattern. Noise
    replaces ``v`` of the ``a`` bits by bits outside the pattern (sparsity kept). The
    number ``r`` of replaced bits that carried a synapse is hypergeometric, and the
    segment fires when ``s − r ≥ θ``:
    ``P = Σ_{r=0}^{s−θ} C(s,r)·C(a−s, v−r) / C(a, v)``.
    """
    for name, val in (("a", a), ("s", s), ("theta", theta), ("v", v)):
        if int(val) != val or val < 0:
            raise ParameterError(f"{name} must be a non-negative integer, got {val}")
    if s > a or v > a:
        raise ParameterError(f"need s <= a and v <= a, got a={a}, s={s}, v={v}")
    if theta > s:
        return 0.0
    num = sum(comb(s, r) * comb(a - s, v - r) for r in range(0, min(s - theta, v) + 1))
    return float(Fraction(num, comb(a, v)))


def _check_m(m: int) -> None:
    if m < 1 or int(m) != m:
        raise ParameterError(f"m (stored patterns) must be an integer >= 1, got {m}")


def _union_size_distribution(n: int, s: int, m: int) -> dict[int, float]:
    # Distribution of |S_1 ∪ … ∪ S_m| for independent uniform s-subsets of n bits
    # (each stored pattern is uniform, so its s sampled bits are a uniform s-subset).
    # Floats suffice here: every term is positive, so nothing cancels.
    dist = {s: 1.0}
    total = comb(n, s)
    for _ in range(m - 1):
        nxt: dict[int, float] = {}
        for k, p in dist.items():
            for new in range(0, min(s, n - k) + 1):
                w = comb(k, s - new) * comb(n - k, new)
                if w:
                    nxt[k + new] = nxt.get(k + new, 0.0) + p * float(Fraction(w, total))
        dist = nxt
    return dist


def union_false_match_probability(n: int, a: int, s: int, theta: int, m: int) -> float:
    """False-match probability of a segment that stores ``m`` random patterns.

    Each stored pattern contributes ``s`` synapses onto a uniformly random
    ``s``-subset of the ``n`` bits; overlapping subsets share synapses, so the
    segment holds ``K ≤ m·s`` distinct synapses. The result is exact up to float
    rounding: ``Σ_K P(K) · false_match_probability(n, a, K, θ)``, with ``P(K)`` from
    the occupancy recursion. Compare :func:`union_false_match_bound`.
    """
    _check(n, a, s, theta)
    _check_m(m)
    dist = _union_size_distribution(n, s, int(m))
    return sum(p * float(_tail(n, a, k, theta)) for k, p in dist.items() if p > 0.0)


def union_false_match_bound(n: int, a: int, s: int, theta: int, m: int) -> float:
    """False-match probability with all ``m · s`` synapses distinct (an upper bound).

    This is the paper's union estimate: substitute ``m · s`` for ``s``. It exceeds
    :func:`union_false_match_probability` because shared synapses make a segment
    smaller, never larger.
    """
    # m is checked first: a fractional m used to pass (s·m was compared, then int(m)
    # silently truncated it) and m = 0 returned the value of an empty segment
    _check_m(m)
    _check(n, a, s, theta)
    return false_match_probability(n, a, min(s * int(m), n), theta)


def expected_union_synapses(n: int, s: int, m: int) -> float:
    """Expected number of distinct synapses after storing ``m`` patterns: ``n(1−(1−s/n)^m)``."""
    if not 0 <= s <= n or m < 0:
        raise ParameterError(f"need 0 <= s <= n and m >= 0, got n={n}, s={s}, m={m}")
    return n * (1.0 - (1.0 - s / n) ** m)
