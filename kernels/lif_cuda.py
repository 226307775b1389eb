"""Fused LIF-family sequence kernels for CUDA (``numba.cuda.jit``), the CPU twin's mirror.

One thread per neuron and batch element walks all T steps with its state in registers
(the per-step math is ``kernels/lif_step.py``, shared with ``kernels/lif_cpu.py``);
consecutive threads touch consecutive neurons, so every load and store of a time step
is coalesced. The arrays may be torch CUDA tensors seen through
``numba.cuda.as_cuda_array``; launch on torch's stream to keep the two ordered.
"""

from __future__ import annotations

import numpy as np
from numba import cuda

from . import lif_step

_dev = cuda.jit(device=True)
_surrogate_grad = _dev(lif_step.surrogate_grad)
_forward = _dev(lif_step.step_forward)
_backward = _dev(lif_step.step_backward)
_membrane_before = _dev(lif_step.membrane_before)

THREADS = 128


@cuda.jit
def lif_forward(
    x, v0, i0, a0, c0,
    beta, gain, leak, theta, alpha, vreset, adapt, rho,
    n_feat, reset, delay, synaptic, euler, adaptive, refractory,
    z, h, th_trace, refr_trace, v_out, i_out, a_out, c_out,
):  # fmt: skip
    """Same arguments and results as ``kernels.lif_cpu.lif_forward``."""
    k = cuda.grid(1)
    T, K = x.shape
    if k >= K:
        return
    n = k % n_feat
    v, i, a, c = v0[k], i0[k], a0[k], c0[k]
    p_beta, p_gain, p_leak, p_theta = beta[n], gain[n], leak[n], theta[n]
    p_alpha, p_vreset, p_adapt, p_rho = alpha[n], vreset[n], adapt[n], rho[n]
    for t in range(T):
        s, u, th, blocked, v, i, a, c = _forward(
            x[t, k], v, i, a, c, p_beta, p_gain, p_leak, p_theta, p_alpha, p_vreset,
            p_adapt, p_rho, reset, delay, synaptic, euler, adaptive, refractory,
        )  # fmt: skip
        z[t, k] = s
        h[t, k] = u
        if adaptive:
            th_trace[t, k] = th
        if refractory > 0:
            refr_trace[t, k] = blocked
    v_out[k] = v
    i_out[k] = i
    a_out[k] = a
    c_out[k] = c


@cuda.jit
def lif_backward(
    gz, gv_T, gi_T, z, h, th_trace, refr_trace, v0, a0,
    beta, gain, theta, alpha, vreset, adapt,
    n_feat, reset, delay, detach, synaptic, euler, adaptive, refractory, sg, slope,
    gx, gv0, gi0, gbeta, gtheta,
):  # fmt: skip
    """Same arguments and results as ``kernels.lif_cpu.lif_backward``."""
    k = cuda.grid(1)
    T, K = gz.shape
    if k >= K:
        return
    n = k % n_feat
    zero = np.float32(0.0)
    gv, gi = gv_T[k], gi_T[k]
    g_beta, g_theta = zero, zero
    p_beta, p_gain, p_theta, p_alpha, p_vreset = beta[n], gain[n], theta[n], alpha[n], vreset[n]
    for t in range(T - 1, -1, -1):
        if t > 0:
            v_in = _membrane_before(h[t - 1, k], z[t - 1, k], p_theta, p_vreset, reset, delay)
            r = z[t - 1, k]
        else:
            v_in = v0[k]
            r = np.float32(1.0) if v_in - (p_theta + adapt[n] * a0[k]) > zero else zero
        th = th_trace[t, k] if adaptive else p_theta
        blocked = refr_trace[t, k] if refractory > 0 else 0
        sgv = _surrogate_grad(h[t, k] - th, sg, slope)
        g_x, gv, gi, d_beta, d_theta = _backward(
            gz[t, k], gv, gi, z[t, k], h[t, k], v_in, r, blocked, sgv,
            p_beta, p_gain, p_theta, p_alpha, p_vreset, reset, delay, detach, synaptic, euler,
        )  # fmt: skip
        gx[t, k] = g_x
        g_beta += d_beta
        g_theta += d_theta
    gv0[k] = gv
    gi0[k] = gi
    gbeta[k] = g_beta
    gtheta[k] = g_theta
