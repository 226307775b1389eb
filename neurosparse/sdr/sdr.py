"""Sparse distributed representations: the :class:`SDR` type and set-like utilities.

An SDR of ``size`` bits is stored by its *index form*: the sorted, unique indices of
its active bits (``int64``). The *dense form* (a boolean vector) is built on demand.
All utilities accept an :class:`SDR`, an integer index array, a boolean / float dense
vector (numpy or torch), and return :class:`SDR` objects.

Conversions follow one rule so that nothing is guessed: **integer** arrays are
indices, **boolean or floating** arrays are dense vectors (non-zero = active).
Use :meth:`SDR.from_dense` for a dense vector stored as integers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Union

import numpy as np
import torch

from ..errors import DTypeError, InputValueError, ParameterError, ShapeError

SDRLike = Union["SDR", np.ndarray, torch.Tensor, list, tuple]


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


class SDR:
    """A binary vector of ``size`` bits kept as the sorted indices of its active bits.

    Parameters
    ----------
    size : int
        Number of bits ``n``.
    indices : array-like of int, optional
        Active bits; duplicates are merged, order does not matter.

    Examples
    --------
    >>> x = SDR(16, [3, 1, 7])
    >>> x.sparse
    array([1, 3, 7])
    >>> int(x.dense.sum())
    3
    """

    __slots__ = ("size", "_sparse")

    def __init__(self, size: int, indices: Iterable[int] | np.ndarray = ()) -> None:
        size = int(size)
        if size <= 0:
            raise ParameterError(f"size must be a positive number of bits, got {size}")
        raw = np.asarray(indices)
        if raw.dtype == bool:
            # a bool array here would be read as the indices 0 and 1
            raise DTypeError(
                "indices must be integers; for a dense bool vector use SDR.from_dense(x)"
            )
        if np.issubdtype(raw.dtype, np.floating) and not np.array_equal(raw, np.round(raw)):
            # casting would truncate 2.7 to 2 without a word
            raise InputValueError(
                f"indices must be whole numbers, got non-integral values such as "
                f"{raw[raw != np.round(raw)].reshape(-1)[0]}; for a dense vector use "
                f"SDR.from_dense(x)"
            )
        idx = np.unique(raw.astype(np.int64).reshape(-1))
        if idx.size and (idx[0] < 0 or idx[-1] >= size):
            raise InputValueError(
                f"indices must lie in [0, {size - 1}] for an SDR of size {size}, "
                f"got values in [{idx[0]}, {idx[-1]}]"
            )
        idx.setflags(write=False)
        self.size = size
        self._sparse = idx

    @classmethod
    def from_dense(cls, dense: np.ndarray | torch.Tensor | Iterable) -> SDR:
        """Build from a dense 1-D vector; every non-zero entry is an active bit."""
        if isinstance(dense, torch.Tensor):
            dense = dense.detach().cpu().numpy()
        d = np.asarray(dense)
        if d.ndim != 1:
            raise ShapeError(f"dense must be a 1-D vector, got shape {d.shape}")
        if np.issubdtype(d.dtype, np.inexact) and not np.isfinite(d).all():
            # NaN and inf are non-zero: they would silently count as active bits
            raise InputValueError("dense contains NaN or infinite values; a bit is 0 or non-zero")
        return cls(d.shape[0], np.flatnonzero(d))

    @classmethod
    def _trusted(cls, size: int, sorted_unique: np.ndarray) -> SDR:
        # Internal fast path for indices already sorted, unique and in range.
        out = object.__new__(cls)
        arr = np.ascontiguousarray(sorted_unique, dtype=np.int64)
        arr.setflags(write=False)
        out.size = int(size)
        out._sparse = arr
        return out

    @property
    def sparse(self) -> np.ndarray:
        """Sorted active indices (read-only ``int64`` array)."""
        return self._sparse

    @property
    def dense(self) -> np.ndarray:
        """Boolean vector of length ``size``."""
        d = np.zeros(self.size, dtype=bool)
        d[self._sparse] = True
        return d

    def to_tensor(self, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
        """Dense torch tensor (``float32`` by default) with ones on the active bits."""
        t = torch.zeros(self.size, dtype=dtype, device=device)
        t[torch.from_numpy(self._sparse.copy()).to(t.device)] = 1
        return t

    @property
    def active(self) -> int:
        """Number of active bits ``a``."""
        return int(self._sparse.size)

    @property
    def sparsity(self) -> float:
        """Fraction of active bits ``a / n``."""
        return self.active / self.size

    def __len__(self) -> int:
        return self.size

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SDR):
            return NotImplemented
        return self.size == other.size and np.array_equal(self._sparse, other._sparse)

    def __hash__(self) -> int:
        return hash((self.size, self._sparse.tobytes()))

    def __repr__(self) -> str:
        head = ", ".join(map(str, self._sparse[:8].tolist()))
        more = ", ..." if self.active > 8 else ""
        return f"SDR(size={self.size}, active={self.active}, indices=[{head}{more}])"


def as_sdr(x: SDRLike, size: int | None = None, name: str = "x") -> SDR:
    """Convert ``x`` to an :class:`SDR` (integer arrays = indices, bool/float = dense).

    Parameters
    ----------
    x : SDR, numpy array, torch tensor, list or tuple
        The representation to convert.
    size : int, optional
        Required for index forms; checked against dense forms and SDRs when given.
    name : str
        Argument name used in error messages.
    """
    if isinstance(x, SDR):
        if size is not None and x.size != size:
            raise ShapeError(f"{name} has size {x.size}, expected {size}")
        return x
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.dtype == bool or np.issubdtype(arr.dtype, np.floating):
        if arr.ndim != 1:
            raise ShapeError(f"{name} as a dense vector must be 1-D, got shape {arr.shape}")
        if size is not None and arr.shape[0] != size:
            raise ShapeError(f"{name} has {arr.shape[0]} bits, expected {size}")
        if arr.dtype != bool and not np.isfinite(arr).all():
            # NaN and inf are non-zero, so they would silently count as active bits
            raise InputValueError(
                f"{name} as a dense vector contains NaN or infinite values; "
                f"an SDR bit is 0 or non-zero"
            )
        return SDR._trusted(arr.shape[0], np.flatnonzero(arr))
    if np.issubdtype(arr.dtype, np.integer) or arr.size == 0:
        if size is None:
            raise ParameterError(
                f"{name} looks like an index array; pass size=<number of bits> as well"
            )
        return SDR(size, arr)
    raise DTypeError(
        f"{name} must be an SDR, an integer index array or a bool/float dense vector, "
        f"got dtype {arr.dtype}"
    )


def _pair(a: SDRLike, b: SDRLike, size: int | None) -> tuple[SDR, SDR]:
    if isinstance(a, SDR) and size is None:
        size = a.size
    elif isinstance(b, SDR) and size is None:
        size = b.size
    x = as_sdr(a, size, "a")
    y = as_sdr(b, x.size, "b")
    return x, y


def overlap(a: SDRLike, b: SDRLike, size: int | None = None) -> int:
    """Number of bits active in both ``a`` and ``b``: ``|a ∧ b|``."""
    x, y = _pair(a, b, size)
    return int(np.intersect1d(x.sparse, y.sparse, assume_unique=True).size)


def match(a: SDRLike, b: SDRLike, theta: int, size: int | None = None) -> bool:
    """True when ``overlap(a, b) >= theta`` (the matching rule of Ahmad & Hawkins 2016)."""
    if theta < 0:
        raise ParameterError(f"theta must be >= 0, got {theta}")
    return overlap(a, b, size) >= theta


def union(*sdrs: SDRLike, size: int | None = None) -> SDR:
    """Bitwise OR of SDRs of one size (at least one argument)."""
    if not sdrs:
        raise ParameterError("union needs at least one SDR")
    first = as_sdr(sdrs[0], size, "sdrs[0]")
    rest = [as_sdr(s, first.size, f"sdrs[{i + 1}]").sparse for i, s in enumerate(sdrs[1:])]
    if not rest:
        return first
    return SDR._trusted(first.size, np.unique(np.concatenate([first.sparse, *rest])))


def intersection(*sdrs: SDRLike, size: int | None = None) -> SDR:
    """Bitwise AND of SDRs of one size (at least one argument)."""
    if not sdrs:
        raise ParameterError("intersection needs at least one SDR")
    out = as_sdr(sdrs[0], size, "sdrs[0]")
    idx = out.sparse
    for i, s in enumerate(sdrs[1:]):
        idx = np.intersect1d(idx, as_sdr(s, out.size, f"sdrs[{i + 1}]").sparse, True)
    return SDR._trusted(out.size, idx)


def random_sdr(size: int, active: int, seed: int | np.random.Generator | None = None) -> SDR:
    """Uniformly random SDR with exactly ``active`` of ``size`` bits on."""
    if not 0 <= active <= size:
        raise ParameterError(f"active must lie in [0, size={size}], got {active}")
    rng = _rng(seed)
    return SDR._trusted(size, np.sort(rng.choice(size, active, replace=False)))


def add_noise(
    x: SDRLike,
    fraction: float | None = None,
    count: int | None = None,
    size: int | None = None,
    seed: int | np.random.Generator | None = None,
) -> SDR:
    """Move ``count`` (or ``round(fraction · a)``) active bits to random inactive positions.

    Sparsity is preserved: the result has as many active bits as ``x`` and shares
    ``a − count`` of them with it (the noise model of Ahmad & Hawkins 2016).
    """
    sdr = as_sdr(x, size)
    v = _noise_count(sdr.active, fraction, count)
    if v > sdr.size - sdr.active:
        raise ParameterError(
            f"cannot move {v} bits: only {sdr.size - sdr.active} inactive bits exist"
        )
    rng = _rng(seed)
    keep = rng.permutation(sdr.sparse)[v:]
    inactive = np.setdiff1d(np.arange(sdr.size), sdr.sparse, assume_unique=True)
    new = rng.choice(inactive, v, replace=False)
    return SDR._trusted(sdr.size, np.sort(np.concatenate([keep, new])))


def dropout(
    x: SDRLike,
    fraction: float | None = None,
    count: int | None = None,
    size: int | None = None,
    seed: int | np.random.Generator | None = None,
) -> SDR:
    """Switch off ``count`` (or ``round(fraction · a)``) randomly chosen active bits."""
    sdr = as_sdr(x, size)
    v = _noise_count(sdr.active, fraction, count)
    rng = _rng(seed)
    keep = rng.permutation(sdr.sparse)[v:]
    return SDR._trusted(sdr.size, np.sort(keep))


def _noise_count(active: int, fraction: float | None, count: int | None) -> int:
    if (fraction is None) == (count is None):
        raise ParameterError("give exactly one of fraction (0..1) or count (number of bits)")
    if fraction is not None:
        if not 0.0 <= fraction <= 1.0:
            raise ParameterError(f"fraction must lie in [0, 1], got {fraction}")
        return int(round(fraction * active))
    if not 0 <= int(count) <= active:
        raise ParameterError(f"count must lie in [0, {active}] (active bits), got {count}")
    return int(count)


def capacity(size: int, active: int) -> int:
    """Number of distinct SDRs with ``active`` of ``size`` bits: ``C(n, a)`` (exact int).

    For ``n = 2048, a = 40`` this is about ``2.37e84``.
    """
    if not 0 <= active <= size:
        raise ParameterError(f"active must lie in [0, size={size}], got {active}")
    return math.comb(size, active)


def expected_overlap(size: int, active: int) -> float:
    """Mean overlap of two independent uniformly random SDRs: ``a² / n``."""
    if not 0 <= active <= size:
        raise ParameterError(f"active must lie in [0, size={size}], got {active}")
    return active * active / size
