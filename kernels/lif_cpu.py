"""Fused LIF-family sequence kernels for the CPU (``numba.njit(parallel=True)``).

The model is the one of ``neurosparse/neurons/functional.py`` (the reference step
function); the per-step math is ``kernels/lif_step.py``, shared with the CUDA twin. A
sequence ``x[T, B*N]`` runs in one call: threads split the ``B*N`` neurons into blocks,
each block walks all T steps with its state in a small buffer that stays in L1.

Forward stores only what the backward needs: the spikes ``z`` (the output anyway), the
membrane value each spike was tested on ``h``, the threshold ``th`` (only for adaptive
neurons) and the refractory mask (only with a refractory period); the backward walks
time in reverse and recomputes everything else from those.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from . import lif_step

BLOCK = 512

_jit = njit(inline="always", cache=True)
surrogate_grad = _jit(lif_step.surrogate_grad)
_forward = _jit(lif_step.step_forward)
_backward = _jit(lif_step.step_backward)
_membrane_before = _jit(lif_step.membrane_before)


@njit(parallel=True, cache=True)
def lif_forward(
    x, v0, i0, a0, c0,
    beta, gain, leak, theta, alpha, vreset, adapt, rho,
    n_feat, reset, delay, synaptic, euler, adaptive, refractory,
    z, h, th_trace, refr_trace, v_out, i_out, a_out, c_out,
):  # fmt: skip
    """Run T steps. ``x, z, h: [T, K]``; states ``[K]``; params ``[N]``; ``K = B * N``.

    ``th_trace`` is ``[T, K]`` when ``adaptive`` else ``[1, 1]``; ``refr_trace`` is
    ``[T, K]`` (uint8) when ``refractory > 0`` else ``[1, 1]``.
    """
    T, K = x.shape
    n_blocks = (n_feat + BLOCK - 1) // BLOCK
    for job in prange((K // n_feat) * n_blocks):
        base = (job // n_blocks) * n_feat
        n0 = (job % n_blocks) * BLOCK
        n1 = min(n0 + BLOCK, n_feat)
        for n in range(n0, n1):
            k = base + n
            v_out[k] = v0[k]
            i_out[k] = i0[k]
            a_out[k] = a0[k]
            c_out[k] = c0[k]
        for t in range(T):
            for n in range(n0, n1):
                k = base + n
                s, u, th, blocked, v, i, a, c = _forward(
                    x[t, k], v_out[k], i_out[k], a_out[k], c_out[k],
                    beta[n], gain[n], leak[n], theta[n], alpha[n], vreset[n], adapt[n], rho[n],
                    reset, delay, synaptic, euler, adaptive, refractory,
                )  # fmt: skip
                v_out[k] = v
                i_out[k] = i
                a_out[k] = a
                c_out[k] = c
                z[t, k] = s
                h[t, k] = u
                if adaptive:
                    th_trace[t, k] = th
                if refractory > 0:
                    refr_trace[t, k] = blocked


@njit(parallel=True, cache=True)
def lif_backward(
    gz, gv_T, gi_T, z, h, th_trace, refr_trace, v0, a0,
    beta, gain, theta, alpha, vreset, adapt,
    n_feat, reset, delay, detach, synaptic, euler, adaptive, refractory, sg, slope,
    gx, gv0, gi0, gbeta, gtheta,
):  # fmt: skip
    """Backward through time of :func:`lif_forward`.

    Writes ``gx [T, K]``, the gradients of the initial state ``gv0, gi0 [K]`` and the
    per-(batch, neuron) parameter gradients ``gbeta, gtheta [K]`` (the caller sums them
    over the batch).
    """
    T, K = gz.shape
    n_blocks = (n_feat + BLOCK - 1) // BLOCK
    zero = np.float32(0.0)
    for job in prange((K // n_feat) * n_blocks):
        base = (job // n_blocks) * n_feat
        n0 = (job % n_blocks) * BLOCK
        n1 = min(n0 + BLOCK, n_feat)
        for n in range(n0, n1):
            k = base + n
            gv0[k] = gv_T[k]
            gi0[k] = gi_T[k]
            gbeta[k] = zero
            gtheta[k] = zero
        for t in range(T - 1, -1, -1):
            for n in range(n0, n1):
                k = base + n
                if t > 0:
                    v_in = _membrane_before(h[t - 1, k], z[t - 1, k], theta[n], vreset[n],
                                            reset, delay)  # fmt: skip
                    r = z[t - 1, k]
                else:
                    v_in = v0[k]
                    r = np.float32(1.0) if v_in - (theta[n] + adapt[n] * a0[k]) > zero else zero
                th = th_trace[t, k] if adaptive else theta[n]
                blocked = refr_trace[t, k] if refractory > 0 else 0
                sgv = surrogate_grad(h[t, k] - th, sg, slope)
                g_x, g_v, g_i, g_b, g_t = _backward(
                    gz[t, k], gv0[k], gi0[k], z[t, k], h[t, k], v_in, r, blocked, sgv,
                    beta[n], gain[n], theta[n], alpha[n], vreset[n],
                    reset, delay, detach, synaptic, euler,
                )  # fmt: skip
                gx[t, k] = g_x
                gv0[k] = g_v
                gi0[k] = g_i
                gbeta[k] += g_b
                gtheta[k] += g_t
