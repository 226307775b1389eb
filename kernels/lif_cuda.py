"""Fused LIF-family sequence kernels for CUDA (``numba.cuda.jit``), the CPU twin's mirror.

One thread per neuron and batch element walks all T steps with its state in registers
(the per-step math is ``kernels/lif_step.py``, shared with ``kernels/lif_cpu.py``);
consecutive threads touch consecutive neurons, so every load and store of a time step
is coalesced. A sequence offers only ``B * N`` threads, each a chain of T dependent
steps, so the kernels are latency-bound unless each thread keeps several loads in
flight: inputs are fetched ``CHUNK`` steps ahead into registers before those steps are
computed (profiled on an H100: ``benchmarks/profile_lif_gpu.py``). The arrays may be
torch CUDA tensors seen through ``numba.cuda.as_cuda_array``; launch on torch's stream
to keep the two ordered.
"""

from __future__ import annotations

import functools
import os

import numpy as np
from numba import cuda

from . import lif_step

_dev = cuda.jit(device=True)
_surrogate_grad = _dev(lif_step.surrogate_grad)
_forward = _dev(lif_step.step_forward)
_backward = _dev(lif_step.step_backward)
_membrane_before = _dev(lif_step.membrane_before)

THREADS = 128
# steps fetched ahead per thread; a tuning knob for profiling (benchmarks/profile_lif_gpu.py)
CHUNK = int(os.environ.get("NEUROSPARSE_LIF_CUDA_CHUNK", "16"))
CHUNK1 = CHUNK + 1  # local-array sizes must be plain constants


def get_kernels(reset, delay, detach, synaptic, euler, adaptive, refractory, sg):
    """Kernels specialised on the neuron's flags (compile-time constants on the GPU).

    Numba freezes closure variables as constants, so every branch a neuron does not use
    disappears from its kernel: fewer registers and no per-step flag tests. Returns
    ``(forward, backward)`` CUDA kernels taking the arguments of the callables that
    ``kernels.lif_cpu.get_kernels`` returns; launch them with one thread per neuron
    (``THREADS`` per block).
    """
    return _build(reset, delay, detach, synaptic, euler, adaptive, refractory, sg)[:2]


def get_scalar_forward(reset, delay, detach, synaptic, euler, adaptive, refractory, sg):
    """``forward`` of :func:`get_kernels` for a neuron whose every parameter is one value:
    the ``params`` block is replaced by its eight rows as 0-d arrays (``x, state0, beta,
    gain, leak, theta, alpha, v_reset, adapt, rho, z, h, th_trace, refr_trace, state``)."""
    return _build(reset, delay, detach, synaptic, euler, adaptive, refractory, sg)[2]


