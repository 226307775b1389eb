"""Fused LIF-family sequence kernels for the CPU (``numba.njit(parallel=True)``).

The model is the one of ``neurosparse/ops/lif_reference.py`` (the reference step
function); the per-step math is ``kernels/lif_step.py``, shared with the CUDA twin. A
sequence ``x[T, B*N]`` runs in one call: threads split the ``B*N`` neurons into blocks,
each block walks all T steps with its state in a small buffer that stays in L1.

Forward stores only what the backward needs: the spikes ``z`` (the output anyway), the
membrane value each spike was tested on ``h``, the threshold ``th`` (only for adaptive
neurons) and the refractory mask (only with a refractory period); the backward walks
time in reverse and recomputes everything else from those.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from . import lif_step

BLOCK = 512

_jit = njit(inline="always", cache=True)
surrogate_grad = _jit(lif_step.surrogate_grad)
_forward = _jit(lif_step.step_forward)
_backward = _jit(lif_step.step_backward)
_membrane_before = _jit(lif_step.membrane_before)


@_jit
def block_of(job, n_blocks, n_feat):
    """``(n0, n1, k0, k1)`` of work item ``job``: features ``n0:n1`` of one batch element,
    at flat neuron ids ``k0:k1`` (``k = b * n_feat + n``)."""
    base = (job // n_blocks) * n_feat
    n0 = (job % n_blocks) * BLOCK
    n1 = min(n0 + BLOCK, n_feat)
    return n0, n1, base + n0, base + n1


@_jit
def param_views(params, n0, n1):
    """The eight parameter rows of ``params [8, N]`` over features ``n0:n1``: contiguous 1-D
    views indexed from 0, so the loops over them need no index arithmetic or wrap-around
    checks and vectorise."""
    return (params[0, n0:n1], params[1, n0:n1], params[2, n0:n1], params[3, n0:n1],
            params[4, n0:n1], params[5, n0:n1], params[6, n0:n1], params[7, n0:n1])  # fmt: skip


@_jit
def step_at(q, xq, sv, si, sa, sc, p, reset, delay, synaptic, euler, adaptive, refractory):
    """Step neuron ``q`` of a block on input ``xq``: its state ``sv, si, sa, sc`` (1-D
    views) is updated in place; returns ``(s, h, th, blocked)`` of
    ``lif_step.step_forward``. ``p`` is :func:`param_views`' tuple. Shared by
    :func:`lif_forward` and the fused ``kernels/event_linear_lif.py``."""
    s, u, th, blocked, v, i, a, c = _forward(
        xq, sv[q], si[q], sa[q], sc[q],
        p[0][q], p[1][q], p[2][q], p[3][q], p[4][q], p[5][q], p[6][q], p[7][q],
        reset, delay, synaptic, euler, adaptive, refractory,
    )  # fmt: skip
    sv[q] = v
    si[q] = i
    sa[q] = a
    sc[q] = c
    return s, u, th, blocked


@functools.cache
def get_kernels(reset, delay, detach, synaptic, euler, adaptive, refractory, sg):
    """``(forward, backward)`` specialised on one neuron's flags.

    ``forward(x, state0, params, z, h, th_trace, refr_trace, state)`` and
    ``backward(gz, gstate, h, th_trace, refr_trace, state0, params, slope, gx, gout)``;
    see :func:`lif_forward` and :func:`lif_backward` for the arrays. The flags are
    closure constants, so every branch a neuron does not use is compiled away (as in
    ``kernels/lif_cuda.py``); Numba caches each specialisation on disk like any other
    kernel (closure values are part of its cache key), so a flag set compiles once per
    machine.
    """
    lif_step.check_surrogate_id(sg)

    @njit(parallel=True, cache=True)
    def forward(x, state0, params, z, h, th_trace, refr_trace, state):
        lif_forward(x, state0, params, reset, delay, synaptic, euler, adaptive, refractory,
                    z, h, th_trace, refr_trace, state)  # fmt: skip

    @njit(parallel=True, cache=True)
    def backward(gz, gstate, h, th_trace, refr_trace, state0, params, slope, gx, gout):
        lif_backward(gz, gstate, h, th_trace, refr_trace, state0, params, reset, delay, detach,
                     synaptic, euler, adaptive, refractory, sg, slope, gx, gout)  # fmt: skip

    return forward, backward


@njit(parallel=True, inline="always", cache=True)
def lif_forward(
    x, state0, params,
    reset, delay, synaptic, euler, adaptive, refractory,
    z, h, th_trace, refr_trace, state,
):  # fmt: skip
    """Run T steps of ``K = B * N`` neurons.

    ``x [T, K]``; ``state0, state [4, K]`` rows v, i, a, c; ``params [8, N]`` rows beta,
    gain, leak, threshold, alpha, v_reset, adapt, rho; ``z [T, K]`` receives the spikes
    and ``h [T, K]`` the membrane each was tested on (all the backward needs: it
    recomputes the spikes from it). ``th_trace`` is ``[T, K]`` when
    ``adaptive`` else ``[1, 1]``; ``refr_trace`` is ``[T, K]`` (uint8) when
    ``refractory > 0`` else ``[1, 1]``.
    """
    T, K = x.shape
    n_feat = params.shape[1]
    n_blocks = (n_feat + BLOCK - 1) // BLOCK
    for job in prange((K // n_feat) * n_blocks):
        n0, n1, k0, k1 = block_of(job, n_blocks, n_feat)
        # contiguous 1-D views indexed from 0 (see param_views): the inner loop vectorises
        sv, si, sa, sc = state[0, k0:k1], state[1, k0:k1], state[2, k0:k1], state[3, k0:k1]
        p = param_views(params, n0, n1)
        for r in range(4):
            state[r, k0:k1] = state0[r, k0:k1]
        for t in range(T):
            xt, zt, ht = x[t, k0:k1], z[t, k0:k1], h[t, k0:k1]
            for q in range(k1 - k0):
                s, u, th, blocked = step_at(q, xt[q], sv, si, sa, sc, p, reset, delay,
                                            synaptic, euler, adaptive, refractory)  # fmt: skip
                zt[q] = s
                ht[q] = u
                if adaptive:
                    th_trace[t, k0 + q] = th
                if refractory > 0:
                    refr_trace[t, k0 + q] = blocked


@njit(parallel=True, inline="always", cache=True)
def lif_backward(
    gz, gstate, h, th_trace, refr_trace, state0, params,
    reset, delay, detach, synaptic, euler, adaptive, refractory, sg, slope,
    gx, gout,
):  # fmt: skip
    """Backward through time of :func:`lif_forward`.

    ``gz [T, K]`` and ``gstate [2, K]`` (rows v, i) are the incoming gradients. Writes
    ``gx [T, K]`` and ``gout [4, K]``: rows the gradients of the initial v and i, and the
    per-(batch, neuron) gradients of beta and threshold (the caller sums over the batch).
    Spikes are recomputed from ``h`` with the forward's own test (``h - th > 0`` and not
    blocked), so only ``h`` is kept for the backward.
    """
    T, K = gz.shape
    n_feat = params.shape[1]
    n_blocks = (n_feat + BLOCK - 1) // BLOCK
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for job in prange((K // n_feat) * n_blocks):
        n0, n1, k0, k1 = block_of(job, n_blocks, n_feat)
        # contiguous 1-D views indexed from 0, as in lif_forward (vectorisable inner loop)
        g_v, g_i, g_b, g_t = gout[0, k0:k1], gout[1, k0:k1], gout[2, k0:k1], gout[3, k0:k1]
        pb, pg, _, pt, pa, pv, pd, _ = param_views(params, n0, n1)
        v0, a0 = state0[0, k0:k1], state0[2, k0:k1]
        for q in range(k1 - k0):
            g_v[q] = gstate[0, k0 + q]
            g_i[q] = gstate[1, k0 + q]
            g_b[q] = zero
            g_t[q] = zero
        for t in range(T - 1, -1, -1):
            ht, gzt, gxt = h[t, k0:k1], gz[t, k0:k1], gx[t, k0:k1]
            hp = h[t - 1 if t > 0 else 0, k0:k1]
            for q in range(k1 - k0):
                k = k0 + q
                if t > 0:
                    th_p = th_trace[t - 1, k] if adaptive else pt[q]
                    free_p = refr_trace[t - 1, k] == 0 if refractory > 0 else True
                    r = one if hp[q] - th_p > zero and free_p else zero
                    v_in = _membrane_before(hp[q], r, pt[q], pv[q], reset, delay)
                else:
                    v_in = v0[q]
                    r = zero
                    if v_in - (pt[q] + pd[q] * a0[q]) > zero:
                        r = np.float32(1.0)
                th = th_trace[t, k] if adaptive else pt[q]
                blocked = refr_trace[t, k] if refractory > 0 else 0
                s = one if ht[q] - th > zero and blocked == 0 else zero
                sgv = surrogate_grad(ht[q] - th, sg, slope)
                d_x, d_v, d_i, d_b, d_t = _backward(
                    gzt[q], g_v[q], g_i[q], s, ht[q], v_in, r,
                    blocked, sgv, pb[q], pg[q], pt[q], pa[q], pv[q],
                    reset, delay, detach, synaptic, euler,
                )  # fmt: skip
                gxt[q] = d_x
                g_v[q] = d_v
                g_i[q] = d_i
                g_b[q] += d_b
                g_t[q] += d_t
