"""Event Conv2d kernels on the CPU (torch-free): scatter each event's kernel footprint.

Events come as compressed rows over input image rows (``kernels/event_index.py``: row
``n * H + y``, column id ``c * W + x``). An event at ``(c, y, x)`` with value ``v`` adds
``v · W[o, c', ky, kx]`` to every output ``(o, oy, ox)`` of its group with
``oy·s - p + ky = y`` and ``ox·s - p + kx = x`` -- its footprint, clipped at the borders.

The forward is *output-row stationary*: a work item owns one output row ``(n, oy)`` and
keeps it in a small channels-last buffer ``acc[Wo, O]`` (L1/L2 resident) while it pulls
the events of the ``kh`` input rows that reach it; the innermost loop runs over the
group's output channels, contiguous in the packed weight ``Wp[C, kh, kw, O/groups]``.
The finished row is written once, transposed, into the NCHW output, so the output is
never zeroed or permuted as a whole.

The weight gradient runs the same footprint loop with the roles swapped,
``gWp[c, ky, kx, :] += v · g[n, oy, ox, group]`` (``g`` channels-last), each thread into
its own copy of the (small) packed weight; the copies are summed at the end.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._serial import serial_twin
from .event_linear import SERIAL_BELOW_MACS


@numba.njit(cache=True)
def _span(i, pad, k, s, n_out):
    # outputs o (0 <= o < n_out) with o*s - pad + kk = i for some tap 0 <= kk < k
    num = i + pad - k + 1
    lo = -((-num) // s) if num > 0 else 0
    hi = min(n_out - 1, (i + pad) // s) if i + pad >= 0 else -1
    return lo, hi


@numba.njit(cache=True)
def footprint_counts(n_in, pad, k, s, n_out):
    """``out[i]``: outputs along one axis that input ``i`` reaches (borders clip it)."""
    out = np.empty(n_in, np.int32)
    for i in range(n_in):
        lo, hi = _span(i, pad, k, s, n_out)
        out[i] = max(0, hi - lo + 1)
    return out


@numba.njit(cache=True, inline="always")
def _event(idx, val, j, w, cg, og, pw, kw, sw, wo):
    """Event ``j`` of an input row: its channel ``c``, column ``x``, value, first output
    channel of its group, and the output columns ``lo..hi`` its kernel row reaches."""
    col = idx[j]
    c = col // w
    x = col - c * w
    lo, hi = _span(x, pw, kw, sw, wo)
    return c, x, val[j], (c // cg) * og, lo, hi


@numba.njit(parallel=True, cache=True)
def conv_forward(rowptr, idx, val, wp, bias, out, h, w, sh, sw, ph, pw, n_chunks):
    """``out[N, O, Ho, Wo]`` (fully written) from the events and packed weight.

    ``wp[C, kh, kw, Og]``: ``wp[c, ky, kx, j] = W[group(c)·Og + j, c mod Cg, ky, kx]``;
    ``bias[O]`` (zeros for none).
    """
    n, o_all, ho, wo = out.shape
    c_all, kh, kw, og = wp.shape
    cg = c_all // (o_all // og)
    items = n * ho
    step = (items + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        acc = np.empty((wo, o_all), np.float32)
        for item in range(ch * step, min(items, (ch + 1) * step)):
            b = item // ho
            oy = item - b * ho
            for ox in range(wo):
                for o in range(o_all):
                    acc[ox, o] = bias[o]
            for ky in range(kh):
                y = oy * sh - ph + ky
                if y < 0 or y >= h:
                    continue
                r = b * h + y
                for j in range(rowptr[r], rowptr[r + 1]):
                    c, x, v, o0, lo, hi = _event(idx, val, j, w, cg, og, pw, kw, sw, wo)
                    for ox in range(lo, hi + 1):
                        wrow = wp[c, ky, x + pw - ox * sw]
                        a = acc[ox, o0 : o0 + og]
                        for o in range(og):
                            a[o] += v * wrow[o]
            for o in range(o_all):
                for ox in range(wo):
                    out[b, o, oy, ox] = acc[ox, o]


# Streaming calls (one frame of a DVS camera: a few dozen events) are too small to pay for
# a parallel region (~0.2 ms to start on the 2-core VM when quiet, more when its cores
# are busy): they run this twin, compiled without threads from the same function (the
# same sums in the same order: same bits).
conv_forward_serial = serial_twin(conv_forward)


def forward(rowptr, idx, val, wp, bias, out, h, w, sh, sw, ph, pw, n_chunks) -> None:
    """:func:`conv_forward`, single-threaded when the call's multiply-adds (an upper
    bound: events x footprint x output channels of a group, plus the output written)
    are fewer than :data:`~kernels.event_linear.SERIAL_BELOW_MACS`."""
    _, kh, kw, og = wp.shape
    macs = int(rowptr[-1]) * -(-kh // sh) * -(-kw // sw) * og + out.size
    kernel = conv_forward_serial if macs < SERIAL_BELOW_MACS else conv_forward
    kernel(rowptr, idx, val, wp, bias, out, h, w, sh, sw, ph, pw, n_chunks)


@numba.njit(parallel=True, cache=True)
def conv_grad_weight(rowptr, idx, val, g, h, w, sh, sw, ph, pw, partial):
    """``partial[t, C, kh, kw, Og]``: per-thread sums of ``v · g[n, oy, ox, group]``.

    ``g`` is the output gradient channels-last ``[N, Ho, Wo, O]``; ``partial`` must be
    zero; its sum over ``t`` is the packed weight gradient.
    """
    n, ho, wo, o_all = g.shape
    n_chunks, c_all, kh, kw, og = partial.shape
    cg = c_all // (o_all // og)
    rows = n * h
    step = (rows + n_chunks - 1) // n_chunks
    for ch in prange(n_chunks):
        buf = partial[ch]
        for r in range(ch * step, min(rows, (ch + 1) * step)):
            b = r // h
            y = r - b * h
            ylo, yhi = _span(y, ph, kh, sh, ho)
            for j in range(rowptr[r], rowptr[r + 1]):
                c, x, v, o0, xlo, xhi = _event(idx, val, j, w, cg, og, pw, kw, sw, wo)
                for oy in range(ylo, yhi + 1):
                    ky = y + ph - oy * sh
                    for ox in range(xlo, xhi + 1):
                        grow = g[b, oy, ox, o0 : o0 + og]
                        dst = buf[c, ky, x + pw - ox * sw]
                        for o in range(og):
                            dst[o] += v * grow[o]


def pack_weight(weight: np.ndarray, groups: int) -> np.ndarray:
    """``[O, Cg, kh, kw]`` (nn.Conv2d layout) -> ``[C, kh, kw, Og]`` (see conv_forward)."""
    o, cg, kh, kw = weight.shape
    og = o // groups
    wp = weight.reshape(groups, og, cg, kh, kw).transpose(0, 2, 3, 4, 1)
    return np.ascontiguousarray(wp.reshape(groups * cg, kh, kw, og))


def unpack_weight(wp: np.ndarray, groups: int) -> np.ndarray:
    """Inverse of :func:`pack_weight`."""
    c, kh, kw, og = wp.shape
    cg = c // groups
    w = wp.reshape(groups, cg, kh, kw, og).transpose(0, 4, 1, 2, 3)
    return np.ascontiguousarray(w.reshape(groups * og, cg, kh, kw))
