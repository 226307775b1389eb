"""Event index lists built on the GPU (numba.cuda; torch-free, no host round trip).

CUDA twin of ``kernels/event_index.py``. One block per row ``r = p * Q + q`` of a
C-contiguous ``x[P, A, Q, B]`` compacts the row's non-zero elements (column id
``b * A + a``) into an ELL slot of capacity ``A * B`` (``start[r] = r*A*B``, ``cnt[r]``
used). ELL needs no global prefix sum, so the total count never has to reach
the host before the next kernel launches. The row is read once, in tiles (a count, a
block-wide exclusive scan in shared memory, a write); with ``boff`` the kernel also
records where each ``b`` starts (the event Conv2d looks up the events of an x-window
that way). Statistics (events, weighted ±1 and graded events, NaN/inf) are written per
row (no atomic counter that every block would queue on).

Kernels use shared memory and ``syncthreads`` only (no warp shuffles), so they run in
the Numba CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) for tests.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, cuda, int64

from . import _launch

# Threads per block of the row kernels. The simulator runs one
# Python thread per CUDA thread, so tests use 32 (any power of two works).
TPB = 32 if config.ENABLE_CUDASIM else 256
# Elements per thread and tile of the row kernel: a 4096-wide row is one tile, so one
# block scan (and its barriers) per 4096 elements, and 16 loads in flight per thread.
EPT = 16


@cuda.jit(device=True)
def _block_exclusive_scan(s, t, value):
    """Exclusive prefix sum of ``value`` over the block (Hillis-Steele in ``s``);
    returns (exclusive, total)."""
    s[t] = value
    cuda.syncthreads()
    offset = 1
    n = s.shape[0]
    while offset < n:
        add = s[t - offset] if t >= offset else 0
        cuda.syncthreads()
        s[t] += add
        cuda.syncthreads()
        offset *= 2
    incl = s[t]
    total = s[n - 1]
    cuda.syncthreads()
    return incl - value, total


@cuda.jit(device=True)
def _element(x, row_base, e, n_a, plane):
    # element e = b·A + a of a row of x[P, A, Q, B] (flattened); plane = Q·B
    if n_a == 1:
        return x[row_base + e]
    b = e // n_a
    return x[row_base + (e - b * n_a) * plane + b]


@cuda.jit
def ell_rows(x, roww, colw, weighted, idx, val, cnt, start, boff, want_boff, rowstats):
    """Compact row ``blockIdx.x`` of ``x[P, A, Q, B]`` (see module docstring).

    The row's ``A·B`` elements are taken in tiles of ``TPB·EPT``: each thread takes
    ``EPT`` of them, counts its events, a block scan gives it a contiguous range of slots
    after the previous tiles' events, and it writes them. With ``want_boff`` a thread
    takes ``EPT`` neighbours, so the row's events come out sorted by column id ``b·A + a``
    (the event Conv2d looks up x-windows); without, it takes every ``TPB``-th element
    (coalesced loads) and the events come out grouped by thread -- a fixed order, which
    the gathers do not care about.
    ``roww[Q]``, ``colw[B]`` weigh the statistics when ``weighted`` (else weight 1);
    ``rowstats[r]`` gets the row's weighted ±1 and graded events and a NaN/inf flag
    (per row, not one atomic counter: thousands of blocks adding to one address
    serialise). With ``want_boff``, ``boff [P*Q, B+1]`` gets where each ``b`` starts.
    """
    r = cuda.blockIdx.x
    t = cuda.threadIdx.x
    n_p, n_a, n_q, n_b = x.shape
    p = r // n_q
    q = r - p * n_q
    length = n_a * n_b
    # flat indexing: fewer integer instructions per element than 4-D subscripts (ncu
    # counted ~7.5 instructions per element and row step on the H200)
    xf = x.reshape(x.size)
    plane = n_q * n_b
    row_base = p * n_a * plane + q * n_b
    base = r * length
    rw = roww[q] if weighted else 1
    s = cuda.shared.array(TPB, int64)
    u = 0
    g = 0
    bad = 0
    pos0 = base
    step = 1 if want_boff else TPB
    for e0 in range(0, length, TPB * EPT):
        first = e0 + (t * EPT if want_boff else t)
        n = 0
        for i in range(EPT):
            e = first + i * step
            if e >= length:
                break
            v = abs(_element(xf, row_base, e, n_a, plane))
            if v != 0:
                n += 1
                wb = colw[e // n_a] if weighted else 1
                if v == 1:
                    u += wb
                else:
                    g += wb
                if not v < math.inf:
                    bad = 1
        excl, total = _block_exclusive_scan(s, t, n)
        pos = pos0 + excl
        for i in range(EPT):
            e = first + i * step
            if e >= length:
                break
            if want_boff and e % n_a == 0:
                boff[r, e // n_a] = pos
            v = _element(xf, row_base, e, n_a, plane)  # again: an L1 hit
            if v != 0:
                idx[pos] = e
                val[pos] = v
                pos += 1
        pos0 += total
    _, u_all = _block_exclusive_scan(s, t, u)
    _, g_all = _block_exclusive_scan(s, t, g)
    any_bad = cuda.syncthreads_or(bad)
    if t == 0:
        cnt[r] = pos0 - base
        start[r] = base
        if want_boff:
            boff[r, n_b] = pos0
        rowstats[r, 0] = u_all * rw
        rowstats[r, 1] = g_all * rw
        rowstats[r, 2] = 1 if any_bad else 0


def grid_1d(n: int, tpb: int = TPB) -> int:
    return max(1, (n + tpb - 1) // tpb)


def build_ell(x, alloc, stream, roww=None, colw=None, with_boff=False):
    """Launch :func:`ell_rows` on ``x[P, A, Q, B]`` (device array).

    ``alloc(shape, dtype, zero)`` returns device arrays (zero-filled when ``zero``).
    ``roww [Q]`` and ``colw [B]`` (int64 device arrays, both or neither) weigh the
    ±1/graded statistics. Returns ``(idx, val, cnt, start, boff, rowstats)``: the events
    of a row are the ``cnt[r]`` slots from ``start[r]``; summing ``cnt`` and the columns of
    ``rowstats [rows, 3]`` gives events, weighted ±1 events, weighted graded events and
    the number of rows holding a NaN/inf (:func:`summary` does it).
    """
    n_p, n_a, n_q, n_b = x.shape
    rows = n_p * n_q
    cap = max(1, x.size)
    idx = alloc((cap,), np.int32, False)
    val = alloc((cap,), np.float32, False)
    cnt = alloc((max(1, rows),), np.int64, rows == 0)
    start = alloc((max(1, rows),), np.int64, False)
    rowstats = alloc((max(1, rows), 3), np.int64, rows == 0)
    # unused arguments get an array of the right type that is not read: every device
    # array costs ~20 µs of host time (measured on the H200 host)
    boff = alloc((rows, n_b + 1), np.int64, False) if with_boff else rowstats
    if rows:
        weighted = roww is not None
        _launch.launch(ell_rows, rows, TPB, stream, x, roww if weighted else cnt,
                       colw if weighted else cnt, weighted, idx, val, cnt, start, boff,
                       with_boff, rowstats)  # fmt: skip
    return idx, val, cnt, start, boff, rowstats


def summary(cnt, rowstats) -> tuple[int, int, int, int]:
    """Host-side totals ``(events, ±1, graded, rows with NaN/inf)`` of :func:`build_ell`
    outputs given as NumPy arrays (copy them from the device first)."""
    s = rowstats.sum(0)
    return int(cnt.sum()), int(s[0]), int(s[1]), int(s[2])
