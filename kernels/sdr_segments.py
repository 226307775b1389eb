"""Active-dendrite segment activation for the CPU (``numba.njit(parallel=True)``).

Each of ``U`` units owns ``S`` dendritic segments, each a weight vector over a
context of ``D`` values: ``d[m, u, s] = Σ_j W[u, s, j] · c[m, j]``. A unit keeps only
its best-matching segment (largest ``d``, or largest ``|d|`` with ``absmax``) and
returns that segment's signed value and index. The kernel never materialises the
``[M, U, S]`` tensor and, because contexts are usually sparse (one-hot task codes,
SDRs), walks only the non-zero context entries: cost ``M · U · S · nnz(c)`` instead
of ``M · U · S · D``.

The backward pass touches only the winning segment of each (sample, unit): the
gradient of every other segment is zero.

Each kernel has a threaded (``prange``) and a one-thread twin built from one shared
inline body; the caller picks by the amount of work (``PARALLEL_MIN_WORK``).

Ties keep the lowest segment index (as ``torch.argmax`` does). NaN activations are never
chosen: callers with NaN inputs use the reference, where ``argmax`` picks the first NaN.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Above this fraction of non-zeros a plain contiguous dot beats the gather loop.
DENSE_FRACTION = 0.25
# Below this many multiply-adds a call runs on one thread: handing tiny calls to a
# thread pool costs more than it saves and fights torch's own threads.
PARALLEL_MIN_WORK = 1 << 18


@njit(cache=True)
def _nonzeros(row, nz):
    k = 0
    for j in range(row.shape[0]):
        if row[j] != 0:
            nz[k] = j
            k += 1
    return k


@njit(inline="always", cache=True)
def _forward_row(m, context, weights, absmax, value, index, nz):
    D = context.shape[1]
    U, S, _ = weights.shape
    k = _nonzeros(context[m], nz)
    dense = k > DENSE_FRACTION * D
    for u in range(U):
        best = context.dtype.type(0)
        best_key = -np.inf
        best_s = 0
        for s in range(S):
            acc = context.dtype.type(0)
            w = weights[u, s]
            if dense:
                for j in range(D):
                    acc += w[j] * context[m, j]
            else:
                for q in range(k):
                    j = nz[q]
                    acc += w[j] * context[m, j]
            key = abs(acc) if absmax else acc
            # a plain ">": NaN keys are never chosen, so the caller routes NaN inputs to
            # the reference (ops/sdr_dendrites.py); a NaN-aware test here cost 1.3-1.9x
            # on the benchmark's sizes
            if key > best_key:
                best_key = key
                best = acc
                best_s = s
        value[m, u] = best
        index[m, u] = best_s


@njit(parallel=True, cache=True)
def segment_forward(context, weights, absmax, value, index):
    """Best segment per (sample, unit); threads split the samples.

    Parameters
    ----------
    context : [M, D] float array
    weights : [U, S, D] float array (same dtype)
    absmax : bool
        Select by ``|d|`` (True) or by ``d`` (False).
    value : [M, U] output, the selected segment's signed activation
    index : [M, U] int64 output, the selected segment
    """
    for m in prange(context.shape[0]):
        nz = np.empty(context.shape[1], np.int64)
        _forward_row(m, context, weights, absmax, value, index, nz)


@njit(cache=True)
def segment_forward_serial(context, weights, absmax, value, index):
    """:func:`segment_forward` on one thread (small calls: no thread-pool hand-off)."""
    nz = np.empty(context.shape[1], np.int64)
    for m in range(context.shape[0]):
        _forward_row(m, context, weights, absmax, value, index, nz)


@njit(inline="always", cache=True)
def _backward_context_row(m, grad_value, index, weights, grad_context):
    U = grad_value.shape[1]
    D = weights.shape[2]
    for j in range(D):
        grad_context[m, j] = 0
    for u in range(U):
        g = grad_value[m, u]
        if g == 0:
            continue
        w = weights[u, index[m, u]]
        for j in range(D):
            grad_context[m, j] += g * w[j]


@njit(parallel=True, cache=True)
def segment_backward_context(grad_value, index, weights, grad_context):
    """``grad_context[m, j] = Σ_u g[m, u] · W[u, index[m, u], j]``; threads split samples."""
    for m in prange(grad_value.shape[0]):
        _backward_context_row(m, grad_value, index, weights, grad_context)


@njit(cache=True)
def segment_backward_context_serial(grad_value, index, weights, grad_context):
    """:func:`segment_backward_context` on one thread."""
    for m in range(grad_value.shape[0]):
        _backward_context_row(m, grad_value, index, weights, grad_context)


@njit(inline="always", cache=True)
def _backward_weights_unit(u, grad_value, index, context, grad_weights, nz, cnt):
    gw = grad_weights[u]
    gw[:] = 0
    for m in range(grad_value.shape[0]):
        g = grad_value[m, u]
        if g == 0:
            continue
        row = gw[index[m, u]]
        for q in range(cnt[m]):
            j = nz[m, q]
            row[j] += g * context[m, j]


@njit(cache=True)
def _all_nonzeros(context):
    M, D = context.shape
    nz = np.empty((M, D), np.int64)
    cnt = np.empty(M, np.int64)
    for m in range(M):
        cnt[m] = _nonzeros(context[m], nz[m])
    return nz, cnt


@njit(parallel=True, cache=True)
def segment_backward_weights(grad_value, index, context, grad_weights):
    """``grad_W[u, index[m, u], j] += g[m, u] · c[m, j]``; threads split the units."""
    nz, cnt = _all_nonzeros(context)
    for u in prange(grad_value.shape[1]):
        _backward_weights_unit(u, grad_value, index, context, grad_weights, nz, cnt)


@njit(cache=True)
def segment_backward_weights_serial(grad_value, index, context, grad_weights):
    """:func:`segment_backward_weights` on one thread."""
    nz, cnt = _all_nonzeros(context)
    for u in range(grad_value.shape[1]):
        _backward_weights_unit(u, grad_value, index, context, grad_weights, nz, cnt)
