"""Running sums over time on the CPU (torch-free): the accumulation of a delta layer.

A delta layer adds each step's ``W·Δ_t`` onto the previous pre-activation,
``z_t = z_{t-1} + W·Δ_t``. Summed in float32 over hundreds of steps the rounding
errors add up (a random walk of about ``√T`` ulps of the running value), so the running
sum is kept in float64 and only rounded to float32 when stored: the result then stays
within one float32 rounding of the dense layer applied to the quantised input.

The backward of a running sum is the running sum taken from the end (``reverse``).
Work items are blocks of units; each walks all steps with its sums in a small buffer.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._serial import SERIAL_BELOW, serial_twin

_UNIT_BLOCK = 512


@numba.njit(parallel=True, cache=True)
def running_sum(inc, z0, out, reverse):
    """``out[t] = z0 + Σ_{s≤t} inc[s]`` (``reverse``: ``z0 + Σ_{s≥t} inc[s]``).

    ``inc``/``out`` are ``[T, R]`` (may be the same array), ``z0`` is ``[R]``; sums in
    float64.
    """
    n_t, n_r = inc.shape
    n_k = (n_r + _UNIT_BLOCK - 1) // _UNIT_BLOCK
    for k in prange(n_k):
        r0 = k * _UNIT_BLOCK
        r1 = min(n_r, r0 + _UNIT_BLOCK)
        acc = np.empty(r1 - r0, np.float64)
        for j in range(r1 - r0):
            acc[j] = z0[r0 + j]
        for s in range(n_t):
            t = n_t - 1 - s if reverse else s
            a = inc[t, r0:r1]
            o = out[t, r0:r1]
            for j in range(r1 - r0):
                acc[j] += a[j]
                o[j] = acc[j]


# a streaming step's running sum: no parallel region (see delta_encode.py)
running_sum_serial = serial_twin(running_sum)


def sum_into(inc: np.ndarray, z0: np.ndarray, out: np.ndarray, reverse: bool = False) -> None:
    """:func:`running_sum`, single-threaded below ``SERIAL_BELOW`` elements."""
    kernel = running_sum_serial if inc.size < SERIAL_BELOW else running_sum
    kernel(inc, z0, out, reverse)


def accumulate(inc: np.ndarray, z0: np.ndarray | None, reverse: bool = False) -> np.ndarray:
    """Running sum of ``inc[T, R]`` from ``z0[R]`` (zeros when None), as a new array."""
    if z0 is None:
        z0 = np.zeros(inc.shape[1], inc.dtype)
    out = np.empty_like(inc)
    sum_into(inc, z0, out, reverse)
    return out
