"""Event Linear and a LIF-family neuron in one CPU pass, for inference (torch-free).

``EventLinear`` then a neuron writes the input currents ``[T, B, N]`` to memory and the
neuron kernel reads them back. :func:`gather_lif` does both at once: a work item is one
(weight tile, batch element) pair; it keeps its ``TW`` neurons' state in small local
arrays and, for ``t = 0 .. T-1``, gathers the weight rows of the inputs active in row
``t*B + b`` into the currents (``kernels/event_linear.py``'s ``_accumulate``, the same
order of sums as the unfused gather, so the currents are bit-identical) and steps the
neurons on them (``kernels/lif_step.py``'s ``step_forward``, the same scalar step as
``kernels/lif_cpu.py``). Only spikes and the final state are written. Work items run
tile-major, so the items a thread runs one after another share a weight tile in cache.

No traces for a backward pass are kept: this is an inference kernel.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from . import lif_step
from .event_linear import _accumulate_at

# the shared scalar step, inlined into the loop as kernels/lif_cpu.py does
_forward = numba.njit(inline="always", cache=True)(lif_step.step_forward)


@numba.njit(parallel=True, cache=True)
def gather_lif(
    rowptr, idx, val, src, tw, bias, T, B, params, state0,
    reset, delay, synaptic, euler, adaptive, refractory,
    spikes, state,
):  # fmt: skip
    """Spikes of ``neuron(bias + x Wᵀ)`` over ``T`` steps of ``B`` samples.

    Parameters
    ----------
    rowptr, idx, val : CSR event lists (int64, int32, float32) of the ``T*B`` input
        rows, row ``t*B + b`` (``kernels/event_index.py``).
    src, tw : ``Wᵀ`` as ``kernels/event_linear.gather_rows`` takes it (``[S, n_in, W]``)
        and the columns per work item.
    bias : float32 ``[>= N]`` (zeros for none).
    T, B : int
        Time steps and batch size.
    params : float32 ``[8, N]``, rows beta, gain, leak, threshold, alpha, v_reset, adapt,
        rho (``kernels/lif_cpu.py``'s layout).
    state0 : float32 ``[4, B*N]``, rows v, i, a, c of the initial state (``k = b*N + n``).
    reset, delay, synaptic, euler, adaptive, refractory : int
        The neuron's flags (``ops.lif_sequence.flags_of``), run-time arguments: one
        cached compilation serves every neuron (``kernels/lif_cpu.py`` specialises
        instead; specialising this kernel too is not measured yet).
    spikes : float32 ``[T*B, N]``, receives the spikes.
    state : float32 ``[4, B*N]``, receives the final state.
    """
    w_src = src.shape[2]
    n = spikes.shape[1]
    n_t = (n + tw - 1) // tw
    beta, gain, leak, theta = params[0], params[1], params[2], params[3]
    alpha, vreset, adapt, rho = params[4], params[5], params[6], params[7]
    for item in prange(n_t * B):
        tt = item // B
        b = item - tt * B
        c0 = tt * tw
        w = min(tw, n - c0)
        s_i = c0 // w_src
        tile = src[s_i]
        cs = c0 - s_i * w_src
        base = b * n + c0
        cur = np.empty(w, np.float32)
        sv = np.empty(w, np.float32)
        si = np.empty(w, np.float32)
        sa = np.empty(w, np.float32)
        sc = np.empty(w, np.float32)
        for q in range(w):
            sv[q] = state0[0, base + q]
            si[q] = state0[1, base + q]
            sa[q] = state0[2, base + q]
            sc[q] = state0[3, base + q]
        # 1-D views indexed from 0 (as in kernels/lif_cpu.py): the neuron loop vectorises
        pb, pg, pl, pt = beta[c0:c0 + w], gain[c0:c0 + w], leak[c0:c0 + w], theta[c0:c0 + w]
        pa, pv, pd, pr = alpha[c0:c0 + w], vreset[c0:c0 + w], adapt[c0:c0 + w], rho[c0:c0 + w]
        bs = bias[c0:c0 + w]
        for t in range(T):
            r = t * B + b
            for q in range(w):
                cur[q] = bs[q]
            _accumulate_at(cur, tile, cs, idx, val, rowptr[r], rowptr[r + 1])
            out = spikes[r, c0:c0 + w]
            for q in range(w):
                s, u, th, blocked, v, i, a, c = _forward(
                    cur[q], sv[q], si[q], sa[q], sc[q],
                    pb[q], pg[q], pl[q], pt[q], pa[q], pv[q], pd[q], pr[q],
                    reset, delay, synaptic, euler, adaptive, refractory,
                )  # fmt: skip
                sv[q] = v
                si[q] = i
                sa[q] = a
                sc[q] = c
                out[q] = s
        for q in range(w):
            state[0, base + q] = sv[q]
            state[1, base + q] = si[q]
            state[2, base + q] = sa[q]
            state[3, base + q] = sc[q]
