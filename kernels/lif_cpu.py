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
    beta, gain, leak, theta = params[0], params[1], params[2], params[3]
    alpha, vreset, adapt, rho = params[4], params[5], params[6], params[7]
    for job in prange((K // n_feat) * n_blocks):
        base = (job // n_blocks) * n_feat
        n0 = (job % n_blocks) * BLOCK
        n1 = min(n0 + BLOCK, n_feat)
        for n in range(n0, n1):
            for r in range(4):
                state[r, base + n] = state0[r, base + n]
        for t in range(T):
            for n in range(n0, n1):
                k = base + n
                s, u, th, blocked, v, i, a, c = _forward(
                    x[t, k], state[0, k], state[1, k], state[2, k], state[3, k],
                    beta[n], gain[n], leak[n], theta[n], alpha[n], vreset[n], adapt[n], rho[n],
                    reset, delay, synaptic, euler, adaptive, refractory,
                )  # fmt: skip
                state[0, k] = v
                state[1, k] = i
                state[2, k] = a
                state[3, k] = c
                z[t, k] = s
                h[t, k] = u
                if adaptive:
                    th_trace[t, k] = th
                if refractory > 0:
                    refr_trace[t, k] = blocked


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
    beta, gain, theta, alpha = params[0], params[1], params[3], params[4]
    vreset, adapt = params[5], params[6]
    for job in prange((K // n_feat) * n_blocks):
        base = (job // n_blocks) * n_feat
        n0 = (job % n_blocks) * BLOCK
        n1 = min(n0 + BLOCK, n_feat)
        for n in range(n0, n1):
            k = base + n
            gout[0, k] = gstate[0, k]
            gout[1, k] = gstate[1, k]
            gout[2, k] = zero
            gout[3, k] = zero
        for t in range(T - 1, -1, -1):
            for n in range(n0, n1):
                k = base + n
                if t > 0:
                    th_p = th_trace[t - 1, k] if adaptive else theta[n]
                    free_p = refr_trace[t - 1, k] == 0 if refractory > 0 else True
                    r = one if h[t - 1, k] - th_p > zero and free_p else zero
                    v_in = _membrane_before(h[t - 1, k], r, theta[n], vreset[n], reset, delay)
                else:
                    v_in = state0[0, k]
                    r = zero
                    if v_in - (theta[n] + adapt[n] * state0[2, k]) > zero:
                        r = np.float32(1.0)
                th = th_trace[t, k] if adaptive else theta[n]
                blocked = refr_trace[t, k] if refractory > 0 else 0
                s = one if h[t, k] - th > zero and blocked == 0 else zero
                sgv = surrogate_grad(h[t, k] - th, sg, slope)
                g_x, g_v, g_i, g_b, g_t = _backward(
                    gz[t, k], gout[0, k], gout[1, k], s, h[t, k], v_in, r,
                    blocked, sgv, beta[n], gain[n], theta[n], alpha[n], vreset[n],
                    reset, delay, detach, synaptic, euler,
                )  # fmt: skip
                gx[t, k] = g_x
                gout[0, k] = g_v
                gout[1, k] = g_i
                gout[2, k] += g_b
                gout[3, k] += g_t
