"""Event Conv2d kernels on the GPU (numba.cuda; torch-free).

CUDA twin of ``kernels/event_conv2d.py``, written as gathers so that no two threads
write one address (no atomics, results do not vary between runs):

- forward: one thread per output ``(n, o, oy, ox)``, ``ox`` fastest (coalesced stores).
  The events are indexed per input image row ``(n, y)`` in ``(x, c)`` order with the
  offset of every ``x`` (``boff`` of ``kernels/event_index_cuda.py``), so the events in
  a thread's window ``x ∈ [ox·s - p, ox·s - p + kw)`` of row ``y`` are one contiguous
  run; neighbouring threads read overlapping runs (L1 hits).
- weight gradient: one thread per ``(n, c, ky, kx, j)`` sums ``v · g[n, o, oy, ox]`` over
  the events of channel ``c`` of sample ``n`` (a second index, rows ``(n, c)``, columns
  ``y·W + x``); the per-sample partial sums are added afterwards (a dense ``sum(0)``).
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float32

from . import _launch
from .event_index_cuda import TPB, build_ell, grid_1d


@cuda.jit(device=True, inline=True)
def _unravel(i, d0, d1, d2):
    """``(i0, i1, i2, rest)`` of a flat index ``i`` whose fastest axes are ``d0, d1, d2``."""
    rest = i // d0
    rest2 = rest // d1
    return i - rest * d0, rest - rest2 * d1, rest2 % d2, rest2 // d2


@cuda.jit
def conv_forward(boff, idx, val, weight, bias, has_bias, out, c_in, h, w, sh, sw, ph, pw):
    """``out[N, O, Ho, Wo]``; ``weight`` is the nn.Conv2d weight ``[O, C/groups, kh, kw]``."""
    n_img, o_all, ho, wo = out.shape
    _, cg, kh, kw = weight.shape
    og = o_all // (c_in // cg)
    i = cuda.grid(1)
    if i >= n_img * o_all * ho * wo:
        return
    ox, oy, o, b = _unravel(i, wo, ho, o_all)
    c_lo = (o // og) * cg  # first input channel of o's group
    acc = bias[o] if has_bias else float32(0)
    x0 = ox * sw - pw
    xa = max(x0, 0)
    xb = min(x0 + kw, w)
    if xa < xb:
        for ky in range(kh):
            y = oy * sh - ph + ky
            if y < 0 or y >= h:
                continue
            r = b * h + y
            for j in range(boff[r, xa], boff[r, xb]):
                col = idx[j]
                x = col // c_in
                ci = col - x * c_in - c_lo
                if 0 <= ci < cg:
                    acc += val[j] * weight[o, ci, ky, x - x0]
    out[b, o, oy, ox] = acc


@cuda.jit
def conv_grad_weight(start, cnt, idx, val, g, c_in, w, sh, sw, ph, pw, partial):
    """``partial[n, o, c', ky, kx] = Σ v · g[n, o, oy, ox]`` over the events of sample n.

    Events are indexed by rows ``(n, c)`` (columns ``y·W + x``); ``g [N, O, Ho, Wo]``.
    """
    n_img, o_all, cg, kh, kw = partial.shape
    _, _, ho, wo = g.shape
    og = o_all // (c_in // cg)
    i = cuda.grid(1)
    if i >= n_img * c_in * kh * kw * og:
        return
    jo, kx, ky, rest = _unravel(i, og, kw, kh)
    c = rest % c_in
    b = rest // c_in
    o = (c // cg) * og + jo
    r = b * c_in + c
    acc = float32(0)
    s = start[r]
    for j in range(s, s + cnt[r]):
        pix = idx[j]
        y = pix // w
        x = pix - y * w
        ty = y + ph - ky
        tx = x + pw - kx
        if ty < 0 or tx < 0 or ty % sh != 0 or tx % sw != 0:
            continue
        oy = ty // sh
        ox = tx // sw
        if oy < ho and ox < wo:
            acc += val[j] * g[b, o, oy, ox]
    partial[b, o, c % cg, ky, kx] = acc


def conv_index(x, fy, fx, alloc, stream):
    """Forward index of ``x [N, C, H, W]`` (device): rows ``(n, y)``, ``(x, c)`` order.

    ``fy [H]``, ``fx [W]``: outputs reached along each axis (int64 device arrays), which
    weigh the statistics into exact synaptic operations (times ``O/groups``).
    Returns ``(boff, idx, val, cnt, rowstats)``.
    """
    # [N, C, H, W] read as [P=N, A=C, Q=H, B=W]: rows (n, y), column id x·C + c
    idx, val, cnt, _, boff, rowstats = build_ell(x, alloc, stream, fy, fx, with_boff=True)
    return boff, idx, val, cnt, rowstats


def launch_conv_forward(index, weight, bias, out, c_in, h, w, sh, sw, ph, pw, stream):
    boff, idx, val = index
    total = out.size
    if total == 0:
        return
    has_bias = bias is not None
    b = bias if has_bias else val  # any float32 vector: not read
    _launch.launch(conv_forward, grid_1d(total), TPB, stream, boff, idx, val, weight, b,
                   has_bias, out, c_in, h, w, sh, sw, ph, pw)  # fmt: skip


def conv_grad_weight_partial(x, g, cg, kh, kw, sh, sw, ph, pw, alloc, stream):
    """Per-sample weight gradients ``[N, O, C/groups, kh, kw]`` (sum them over N)."""
    n, c, h, w = x.shape
    o = g.shape[1]
    idx, val, cnt, start, _, _ = build_ell(x.reshape(n * c, 1, 1, h * w), alloc, stream)
    partial = alloc((n, o, cg, kh, kw), np.float32, False)
    total = n * c * kh * kw * (o // (c // cg))
    if total:
        _launch.launch(conv_grad_weight, grid_1d(total), TPB, stream, start, cnt, idx, val, g,
                       c, w, sh, sw, ph, pw, partial)  # fmt: skip
    return partial
