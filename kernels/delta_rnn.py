"""Recurrent half of the delta GRU / LSTM on the CPU (torch-free).

DeltaRNN (Gao et al. 2018): besides the input deltas, the hidden state is delta-encoded
too. Per step ``t`` and sample ``b``:

1. ``d = h_{t−1} − ĥ``; the units with ``|d| > θ_h`` send ``Δh = d`` and set ``ĥ ← h``;
2. the recurrent memory grows by the weight rows of the units that sent,
   ``M_h += Σ_j Δh_j · W_hhᵀ[j, :]`` (``W_hhᵀ`` is ``[H, G·H]``, one contiguous row per
   hidden unit, so each delta is one vectorised pass over ``G·H`` floats);
3. the gates read ``M_x[t] + M_h`` (``M_x``, the input memory ``W_ih·x̂_t + b_ih``, is
   computed for all steps beforehand by the delta Linear path).

GRU (``cell = 0``, PyTorch gate order r, z, n): ``r = σ(M_x^r + M_h^r)``,
``z = σ(M_x^z + M_h^z)``, ``n = tanh(M_x^n + r ⊙ M_h^n)``, ``h = (1 − z) ⊙ n + z ⊙ h_{t−1}``.
LSTM (``cell = 1``, order i, f, g, o): ``c = σ(f) ⊙ c + σ(i) ⊙ tanh(g)``,
``h = σ(o) ⊙ tanh(c)``.

``M_h`` is summed in float64 (no drift over long sequences, see
``kernels/delta_accumulate.py``). Samples are independent: work items are samples, each
walks all steps with its state in small buffers. The per-step weight-row accumulation is
the event Linear's inner loop (``kernels/event_linear.py``).
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._serial import serial_twin
from .event_linear import _accumulate


@numba.njit(cache=True, inline="always")
def _vexp(a, out, bits):
    # out = exp(a) elementwise, float32, vectorisable: Cephes' expf (range reduction by
    # ln 2 and a degree-6 polynomial, ~1 ulp), the power of two built in ``bits`` and read
    # back as float32. libm's scalar exp cost ~17 ns a call here (no SVML), which made the
    # gates dominate a step with few deltas.
    for i in range(a.shape[0]):
        x = min(max(a[i], np.float32(-87.0)), np.float32(88.0))
        fx = np.floor(x * np.float32(1.44269504) + np.float32(0.5))
        x = x - fx * np.float32(0.693359375) - fx * np.float32(-2.12194440e-4)
        z = x * x
        y = np.float32(1.9875691500e-4)
        y = y * x + np.float32(1.3981999507e-3)
        y = y * x + np.float32(8.3334519073e-3)
        y = y * x + np.float32(4.1665795894e-2)
        y = y * x + np.float32(1.6666665459e-1)
        y = y * x + np.float32(5.0000001201e-1)
        out[i] = y * z + x + np.float32(1.0)
        bits[i] = (np.int32(fx) + np.int32(127)) << np.int32(23)
    scale = bits.view(np.float32)
    for i in range(a.shape[0]):
        out[i] *= scale[i]


@numba.njit(cache=True, inline="always")
def _hidden_deltas(h, href, thr, dh, idx, val):
    # step 1: compare, record the sends as (unit, delta) lists, update references
    n = 0
    for j in range(h.shape[0]):
        d = h[j] - href[j]
        if abs(d) > thr[j]:
            dh[j] = d
            idx[n] = j
            val[n] = d
            href[j] = h[j]
            n += 1
        else:
            dh[j] = 0
    return n


@numba.njit(parallel=True, cache=True)
def rnn_sequence(mx, wt, thr, h0, c0, href0, mh0, cell, h_seq, dh, c_out, href_out, mh_out,
                 counts):  # fmt: skip
    """Run ``T`` steps of a delta GRU (``cell=0``) or LSTM (``cell=1``) for every sample.

    Parameters
    ----------
    mx : float32 ``[T, B, G·H]``, input memories (``W_ih·x̂_t + b_ih``).
    wt : float32 ``[H, G·H]``, ``W_hhᵀ`` (C-contiguous).
    thr : float32 ``[H]``, hidden delta thresholds.
    h0, c0, href0 : float32 ``[B, H]``, initial hidden state, cell state (LSTM; ignored
        for the GRU) and hidden references.
    mh0 : float32 ``[B, G·H]``, initial recurrent memory (``W_hh·ĥ + b_hh``).

    Outputs: ``h_seq [T, B, H]``, the hidden deltas ``dh [T, B, H]``, final ``c_out``,
    ``href_out`` ``[B, H]`` and ``mh_out [B, G·H]``, deltas sent per step ``counts [T, B]``.
    """
    n_t, n_b, gh = mx.shape
    n_h = wt.shape[0]
    for b in prange(n_b):
        h = h0[b].copy()
        c = c0[b].copy()
        href = href0[b].copy()
        mh = np.empty(gh, np.float64)
        for i in range(gh):
            mh[i] = mh0[b, i]
        idx = np.empty(n_h, np.int32)
        val = np.empty(n_h, np.float32)
        inc = np.empty(gh, np.float32)
        pre = np.empty(gh, np.float32)  # gate pre-activations (negated/scaled for exp)
        ex = np.empty(gh, np.float32)
        bits = np.empty(gh, np.int32)
        og = np.empty(n_h, np.float32)
        for t in range(n_t):
            n = _hidden_deltas(h, href, thr, dh[t, b], idx, val)
            counts[t, b] = n
            inc[:] = 0
            _accumulate(inc, wt, idx, val, 0, n)
            for i in range(gh):
                mh[i] += inc[i]
            m = mx[t, b]
            out = h_seq[t, b]
            # gate pre-activations, then one vectorised exp over all of them:
            # σ(v) = 1 / (1 + e^−v), tanh(v) = 2·σ(2v) − 1
            for i in range(gh):
                pre[i] = m[i] + np.float32(mh[i])
            if cell == 0:
                for i in range(n_h):  # n = tanh(M_x^n + r ⊙ M_h^n) needs r first
                    pre[2 * n_h + i] = np.float32(mh[2 * n_h + i])
                for i in range(2 * n_h):
                    pre[i] = -pre[i]
                _vexp(pre[: 2 * n_h], ex[: 2 * n_h], bits)
                for i in range(n_h):
                    r = np.float32(1.0) / (np.float32(1.0) + ex[i])
                    pre[2 * n_h + i] = np.float32(-2.0) * (m[2 * n_h + i] + r * pre[2 * n_h + i])
                _vexp(pre[2 * n_h :], ex[2 * n_h :], bits)
                for i in range(n_h):
                    z = np.float32(1.0) / (np.float32(1.0) + ex[n_h + i])
                    g = np.float32(2.0) / (np.float32(1.0) + ex[2 * n_h + i]) - np.float32(1.0)
                    hn = (np.float32(1.0) - z) * g + z * h[i]
                    out[i] = hn
                    h[i] = hn
            else:
                for i in range(gh):  # tanh for the g gate (third quarter), σ elsewhere
                    pre[i] = np.float32(-2.0) * pre[i] if i // n_h == 2 else -pre[i]
                _vexp(pre, ex, bits)
                for i in range(n_h):
                    ig = np.float32(1.0) / (np.float32(1.0) + ex[i])
                    fg = np.float32(1.0) / (np.float32(1.0) + ex[n_h + i])
                    gg = np.float32(2.0) / (np.float32(1.0) + ex[2 * n_h + i]) - np.float32(1.0)
                    og[i] = np.float32(1.0) / (np.float32(1.0) + ex[3 * n_h + i])
                    c[i] = fg * c[i] + ig * gg
                    pre[i] = np.float32(-2.0) * c[i]
                _vexp(pre[:n_h], ex[:n_h], bits)
                for i in range(n_h):
                    hn = og[i] * (np.float32(2.0) / (np.float32(1.0) + ex[i]) - np.float32(1.0))
                    out[i] = hn
                    h[i] = hn
        c_out[b] = c
        href_out[b] = href
        for i in range(gh):
            mh_out[b, i] = mh[i]


# one sample (a streaming cell) gives the batch-parallel loop nothing to split: it runs
# this twin, with no parallel region to start (see delta_encode.py)
rnn_sequence_serial = serial_twin(rnn_sequence)


def run(mx, wt, thr, h0, c0, href0, mh0, cell: int):
    """Allocate the outputs and run :func:`rnn_sequence` (float32 C-contiguous inputs).

    Returns ``h_seq, dh, c_out, href_out, mh_out, counts``.
    """
    n_t, n_b, gh = mx.shape
    n_h = wt.shape[0]
    h_seq = np.empty((n_t, n_b, n_h), np.float32)
    dh = np.empty((n_t, n_b, n_h), np.float32)
    c_out = np.empty((n_b, n_h), np.float32)
    href_out = np.empty((n_b, n_h), np.float32)
    mh_out = np.empty((n_b, gh), np.float32)
    counts = np.empty((n_t, n_b), np.int32)
    kernel = rnn_sequence_serial if n_b == 1 else rnn_sequence
    kernel(mx, wt, thr, h0, c0, href0, mh0, cell, h_seq, dh, c_out, href_out, mh_out, counts)
    return h_seq, dh, c_out, href_out, mh_out, counts