@functools.cache
def _build(reset, delay, detach, synaptic, euler, adaptive, refractory, sg):
    lif_step.check_surrogate_id(sg)

    @cuda.jit(device=True)
    def run_forward(x, state0, k, p_beta, p_gain, p_leak, p_theta, p_alpha, p_vreset,
                    p_adapt, p_rho, z, h, th_trace, refr_trace, state):  # fmt: skip
        T = x.shape[0]
        v, i, a, c = state0[0, k], state0[1, k], state0[2, k], state0[3, k]
        xs = cuda.local.array(CHUNK, np.float32)
        for t0 in range(0, T, CHUNK):
            for u in range(CHUNK):
                if t0 + u < T:
                    xs[u] = x[t0 + u, k]
            for u in range(CHUNK):
                t = t0 + u
                if t < T:
                    s, hv, th, blocked, v, i, a, c = _forward(
                        xs[u], v, i, a, c, p_beta, p_gain, p_leak, p_theta, p_alpha, p_vreset,
                        p_adapt, p_rho, reset, delay, synaptic, euler, adaptive, refractory,
                    )  # fmt: skip
                    z[t, k] = s
                    h[t, k] = hv
                    if adaptive:
                        th_trace[t, k] = th
                    if refractory > 0:
                        refr_trace[t, k] = blocked
        state[0, k] = v
        state[1, k] = i
        state[2, k] = a
        state[3, k] = c

    @cuda.jit
    def forward(x, state0, params, z, h, th_trace, refr_trace, state):
        k = cuda.grid(1)
        if k >= x.shape[1]:
            return
        n = k % params.shape[1]
        run_forward(x, state0, k, params[0, n], params[1, n], params[2, n], params[3, n],
                    params[4, n], params[5, n], params[6, n], params[7, n], z, h, th_trace,
                    refr_trace, state)  # fmt: skip

    @cuda.jit
    def forward_scalar(x, state0, beta, gain, leak, theta, alpha, vreset, adapt, rho, z, h,
                       th_trace, refr_trace, state):  # fmt: skip
        # the eight parameters as 0-d arrays: a streaming step passes its modules' scalar
        # parameters as they are, with no torch.stack launch to make a [8, 1] block
        k = cuda.grid(1)
        if k >= x.shape[1]:
            return
        run_forward(x, state0, k, beta[()], gain[()], leak[()], theta[()], alpha[()],
                    vreset[()], adapt[()], rho[()], z, h, th_trace, refr_trace, state)  # fmt: skip

    @cuda.jit
    def backward(gz, gstate, h, th_trace, refr_trace, state0, params, slope, gx, gout):
        k = cuda.grid(1)
        T, K = gz.shape
        if k >= K:
            return
        n = k % params.shape[1]
        zero = np.float32(0.0)
        gv, gi = gstate[0, k], gstate[1, k]
        g_beta, g_theta = zero, zero
        p_beta, p_gain, p_theta, p_alpha = params[0, n], params[1, n], params[3, n], params[4, n]
        p_vreset, p_adapt = params[5, n], params[6, n]
        # chunk of steps t1 - CHUNK + 1 .. t1, plus the step before it (for v_in and r)
        gzs = cuda.local.array(CHUNK, np.float32)
        hs = cuda.local.array(CHUNK1, np.float32)
        one = np.float32(1.0)
        for q in range((T + CHUNK - 1) // CHUNK):
            t1 = T - 1 - q * CHUNK
            for u in range(CHUNK1):
                t = t1 - CHUNK + u  # u = 0 is the step before the chunk
                if t >= 0:
                    hs[u] = h[t, k]
                    if u > 0:
                        gzs[u - 1] = gz[t, k]
            for u in range(CHUNK, 0, -1):
                t = t1 - CHUNK + u
                if t >= 0:
                    # spikes are recomputed, not read: the forward tested exactly this
                    # (h - th > 0 and not blocked); reading them would add a quarter to
                    # the memory traffic of this bandwidth-bound kernel, and keeping them
                    # for the backward would hold T x K floats more memory
                    th = th_trace[t, k] if adaptive else p_theta
                    blocked = refr_trace[t, k] if refractory > 0 else 0
                    z = one if hs[u] - th > zero and blocked == 0 else zero
                    if t > 0:
                        th_p = th_trace[t - 1, k] if adaptive else p_theta
                        free_p = refr_trace[t - 1, k] == 0 if refractory > 0 else True
                        r = one if hs[u - 1] - th_p > zero and free_p else zero
                        v_in = _membrane_before(hs[u - 1], r, p_theta, p_vreset, reset, delay)
                    else:
                        v_in = state0[0, k]
                        r = zero
                        if v_in - (p_theta + p_adapt * state0[2, k]) > zero:
                            r = one
                    sgv = _surrogate_grad(hs[u] - th, sg, slope)
                    g_x, gv, gi, d_beta, d_theta = _backward(
                        gzs[u - 1], gv, gi, z, hs[u], v_in, r, blocked, sgv,
                        p_beta, p_gain, p_theta, p_alpha, p_vreset, reset, delay, detach,
                        synaptic, euler,
                    )  # fmt: skip
                    gx[t, k] = g_x
                    g_beta += d_beta
                    g_theta += d_theta
        gout[0, k] = gv
        gout[1, k] = gi
        gout[2, k] = g_beta
        gout[3, k] = g_theta

    return forward, backward, forward_scalar
