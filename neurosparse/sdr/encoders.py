"""Encoders that turn values into SDRs: scalar, random distributed scalar, category.

Each encoder is a small callable object: ``enc(value) -> SDR``. Similar inputs get
overlapping codes (scalar, RDSE), different categories get (nearly) disjoint codes.
The semantics follow htm.core's encoders (read, not copied): a scalar is a block of
``active`` contiguous bits sliding over the output; the RDSE hashes ``active``
consecutive bucket keys, so buckets ``k`` apart share about ``active − k`` bits.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np

from ..errors import InputValueError, ParameterError
from .sdr import SDR

_MASK = (1 << 64) - 1


def _splitmix64(x: int) -> int:
    # A well-mixed 64-bit hash; pure Python ints so results never depend on numpy casting.
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def _check_sizes(size: int, active: int) -> None:
    if int(size) <= 0:
        raise ParameterError(f"size must be a positive number of bits, got {size}")
    if not 0 < int(active) <= int(size):
        raise ParameterError(f"active must lie in [1, size={size}], got {active}")


class ScalarEncoder:
    """Encode a number as ``active`` contiguous bits whose position follows the value.

    Parameters
    ----------
    size : int
        Output bits ``n``.
    active : int
        Active bits ``a`` (the block width).
    min, max : float
        Value range. Without ``periodic`` there are ``n − a + 1`` buckets and
        ``min``/``max`` map to the first/last one; with ``periodic`` the range
        ``[min, max)`` maps onto ``n`` buckets and the block wraps around.
    clip : bool
        Clip (or, when periodic, wrap) values outside the range instead of raising.
    periodic : bool
        Treat the range as a circle (angles, time of day).

    Notes
    -----
    NaN encodes to an empty SDR (no information), as in htm.core.
    """

    def __init__(
        self,
        size: int,
        active: int,
        min: float,  # noqa: A002 - the issue's public spelling
        max: float,  # noqa: A002
        clip: bool = True,
        periodic: bool = False,
    ) -> None:
        _check_sizes(size, active)
        if not (math.isfinite(min) and math.isfinite(max)) or max <= min:
            raise ParameterError(f"need finite min < max, got min={min}, max={max}")
        self.size, self.active = int(size), int(active)
        self.min, self.max = float(min), float(max)
        self.clip, self.periodic = bool(clip), bool(periodic)
        buckets = self.size if periodic else self.size - self.active + 1
        self.buckets = buckets
        span = self.max - self.min
        self.resolution = span / buckets if periodic else span / (buckets - 1 if buckets > 1 else 1)

    def bucket(self, value: float) -> int:
        """Index of the first active bit for ``value`` (``-1`` for NaN)."""
        v = float(value)
        if math.isnan(v):
            return -1
        if self.periodic:
            if not math.isfinite(v):
                # an infinite angle has no place on the circle: wrapping it gives NaN
                raise InputValueError(f"value must be finite or NaN, got {v}")
            if not self.clip and not (self.min <= v < self.max):
                raise InputValueError(
                    f"value {v} is outside [{self.min}, {self.max}); pass clip=True to wrap"
                )
            frac = ((v - self.min) / (self.max - self.min)) % 1.0
            return int(math.floor(frac * self.size)) % self.size
        if not self.min <= v <= self.max:
            if not self.clip:
                raise InputValueError(
                    f"value {v} is outside [{self.min}, {self.max}]; pass clip=True to clip"
                )
            v = min(max(v, self.min), self.max)
        # Round half up, as htm.core's C ``round`` of (value − min) / resolution does.
        # Python's half-to-even ``round`` sent the mid-points 2.5 and 3.5 two buckets
        # apart and 1.5 and 2.5 into one bucket, so equally spaced inputs (integers with
        # resolution 2) got unequal code overlaps. The min() guards float error at max.
        return min(int(math.floor((v - self.min) / self.resolution + 0.5)), self.buckets - 1)

    def encode(self, value: float) -> SDR:
        """Return the SDR of ``value``."""
        b = self.bucket(value)
        if b < 0:
            return SDR._trusted(self.size, np.empty(0, np.int64))
        idx = np.arange(b, b + self.active, dtype=np.int64)
        if self.periodic:
            idx = np.sort(idx % self.size)
        return SDR._trusted(self.size, idx)

    __call__ = encode

    def __repr__(self) -> str:
        return (
            f"ScalarEncoder(size={self.size}, active={self.active}, min={self.min}, "
            f"max={self.max}, periodic={self.periodic})"
        )


def _mix64(x: np.ndarray) -> np.ndarray:
    # splitmix64's finaliser on uint64 arrays (wrapping arithmetic is intended)
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class RDSE:
    """Random distributed scalar encoder: unbounded range, fixed sparsity.

    A value falls in bucket ``k = floor(value / resolution)``. Its code is the set of
    bits ``hash(seed, k + i) mod size`` for ``i = 0 … active − 1``, so buckets ``d``
    apart share ``active − d`` hashed keys and codes overlap smoothly with distance.
    Keys that land on an already used bit are re-hashed in rounds (round ``r`` uses
    ``hash(seed, key, r)``; within a round the lower ``i`` wins a contested bit) until
    every key has its own bit, so every code has exactly ``active`` bits (htm.core
    instead accepts a slightly smaller code).

    Parameters
    ----------
    size, active : int
        Output bits and active bits.
    resolution : float
        Width of one bucket: values closer than this share all bits or all but one.
    seed : int
        Hash seed; encoders with the same seed produce identical codes.
    """

    def __init__(self, size: int, active: int, resolution: float, seed: int = 0) -> None:
        _check_sizes(size, active)
        if not (math.isfinite(resolution) and resolution > 0):
            raise ParameterError(f"resolution must be a finite number > 0, got {resolution}")
        self.size, self.active = int(size), int(active)
        self.resolution = float(resolution)
        self.seed = int(seed) & _MASK
        self._seed_mix = np.uint64(_splitmix64(self.seed))

    def bucket(self, value: float) -> int:
        """Bucket index ``floor(value / resolution)``."""
        return math.floor(float(value) / self.resolution)

    def encode(self, value: float) -> SDR:
        """Return the SDR of ``value`` (an empty SDR for NaN)."""
        v = float(value)
        if math.isnan(v):
            return SDR._trusted(self.size, np.empty(0, np.int64))
        if not math.isfinite(v):
            raise InputValueError(f"value must be finite or NaN, got {v}")
        if not abs(v / self.resolution) < 2.0**62:
            # the bucket keys are 64-bit integers (numpy raised a bare OverflowError)
            raise InputValueError(
                f"value {v} is too large for resolution {self.resolution}: its bucket "
                f"index does not fit 63 bits; use a larger resolution"
            )
        keys = (np.arange(self.active, dtype=np.int64) + self.bucket(v)).astype(np.uint64)
        h = _mix64(self._seed_mix ^ _mix64(keys))
        used = np.zeros(self.size, bool)
        todo = np.arange(self.active)
        r = 0
        while todo.size:
            cand = h[todo]
            if r:
                cand = _mix64(cand ^ np.uint64(r))
            bits = (cand % np.uint64(self.size)).astype(np.int64)
            free = ~used[bits]
            # first (lowest i) claimant of each free bit wins it this round
            _, first = np.unique(bits, return_index=True)
            win = np.zeros(todo.size, bool)
            win[first] = True
            win &= free
            used[bits[win]] = True
            todo = todo[~win]
            r += 1
        return SDR._trusted(self.size, np.flatnonzero(used))

    __call__ = encode

    def __repr__(self) -> str:
        return (
            f"RDSE(size={self.size}, active={self.active}, resolution={self.resolution}, "
            f"seed={self.seed})"
        )


class CategoryEncoder:
    """Give each category its own code of ``active`` bits.

    Parameters
    ----------
    categories : sequence of hashables, or int
        The known categories (an int ``m`` means ``range(m)``).
    active : int
        Active bits per code.
    size : int, optional
        Without it the codes are disjoint blocks and ``size = active · m``. With it,
        each code is a random set of ``active`` bits drawn with ``seed`` (codes then
        overlap about ``active² / size`` bits, like random SDRs).
    seed : int
        Used only with ``size``.
    """

    def __init__(
        self,
        categories: Sequence[Hashable] | int,
        active: int,
        size: int | None = None,
        seed: int = 0,
    ) -> None:
        cats = list(range(categories)) if isinstance(categories, int) else list(categories)
        if not cats:
            raise ParameterError("categories must not be empty")
        if len(set(cats)) != len(cats):
            raise ParameterError("categories must be distinct")
        if int(active) < 1:
            raise ParameterError(f"active must be >= 1 bit per category, got {active}")
        self.categories = cats
        self._index = {c: i for i, c in enumerate(cats)}
        self.active = int(active)
        if size is None:
            _check_sizes(self.active * len(cats), self.active)
            self.size = self.active * len(cats)
            self._codes = [
                np.arange(i * self.active, (i + 1) * self.active, dtype=np.int64)
                for i in range(len(cats))
            ]
        else:
            _check_sizes(size, active)
            self.size = int(size)
            rng = np.random.default_rng(seed)
            self._codes = [
                np.sort(rng.choice(self.size, self.active, replace=False)).astype(np.int64)
                for _ in cats
            ]

    def encode(self, category: Hashable) -> SDR:
        """Return the code of ``category``; unknown categories raise."""
        try:
            i = self._index[category]
        except (KeyError, TypeError):
            raise InputValueError(
                f"unknown category {category!r}; known: {self.categories[:10]}"
                + (" ..." if len(self.categories) > 10 else "")
            ) from None
        return SDR._trusted(self.size, self._codes[i])

    __call__ = encode

    def __repr__(self) -> str:
        return (
            f"CategoryEncoder({len(self.categories)} categories, active={self.active}, "
            f"size={self.size})"
        )
