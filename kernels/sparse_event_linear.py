"""CPU kernels of the sparse-sparse event Linear (torch-free).

The weight is stored ELL with constant fan-in: output ``o`` reads inputs
``indices[o, s]`` with weights ``values[o, s]`` for ``s < k``. An event on input ``i``
must touch only the synapses that input feeds, so each call first builds the
per-input transpose (CSR over inputs: for input ``i``, the ``(out, slot)`` pairs in
``t_out/t_slot[ptr[i]:ptr[i+1]]``). Forward and the value gradient then cost
events × fan-out of the active inputs, never events × out_features.

Fast paths (issue 13; the originals stay as the plain reference kernels):

- :func:`forward_rows` -- the ELL row walk vectorised: one row as SIMD gathers over the
  slots (sum reassociated), several rows in blocks of ``ROWS`` over a transposed input
  block so that each weight is read once per block; indices of any integer dtype
  (uint16 copies halve the index bytes, see ``neurosparse/ops/sparse_event_linear.py``);
- :func:`forward_csc` -- the event walk over a per-input copy of the weights
  (:func:`csc_values`), read sequentially instead of ``values[o, t_slot]`` at random;
- :func:`forward_rows_parallel` -- the row walk split over threads by output chunks.

Everything else is single-threaded on purpose: at batch 1 a parallel region's start-up
(~0.1-0.3 ms with sleeping workers on the 2-core dev VM) costs more than the work; the
caller decides when the parallel row walk pays (``parallel_work`` in the ops module).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange


@numba.njit(cache=True)
def ell_transpose(indices, n_in):
    """Per-input CSR of an ELL ``indices [out, k]`` (int32, entries in ``[0, n_in)``).

    Returns ``ptr`` (int64 ``[n_in + 1]``), ``t_out`` and ``t_slot`` (int32 ``[out*k]``):
    input ``i`` feeds output ``t_out[j]`` through slot ``t_slot[j]`` for
    ``ptr[i] <= j < ptr[i+1]``. Counting sort: O(out·k + n_in).
    """
    n_out, k = indices.shape
    ptr = np.zeros(n_in + 1, np.int64)
    for o in range(n_out):
        for s in range(k):
            ptr[indices[o, s] + 1] += 1
    for i in range(n_in):
        ptr[i + 1] += ptr[i]
    fill = ptr[:-1].copy()
    t_out = np.empty(n_out * k, np.int32)
    t_slot = np.empty(n_out * k, np.int32)
    for o in range(n_out):
        for s in range(k):
            i = indices[o, s]
            j = fill[i]
            t_out[j] = o
            t_slot[j] = s
            fill[i] = j + 1
    return ptr, t_out, t_slot


@numba.njit(cache=True, inline="always")
def _event_walk(x, ptr, t_out, t_slot, values, t_val, bias, y, per_input):
    # the event walk of forward / forward_csc: a weight is t_val[j] (per-input copy) or
    # values[o, t_slot[j]]; per_input is a literal at each call site, so the branch
    # folds away after inlining
    n_rows, n_in = x.shape
    for m in range(n_rows):
        yr = y[m]
        yr[:] = bias
        for i in range(n_in):
            v = x[m, i]
            if v != 0:
                for j in range(ptr[i], ptr[i + 1]):
                    o = t_out[j]
                    yr[o] += v * (t_val[j] if per_input else values[o, t_slot[j]])


@numba.njit(cache=True)
def forward(x, ptr, t_out, t_slot, values, bias, y):
    """``y[m, o] = bias[o] + Σ_s values[o, s] · x[m, indices[o, s]]`` from the events of x.

    x ``[M, n_in]``, values ``[out, k]``, bias ``[out]`` (zeros for none), y ``[M, out]``.
    """
    _event_walk(x, ptr, t_out, t_slot, values, bias, bias, y, False)  # bias: unread t_val


@numba.njit(cache=True)
def forward_gather(x, indices, values, bias, y):
    """Same result as :func:`forward`, row by row over the ELL storage:
    ``y[m, o] = bias[o] + Σ_s values[o, s] · x[m, indices[o, s]]``.

    Touches every synapse whatever the input, but reads the weights in order and writes
    each output once, so it beats the scatter walk on dense-ish inputs.
    """
    n_rows = x.shape[0]
    n_out, k = indices.shape
    for m in range(n_rows):
        xr = x[m]
        for o in range(n_out):
            acc = bias[o]
            for s in range(k):
                acc += values[o, s] * xr[indices[o, s]]
            y[m, o] = acc


@numba.njit(cache=True)
def grad_values(x, gy, ptr, t_out, t_slot, gv):
    """``gv[o, s] = Σ_m x[m, indices[o, s]] · gy[m, o]``: only existing synapses, only
    active inputs (the same event × fan-out walk as :func:`forward`)."""
    n_rows, n_in = x.shape
    gv[:] = 0
    for m in range(n_rows):
        for i in range(n_in):
            v = x[m, i]
            if v != 0:
                for j in range(ptr[i], ptr[i + 1]):
                    o = t_out[j]
                    gv[o, t_slot[j]] += v * gy[m, o]


@numba.njit(cache=True)
def grad_input(gy, indices, values, gx):
    """Dense ``gx[m, i] = Σ_{(o, s): indices[o, s] = i} gy[m, o] · values[o, s]``."""
    n_rows, n_out = gy.shape
    k = indices.shape[1]
    gx[:] = 0
    for m in range(n_rows):
        for o in range(n_out):
            g = gy[m, o]
            if g != 0:
                for s in range(k):
                    gx[m, indices[o, s]] += g * values[o, s]


# -- fast paths (compact indices, cached value copies, two threads) ----------------------
# Sums may be reordered (SIMD gathers, FMA contraction); no NaN/inf assumptions, so a
# NaN weight or input still propagates.
_FM = {"reassoc", "contract"}
# Rows of x gathered together by forward_rows (one 64-byte vector of float32 each: the
# transposed input block xT[i, :ROWS] is read whole per synapse).
ROWS = 16
# Fewer leftover rows than this go one by one: a ROWS-block costs ~12 single-row
# gathers (measured, 4096 -> 4096 at 10 %, dev VM).
BLOCK_MIN = 12


@numba.njit(cache=True)
def compact_indices(indices, out):
    """``out[...] = indices`` into a narrower integer array (caller checks the range)."""
    flat_in = indices.reshape(-1)
    flat_out = out.reshape(-1)
    for j in range(flat_in.size):
        flat_out[j] = flat_in[j]


@numba.njit(cache=True)
def csc_values(values, t_out, t_slot, t_val):
    """``t_val[j] = values[t_out[j], t_slot[j]]``: the weights in per-input order, so the
    event walk of :func:`forward_csc` reads them sequentially."""
    for j in range(t_val.size):
        t_val[j] = values[t_out[j], t_slot[j]]


@numba.njit(cache=True)
def forward_csc(x, ptr, t_out, t_val, bias, y):
    """:func:`forward` over a per-input copy of the weights (``t_val`` of
    :func:`csc_values`): each event reads its fan-out list ``(t_out, t_val)`` in order
    instead of ``values[o, t_slot]`` scattered over the whole weight array."""
    _event_walk(x, ptr, t_out, t_out, y, t_val, bias, y, True)  # t_out, y: unread slots


@numba.njit(cache=True, fastmath=_FM)
def _gather_one(xr, indices, values, bias, yr, o0, o1):
    """``yr[o] = bias[o] + Σ_s values[o, s] · xr[indices[o, s]]`` for ``o0 <= o < o1``:
    the slot loop becomes SIMD gathers from ``xr`` (reassociated sum)."""
    k = indices.shape[1]
    for o in range(o0, o1):
        acc = np.float32(0)
        for s in range(k):
            acc += values[o, s] * xr[indices[o, s]]
        yr[o] = acc + bias[o]


@numba.njit(cache=True)
def _gather_block(xt, indices, values, bias, y, m0, o0, o1):
    """Rows ``m0 : m0 + ROWS`` of y for outputs ``o0 <= o < o1`` from the transposed
    input block ``xt [n_in, ROWS]``: each synapse reads one contiguous 64-byte row of
    ``xt`` and does ROWS multiply-adds, so a weight is read once per block, not per row.

    Sixteen scalar accumulators, spelled out: with an accumulator array (or
    ``fastmath``) LLVM instead vectorised the slot loop into gathers, ~1.4x slower
    (measured on the dev VM's Zen 5 core, 4096 -> 4096 at 10 %).
    """
    k = indices.shape[1]
    nr = min(ROWS, y.shape[0] - m0)
    for o in range(o0, o1):
        a0 = a1 = a2 = a3 = np.float32(0)
        a4 = a5 = a6 = a7 = np.float32(0)
        a8 = a9 = a10 = a11 = np.float32(0)
        a12 = a13 = a14 = a15 = np.float32(0)
        for s in range(k):
            w = values[o, s]
            xr = xt[indices[o, s]]
            a0 += w * xr[0]
            a1 += w * xr[1]
            a2 += w * xr[2]
            a3 += w * xr[3]
            a4 += w * xr[4]
            a5 += w * xr[5]
            a6 += w * xr[6]
            a7 += w * xr[7]
            a8 += w * xr[8]
            a9 += w * xr[9]
            a10 += w * xr[10]
            a11 += w * xr[11]
            a12 += w * xr[12]
            a13 += w * xr[13]
            a14 += w * xr[14]
            a15 += w * xr[15]
        b = bias[o]
        acc = (a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15)
        for r in range(nr):
            y[m0 + r, o] = acc[r] + b


@numba.njit(cache=True)
def _transpose_block(x, m0, xt):
    """``xt[i, r] = x[m0 + r, i]`` (zero past the last row)."""
    n_rows, n_in = x.shape
    nr = min(ROWS, n_rows - m0)
    for i in range(n_in):
        for r in range(nr):
            xt[i, r] = x[m0 + r, i]
        for r in range(nr, ROWS):
            xt[i, r] = 0


@numba.njit(cache=True)
def _row_split(n_rows):
    """Rows handled in ROWS-blocks (a padded last block when at least BLOCK_MIN rows
    remain) and the count of leftover rows done one at a time."""
    full = n_rows - n_rows % ROWS
    rest = n_rows - full
    if rest >= BLOCK_MIN:
        return n_rows, 0
    return full, rest


@numba.njit(cache=True)
def forward_rows(x, indices, values, bias, y):
    """Same result as :func:`forward_gather` (sums reordered), faster.

    Rows go in blocks of ``ROWS``, the block's input transposed so that each synapse's
    inputs across the rows are one contiguous run (:func:`_gather_block`; every weight
    read once per block instead of once per row). Fewer than ``BLOCK_MIN`` leftover
    rows (batch 1: the only row) go one by one, the slot loop as SIMD gathers
    (:func:`_gather_one`). Any integer dtype for ``indices`` (int32, or uint16 to read
    fewer bytes).
    """
    n_rows, n_in = x.shape
    n_out = y.shape[1]
    blocked = _row_split(n_rows)[0]
    if blocked:
        xt = np.empty((n_in, ROWS), np.float32)
        for m0 in range(0, blocked, ROWS):
            _transpose_block(x, m0, xt)
            _gather_block(xt, indices, values, bias, y, m0, 0, n_out)
    for m in range(blocked, n_rows):
        _gather_one(x[m], indices, values, bias, y[m], 0, n_out)


@numba.njit(cache=True, parallel=True)
def forward_rows_parallel(x, indices, values, bias, y, nt):
    """:func:`forward_rows` with the outputs split into ``nt`` contiguous chunks, one
    per thread (each thread reads only its chunk's weights; x is shared, read-only).
    (``nt`` is an argument: calling ``numba.get_num_threads`` inside would stop the
    function from being cached.)"""
    n_rows, n_in = x.shape
    n_out = y.shape[1]
    step = (n_out + nt - 1) // nt
    blocked = _row_split(n_rows)[0]
    n_blocks = blocked // ROWS if blocked % ROWS == 0 else blocked // ROWS + 1
    xts = np.empty((n_blocks, n_in, ROWS), np.float32)
    for b in prange(n_blocks):
        _transpose_block(x, b * ROWS, xts[b])
    for c in prange(nt):
        o0, o1 = c * step, min(n_out, (c + 1) * step)
        for b in range(n_blocks):
            _gather_block(xts[b], indices, values, bias, y, b * ROWS, o0, o1)
        for m in range(blocked, n_rows):
            _gather_one(x[m], indices, values, bias, y[m], o0, o1)
