"""Row-gather kernels of the event Linear on the CPU (torch-free).

Forward: ``y[m, :] = b + Σ_{k active in m} x[m, k] · Wᵀ[k, :]`` -- the sum of the weight
rows of the inputs that spiked. Weight gradient: ``gWᵀ[k, :] = Σ_{m: k active in m}
x[m, k] · g[m, :]`` -- the same gather over the transposed event lists. Both run
:func:`gather_rows` over column tiles of the source (tile ``t`` = columns
``t*TW : (t+1)*TW`` of all ``R`` rows): one tile is a few MiB, stays in cache while every
event of the call is gathered from it, and each gathered row segment is one contiguous,
vectorisable run. Threads split the (tile, row block) pairs in tile-major order, so each
thread streams through whole tiles. The forward reads ``Wᵀ`` in place (``EventLinear``
stores its weight transposed, so no packed copy exists that could go stale); the weight
gradient packs the output gradient into contiguous tiles (:func:`pack_rows`), once per
call.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._serial import serial_twin

# One source tile: up to 2 MiB. On the 2-core Intel Xeon VM (2 MiB L2; 3200 x 4096 rows at
# 1 %, 4096² weight, same process, 15 alternating runs under load): 128-wide tiles (2 MiB)
# 87.8 ms, 256-wide (4 MiB) 95.8 ms, 64-wide (1 MiB) 115.9 ms. (On the earlier AMD EPYC VM
# 256-wide tiles had won: the best width follows the core's L2; outputs do not depend on
# it, each column's sum runs over the same events in the same order.)
_TILE_BYTES = 1 << 21
_MAX_TW = 256
_ROW_BLOCK = 512  # rows of one parallel work item (keeps work items many on few tiles)


def tile_width(n_src_rows: int, n_cols: int) -> int:
    """Columns per tile: a multiple of 16 floats (one AVX-512 vector) fitting the budget."""
    tw = _TILE_BYTES // (4 * max(1, n_src_rows))
    tw = max(16, min(_MAX_TW, tw - tw % 16))
    return min(tw, -(-n_cols // 16) * 16)


@numba.njit(parallel=True, cache=True)
def pack_tiles(src, tw, out):
    """``out[t, r, c] = src[r, t*tw + c]`` (zero past the last column); src [R, N].

    Row-major over the source (each source row read once, in order): 1.5x faster than
    tile-major on a 4096² source, whose tile-major reads step a whole row at a time.
    """
    n_r, n = src.shape
    n_t = out.shape[0]
    for r in prange(n_r):
        for t in range(n_t):
            c0 = t * tw
            w = min(tw, n - c0)
            for c in range(w):
                out[t, r, c] = src[r, c0 + c]
            for c in range(w, tw):
                out[t, r, c] = 0


@numba.njit(cache=True, inline="always")
def _accumulate_at(o, src, c0, idx, val, j0, j1):
    # o += Σ_j val[j] · src[idx[j], c0:c0+len(o)], four events per pass: four independent
    # products are summed before touching o, which cuts the store-to-load chain through
    # o by 4× (measured 1.5× faster than one event per pass).
    # The rows are sliced to [c0, c0 + w) and indexed from 0: with an offset index the
    # loop kept index arithmetic and wrap-around checks and did not vectorise.
    w = o.shape[0]
    c1 = c0 + w
    j = j0
    while j + 4 <= j1:
        t0 = src[idx[j], c0:c1]
        t1 = src[idx[j + 1], c0:c1]
        t2 = src[idx[j + 2], c0:c1]
        t3 = src[idx[j + 3], c0:c1]
        v0 = val[j]
        v1 = val[j + 1]
        v2 = val[j + 2]
        v3 = val[j + 3]
        for c in range(w):
            o[c] += (v0 * t0[c] + v1 * t1[c]) + (v2 * t2[c] + v3 * t3[c])
        j += 4
    while j < j1:
        t0 = src[idx[j], c0:c1]
        v0 = val[j]
        for c in range(w):
            o[c] += v0 * t0[c]
        j += 1


@numba.njit(cache=True, inline="always")
def _accumulate(o, tile, idx, val, j0, j1):
    # o += Σ_j val[j] · tile[idx[j], :len(o)]
    _accumulate_at(o, tile, 0, idx, val, j0, j1)


@numba.njit(cache=True, inline="always")
def column_tile(src, tw, n, t):
    """Work item ``t``'s columns of a source as :func:`gather_rows` takes it: ``(c0, w,
    tile, cs)`` -- output columns ``c0 : c0 + w``, read from ``tile[:, cs : cs + w]``."""
    w_src = src.shape[2]
    c0 = t * tw
    s = c0 // w_src
    return c0, min(tw, n - c0), src[s], c0 - s * w_src


@numba.njit(parallel=True, cache=True)
def gather_rows(rowptr, idx, val, src, tw, bias, out, transpose_out):
    """``out[r, n] = bias[n] + Σ_j val[j] · src[idx[j], n]`` over row ``r``'s events.

    Parameters
    ----------
    rowptr, idx, val : CSR event lists (int64, int32, float32) of ``n_rows`` rows.
    src : float32 ``[S, R_src, W]``, C-contiguous: column ``n`` of the source is column
        ``n % W`` of ``src[n // W]``. Either the column-tiled copy of
        :func:`pack_tiles` (``W = tw``) or a plain row-major source as ``[1, R_src, N]``
        (``Wᵀ`` of a weight stored transposed, read in place).
    tw : int
        Columns per work item (a divisor of ``W``; :func:`tile_width`).
    bias : float32 ``[>= N]`` (zeros for none).
    out : float32 ``[n_rows, N]``, or ``[N, n_rows]`` when ``transpose_out``.
    """
    n_rows = rowptr.shape[0] - 1
    n = out.shape[0] if transpose_out else out.shape[1]
    n_t = (n + tw - 1) // tw
    n_rb = (n_rows + _ROW_BLOCK - 1) // _ROW_BLOCK
    for item in prange(n_t * n_rb):
        t = item // n_rb
        rb = item - t * n_rb
        c0, w, tile, cs = column_tile(src, tw, n, t)
        buf = np.empty(w, np.float32)
        for r in range(rb * _ROW_BLOCK, min((rb + 1) * _ROW_BLOCK, n_rows)):
            # accumulate straight into the output row when it is contiguous
            o = buf if transpose_out else out[r, c0 : c0 + w]
            for c in range(w):
                o[c] = bias[c0 + c]
            _accumulate_at(o, tile, cs, idx, val, rowptr[r], rowptr[r + 1])
            if transpose_out:
                for c in range(w):
                    out[c0 + c, r] = o[c]


# The same gather without threads, for calls too small to pay for a parallel region
# (~0.2 ms to start on the 2-core VM when quiet, several ms when its cores are busy with
# other work: the region waits until every worker is scheduled).
gather_rows_serial = serial_twin(gather_rows)
SERIAL_BELOW_MACS = 1 << 20


def gather(rowptr, idx, val, src, tw, bias, out, transpose_out) -> None:
    """:func:`gather_rows`, single-threaded when the call has fewer than
    :data:`SERIAL_BELOW_MACS` multiply-adds (events x output columns)."""
    n = out.shape[0] if transpose_out else out.shape[1]
    small = int(rowptr[-1]) * n < SERIAL_BELOW_MACS
    (gather_rows_serial if small else gather_rows)(rowptr, idx, val, src, tw, bias, out,
                                                   transpose_out)  # fmt: skip


def packed_shape(n_src_rows: int, n_cols: int) -> tuple[int, int, int]:
    tw = tile_width(n_src_rows, n_cols)
    return (-(-n_cols // tw), n_src_rows, tw)


def pack_rows(src: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Tiles of a row-major ``[R, N]`` source (``Wᵀ``, the output gradient), written
    into ``out`` (float32 of :func:`packed_shape`) when given."""
    n_r, n = src.shape
    if out is None:
        out = np.empty(packed_shape(n_r, n), np.float32)
    pack_tiles(src, out.shape[2], out)
    return out


def padded_bias(bias: np.ndarray | None, tiles: np.ndarray) -> np.ndarray:
    n_pad = tiles.shape[0] * tiles.shape[2]
    out = np.zeros(n_pad, np.float32)
    if bias is not None:
        out[: bias.shape[0]] = bias
    return out
