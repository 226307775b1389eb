"""Fused LIF-family sequence kernels for the CPU (``numba.njit(parallel=True)``).

The model is the one documented in ``neurosparse/neurons/functional.py`` (reference
step function); this file is its torch-free twin. A sequence ``x[T, B*N]`` runs in one
call: threads split the ``B*N`` neurons into blocks, each block walks all T steps with
its state in a small buffer that stays in L1, and the innermost loop runs over
contiguous neurons so it vectorises.

Forward stores only what the backward needs: the spikes ``z`` (the output anyway), the
membrane value each spike was tested on ``h``, the threshold ``th`` (only for adaptive
neurons) and the refractory mask (only with a refractory period). The backward walks
time in reverse and recomputes everything else from those.

Flags (``int`` arguments): ``reset`` 0 subtract / 1 zero / 2 none; ``sg`` the surrogate
id of ``neurosparse.neurons.surrogate``; booleans as 0/1.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

BLOCK = 512


@njit(inline="always", cache=True)
def surrogate_grad(x, sg, k):
    if sg == 0:  # fast sigmoid / SuperSpike
        d = k * abs(x) + np.float32(1.0)
        return np.float32(1.0) / (d * d)
    if sg == 1:  # arctan
        q = np.float32(math.pi / 2) * k * x
        return k / np.float32(2.0) / (np.float32(1.0) + q * q)
    if sg == 2:  # triangle
        return k * max(np.float32(0.0), np.float32(1.0) - k * abs(x))
    if sg == 3:  # straight-through
        return np.float32(1.0)
    s = np.float32(1.0) / (np.float32(1.0) + np.exp(-k * x))  # sigmoid
    return k * s * (np.float32(1.0) - s)


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
    batches = K // n_feat
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for job in prange(batches * n_blocks):
        b = job // n_blocks
        n0 = (job % n_blocks) * BLOCK
        n1 = min(n0 + BLOCK, n_feat)
        base = b * n_feat
        for n in range(n0, n1):
            k = base + n
            v_out[k] = v0[k]
            i_out[k] = i0[k]
            a_out[k] = a0[k]
            c_out[k] = c0[k]
        for t in range(T):
            for n in range(n0, n1):
                k = base + n
                v = v_out[k]
                a = a_out[k]
                xt = x[t, k]
                if synaptic:
                    j = i_out[k] + xt
                    d = j
                    if euler:
                        i_out[k] = j + alpha[n] * j
                    else:
                        i_out[k] = alpha[n] * j
                else:
                    d = xt
                if delay:
                    r = one if v - (theta[n] + adapt[n] * a) > zero else zero
                    if adaptive:
                        a = rho[n] * a + r
                        a_out[k] = a
                        th = theta[n] + adapt[n] * a
                    else:
                        th = theta[n]
                    vb = (one - r) * v if reset == 1 else v
                    if euler:
                        u = vb + gain[n] * ((leak[n] - vb) + d)
                    else:
                        u = beta[n] * vb + gain[n] * d + leak[n]
                    if reset == 0:
                        u = u - r * theta[n]
                    s = one if u - th > zero else zero
                    v_out[k] = u
                else:
                    if adaptive:
                        th = theta[n] + adapt[n] * a
                    else:
                        th = theta[n]
                    free = one
                    if refractory > 0:
                        if c_out[k] > zero:
                            free = zero
                            d = zero
                        refr_trace[t, k] = 1 if free == zero else 0
                    if euler:
                        u = v + gain[n] * ((leak[n] - v) + d)
                    else:
                        u = beta[n] * v + gain[n] * d + leak[n]
                    s = one if u - th > zero else zero
                    s = s * free
                    if refractory > 0:
                        if s > zero:
                            c_out[k] = np.float32(refractory)
                        else:
                            c_out[k] = max(c_out[k] - one, zero)
                    if reset == 0:
                        v_out[k] = u - s * theta[n]
                    elif reset == 1:
                        v_out[k] = (one - s) * u + s * vreset[n]
                    else:
                        v_out[k] = u
                    if adaptive:
                        a_out[k] = rho[n] * a + s
                z[t, k] = s
                h[t, k] = u
                if adaptive:
                    th_trace[t, k] = th


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
    batches = K // n_feat
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for job in prange(batches * n_blocks):
        b = job // n_blocks
        n0 = (job % n_blocks) * BLOCK
        n1 = min(n0 + BLOCK, n_feat)
        base = b * n_feat
        for n in range(n0, n1):
            k = base + n
            gv0[k] = gv_T[k]
            gi0[k] = gi_T[k]
            gbeta[k] = zero
            gtheta[k] = zero
        for t in range(T - 1, -1, -1):
            for n in range(n0, n1):
                k = base + n
                r = zero
                gv = gv0[k]  # running grad w.r.t. the membrane leaving step t
                s = z[t, k]
                u = h[t, k]
                th = th_trace[t, k] if adaptive else theta[n]
                # membrane entering step t (the state leaving step t - 1)
                if t > 0:
                    up = h[t - 1, k]
                    if delay:
                        v_in = up
                    else:
                        sp = z[t - 1, k]
                        if reset == 0:
                            v_in = up - sp * theta[n]
                        elif reset == 1:
                            v_in = (one - sp) * up + sp * vreset[n]
                        else:
                            v_in = up
                    if delay:
                        r = z[t - 1, k]
                else:
                    v_in = v0[k]
                    if delay:
                        r = one if v_in - (theta[n] + adapt[n] * a0[k]) > zero else zero
                sgv = surrogate_grad(u - th, sg, slope)
                if delay:
                    gh = gv + gz[t, k] * sgv
                    gtheta[k] += -gz[t, k] * sgv
                    if reset == 0:
                        gtheta[k] += -r * gh
                    gu = gh
                    vb = (one - r) * v_in if reset == 1 else v_in
                    if euler:
                        gvb = gu * (one - gain[n])
                    else:
                        gvb = gu * beta[n]
                        gbeta[k] += gu * vb
                    gvin = gvb * (one - r) if reset == 1 else gvb
                    gd = gu * gain[n]
                else:
                    free = one
                    if refractory > 0 and refr_trace[t, k] != 0:
                        free = zero
                    gzt = gz[t, k]
                    if reset == 0:
                        gu = gv
                        gtheta[k] += -s * gv
                        if detach == 0:
                            gzt += -gv * theta[n]
                    elif reset == 1:
                        gu = gv * (one - s)
                        if detach == 0:
                            gzt += gv * (vreset[n] - u)
                    else:
                        gu = gv
                    gs = gzt * sgv * free
                    gu += gs
                    gtheta[k] += -gs
                    if euler:
                        gvin = gu * (one - gain[n])
                    else:
                        gvin = gu * beta[n]
                        gbeta[k] += gu * v_in
                    gd = gu * gain[n] * free
                if synaptic:
                    if euler:
                        gj = gd + gi0[k] * (one + alpha[n])
                    else:
                        gj = gd + gi0[k] * alpha[n]
                    gx[t, k] = gj
                    gi0[k] = gj
                else:
                    gx[t, k] = gd
                gv0[k] = gvin
