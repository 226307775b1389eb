"""Recurrent half of the delta GRU / LSTM on the GPU (numba.cuda; torch-free).

CUDA twin of ``kernels/delta_rnn.py`` (same equations, see there). One thread block
owns one sample for the whole sequence -- a persistent kernel, one launch for all ``T``
steps, with the hidden state and its references in shared memory. Per step:

1. each thread compares a contiguous segment of hidden units with their references and
   counts its sends; a block-wide scan of the counts (Hillis–Steele, in shared memory)
   gives every thread its slot, so the list of sent ``(unit, Δh)`` is written in unit
   order -- deterministic, no atomics;
2. each thread owns hidden units ``i = tid + k·THREADS`` and sums, for each gate, the
   sent deltas times ``W_hhᵀ[unit, gate·H + i]``: the threads of a warp read 32 adjacent
   floats of one weight row, so every load is coalesced, and only the rows of units that
   sent are read at all;
3. the gates update the owned units (recurrent memory in float64 registers).

Hidden sizes up to ``MAX_HIDDEN`` (the shared-memory lists are sized at compile time).
"""

from __future__ import annotations

import math

from numba import config, cuda, float32, float64, int32

from . import _launch

# the simulator runs each thread as a Python thread: a small block keeps it quick and makes
# the tests exercise several owned units per thread with small hidden sizes
THREADS = 32 if config.ENABLE_CUDASIM else 256
MAX_HIDDEN = 1024
_PER_THREAD = MAX_HIDDEN // THREADS  # owned units per thread
_MAX_GATES = 4
_MH_LEN = _PER_THREAD * _MAX_GATES  # local arrays need a constant size, not an expression


@cuda.jit(device=True, inline=True)
def _sigmoid(v):
    return float32(1) / (float32(1) + math.exp(-v))


@cuda.jit
def rnn_sequence(mx, wt, thr, h0, c0, href0, mh0, cell, h_seq, dh, c_out, href_out, mh_out,
                 counts):  # fmt: skip
    """Same arguments and outputs as ``kernels/delta_rnn.py:rnn_sequence``; grid = B."""
    n_t, _, gh = mx.shape
    n_h = wt.shape[0]
    n_g = gh // n_h
    b = cuda.blockIdx.x
    tid = cuda.threadIdx.x
    h_s = cuda.shared.array(MAX_HIDDEN, float32)
    href_s = cuda.shared.array(MAX_HIDDEN, float32)
    idx_s = cuda.shared.array(MAX_HIDDEN, int32)
    val_s = cuda.shared.array(MAX_HIDDEN, float32)
    scan_s = cuda.shared.array(THREADS, int32)
    mh = cuda.local.array(_MH_LEN, float64)
    c = cuda.local.array(_PER_THREAD, float32)
    seg = (n_h + THREADS - 1) // THREADS
    u0 = min(n_h, tid * seg)
    u1 = min(n_h, u0 + seg)
    for u in range(tid, n_h, THREADS):
        h_s[u] = h0[b, u]
        href_s[u] = href0[b, u]
    for k in range(_PER_THREAD):
        i = tid + k * THREADS
        if i < n_h:
            c[k] = c0[b, i]
            for g in range(n_g):
                mh[k * _MAX_GATES + g] = mh0[b, g * n_h + i]
    cuda.syncthreads()
    for t in range(n_t):
        # 1. count this thread's sends, scan the counts across the block
        mine = int32(0)
        for u in range(u0, u1):
            d = h_s[u] - href_s[u]
            if abs(d) > thr[u]:
                mine += 1
        scan_s[tid] = mine
        cuda.syncthreads()
        step = 1
        while step < THREADS:
            add = scan_s[tid - step] if tid >= step else int32(0)
            cuda.syncthreads()
            scan_s[tid] += add
            cuda.syncthreads()
            step *= 2
        total = scan_s[THREADS - 1]
        pos = scan_s[tid] - mine
        for u in range(u0, u1):
            d = h_s[u] - href_s[u]
            if abs(d) > thr[u]:
                idx_s[pos] = u
                val_s[pos] = d
                dh[t, b, u] = d
                href_s[u] = h_s[u]
                pos += 1
            else:
                dh[t, b, u] = float32(0)
        if tid == 0:
            counts[t, b] = total
        cuda.syncthreads()
        # 2.-3. gather the sent rows for the owned units, then the gates
        for k in range(_PER_THREAD):
            i = tid + k * THREADS
            if i < n_h:
                a0 = float32(0)
                a1 = float32(0)
                a2 = float32(0)
                a3 = float32(0)
                for j in range(total):
                    row = idx_s[j]
                    v = val_s[j]
                    a0 += v * wt[row, i]
                    a1 += v * wt[row, n_h + i]
                    a2 += v * wt[row, 2 * n_h + i]
                    if n_g == 4:
                        a3 += v * wt[row, 3 * n_h + i]
                base = k * _MAX_GATES
                mh[base] += a0
                mh[base + 1] += a1
                mh[base + 2] += a2
                mh[base + 3] += a3
                m0 = mx[t, b, i] + float32(mh[base])
                m1 = mx[t, b, n_h + i] + float32(mh[base + 1])
                if cell == 0:
                    r = _sigmoid(m0)
                    z = _sigmoid(m1)
                    g = math.tanh(mx[t, b, 2 * n_h + i] + r * float32(mh[base + 2]))
                    hn = (float32(1) - z) * g + z * h_s[i]
                else:
                    g = math.tanh(mx[t, b, 2 * n_h + i] + float32(mh[base + 2]))
                    og = _sigmoid(mx[t, b, 3 * n_h + i] + float32(mh[base + 3]))
                    c[k] = _sigmoid(m1) * c[k] + _sigmoid(m0) * g
                    hn = og * math.tanh(c[k])
                h_seq[t, b, i] = hn
                h_s[i] = hn  # step 1 of this step is done: only this thread reads h_s[i] now
        cuda.syncthreads()
    for k in range(_PER_THREAD):
        i = tid + k * THREADS
        if i < n_h:
            c_out[b, i] = c[k]
            href_out[b, i] = href_s[i]
            for g in range(n_g):
                mh_out[b, g * n_h + i] = mh[k * _MAX_GATES + g]


def launch(mx, wt, thr, h0, c0, href0, mh0, cell, h_seq, dh, c_out, href_out, mh_out, counts,
           stream) -> None:  # fmt: skip
    """Launch :func:`rnn_sequence`, one block per sample (device arrays)."""
    n_b = mx.shape[1]
    if wt.shape[0] > MAX_HIDDEN:
        raise ValueError(f"hidden size {wt.shape[0]} exceeds the CUDA kernel's {MAX_HIDDEN}")
    if n_b == 0 or mx.shape[0] == 0:
        return
    _launch.launch(rnn_sequence, n_b, THREADS, stream, mx, wt, thr, h0, c0, href0, mh0, cell,
                   h_seq, dh, c_out, href_out, mh_out, counts)  # fmt: skip
