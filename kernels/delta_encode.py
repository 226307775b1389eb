"""Delta encoding of a sequence on the CPU (torch-free).

Each unit ``u`` of sample ``b`` keeps a reference ``ref``; at step ``t``

    d = x[t, b, u] - ref
    Δ[t, b, u] = d  and  ref ← x[t, b, u]   if |d| > θ[u]
    Δ[t, b, u] = 0                            otherwise

(Neil et al. 2017). The recursion runs along time only, so the units are independent:
work items are ``(sample, block of units)`` pairs and each walks its block through all
``T`` steps, keeping its references in a small buffer. The same pass counts, per row
``(t, b)``, the transmitted deltas and those of magnitude 1 (the event layers price ±1
events as accumulates, others as multiply-accumulates), and flags NaN/inf inputs, which
would otherwise compare false and vanish silently.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._serial import SERIAL_BELOW, serial_twin

_UNIT_BLOCK = 1024  # units of one work item: its references stay in L1


@numba.njit(parallel=True, cache=True)
def delta_encode(x, ref0, thr, delta, ref_out, counts, units, bad):
    """Encode ``x[T, B, U]`` against ``ref0[B, U]`` with thresholds ``thr[U]``.

    Writes ``delta[T, B, U]`` (every element), the final references ``ref_out[B, U]``,
    and per (row ``(t, b)``, unit block ``k``) the transmitted deltas ``counts[t, b, k]``
    and those with ``|Δ| == 1`` ``units[t, b, k]``; ``bad[b, k]`` is set when a NaN/inf
    input was seen. ``counts``/``units`` are ``[T, B, n_blocks]`` with ``n_blocks =
    ceil(U / 1024)``: the caller sums the last axis.
    """
    n_t, n_b, n_u = x.shape
    n_k = counts.shape[2]
    for item in prange(n_b * n_k):
        b = item // n_k
        k = item - b * n_k
        u0 = k * _UNIT_BLOCK
        u1 = min(n_u, u0 + _UNIT_BLOCK)
        ref = ref0[b, u0:u1].copy()
        th = thr[u0:u1]
        nonfinite = np.int32(0)
        for t in range(n_t):
            xt = x[t, b, u0:u1]
            dt = delta[t, b, u0:u1]
            n = np.int32(0)
            one = np.int32(0)
            for j in range(u1 - u0):
                v = xt[j]
                d = v - ref[j]
                send = abs(d) > th[j]
                # branch-free: at mid densities a data-dependent branch mispredicts
                dt[j] = d if send else np.float32(0)
                ref[j] = v if send else ref[j]
                n += np.int32(send)
                one += np.int32(send and abs(d) == 1)
                nonfinite += np.int32(not abs(v) < np.inf)
            counts[t, b, k] = n
            units[t, b, k] = one
        ref_out[b, u0:u1] = ref
        bad[b, k] = nonfinite != 0


# One step of a streaming delta layer is too small to pay for a parallel region (~0.2 ms
# to start on the 2-core VM when quiet, more when its cores are busy): it runs this twin,
# compiled without threads from the same function (same results).
delta_encode_serial = serial_twin(delta_encode)


def n_blocks(n_units: int) -> int:
    """Unit blocks per sample in :func:`delta_encode`'s count arrays."""
    return max(1, -(-n_units // _UNIT_BLOCK))


def encode(
    x: np.ndarray, ref0: np.ndarray, thr: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """Run :func:`delta_encode` on float32 C-contiguous arrays.

    Parameters
    ----------
    x : ``[T, B, U]``; ref0 : ``[B, U]``; thr : ``[U]`` (non-negative).

    Returns
    -------
    delta : ``[T, B, U]`` float32
    ref_out : ``[B, U]`` float32
    counts : ``[T * B]`` int32, transmitted deltas per row ``(t, b)``
    units : ``[T * B]`` int64, deltas of magnitude 1 per row
    bad : bool, NaN or inf in ``x``
    """
    n_t, n_b, n_u = x.shape
    k = n_blocks(n_u)
    delta = np.empty_like(x)
    ref_out = np.empty_like(ref0)
    counts = np.empty((n_t, n_b, k), np.int32)
    units = np.empty((n_t, n_b, k), np.int32)
    bad = np.zeros((n_b, k), np.bool_)
    kernel = delta_encode_serial if x.size < SERIAL_BELOW else delta_encode
    kernel(x, ref0, thr, delta, ref_out, counts, units, bad)
    rows = counts.sum(2, dtype=np.int64).astype(np.int32).reshape(-1)
    return delta, ref_out, rows, units.sum(2, dtype=np.int64).reshape(-1), bool(bad.any())
