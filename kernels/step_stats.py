"""Spike statistics of a time-major block in one pass (the energy meter's counts).

For ``x`` of shape ``[T, M, N]`` (steps, rows per step, elements per row) one read of
``x`` gives, per row, the non-zero elements and the elements that changed since the
same row one step earlier (the first step against zero), and whether every value is 0
or 1. The torch reference (``neurosparse.energy._tensors``) needs five passes and two
temporaries for the same numbers.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def step_row_stats(x: np.ndarray, nnz: np.ndarray, changed: np.ndarray) -> bool:
    """Fill ``nnz[t, m]`` and ``changed[t, m]`` (int64) from ``x[t, m, :]``.

    Returns True when every value of ``x`` is 0 or 1. NaN counts as non-zero, changed
    and not binary, as ``x != 0`` and ``x != prev`` do in torch.
    """
    T, M, N = x.shape
    others = 0
    for t in range(T):
        for m in range(M):
            c = 0
            d = 0
            o = 0
            if t == 0:
                for n in range(N):
                    v = x[0, m, n]
                    nz = v != 0
                    c += nz
                    d += nz
                    o += nz and v != 1
            else:
                for n in range(N):
                    v = x[t, m, n]
                    nz = v != 0
                    c += nz
                    d += v != x[t - 1, m, n]
                    o += nz and v != 1
            nnz[t, m] = c
            changed[t, m] = d
            others += o
    return others == 0
