"""CPU kernels of the sparse-sparse event Linear (torch-free).

The weight is stored ELL with constant fan-in: output ``o`` reads inputs
``indices[o, s]`` with weights ``values[o, s]`` for ``s < k``. An event on input ``i``
must touch only the synapses that input feeds, so each call first builds the
per-input transpose (CSR over inputs: for input ``i``, the ``(out, slot)`` pairs in
``t_out/t_slot[ptr[i]:ptr[i+1]]``). Forward and the value gradient then cost
events × fan-out of the active inputs, never events × out_features.

Single-threaded on purpose: the target is batch-1 online inference, where a parallel
region's start-up costs more than the work (and its compile time slows every first use).
"""

from __future__ import annotations

import numba
import numpy as np


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


@numba.njit(cache=True)
def forward(x, ptr, t_out, t_slot, values, bias, y):
    """``y[m, o] = bias[o] + Σ_s values[o, s] · x[m, indices[o, s]]`` from the events of x.

    x ``[M, n_in]``, values ``[out, k]``, bias ``[out]`` (zeros for none), y ``[M, out]``.
    """
    n_rows, n_in = x.shape
    n_out = y.shape[1]
    for m in range(n_rows):
        for o in range(n_out):
            y[m, o] = bias[o]
        for i in range(n_in):
            v = x[m, i]
            if v != 0:
                for j in range(ptr[i], ptr[i + 1]):
                    o = t_out[j]
                    y[m, o] += v * values[o, t_slot[j]]


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
