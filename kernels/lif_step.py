"""Scalar math of one LIF-family step, shared by the CPU and CUDA sequence kernels.

These are plain Python functions on scalars (no decorators, no calls to other
functions of this module), so ``kernels/lif_cpu.py`` compiles them with
``numba.njit(inline="always")`` and ``kernels/lif_cuda.py`` with
``numba.cuda.jit(device=True)``: one definition of the model, two targets. The model
and the names are those of ``neurosparse/ops/lif_reference.py``.

Flags: ``reset`` 0 subtract / 1 zero / 2 none; ``sg`` the surrogate id of
``neurosparse.neurons.surrogate`` (one of :data:`SURROGATE_IDS`); booleans as 0/1.
"""

from __future__ import annotations

import math

import numpy as np

# the derivatives :func:`surrogate_grad` knows: fast sigmoid, arctan, triangle,
# straight-through, sigmoid (``kernel_id`` of the classes in neurons/surrogate.py)
SURROGATE_IDS = (0, 1, 2, 3, 4)


def check_surrogate_id(sg) -> None:
    """Refuse an id the kernels do not know (they would otherwise compute a wrong gradient)."""
    if sg not in SURROGATE_IDS:
        raise ValueError(
            f"surrogate id {sg!r} is not one the LIF kernels evaluate {SURROGATE_IDS}; "
            "run this surrogate through the torch reference"
        )


def surrogate_grad(x, sg, k):
    """Derivative of the spike w.r.t. ``x = v - threshold`` for surrogate ``sg``."""
    one = np.float32(1.0)
    if sg == 0:  # fast sigmoid / SuperSpike
        d = k * abs(x) + one
        return one / (d * d)
    if sg == 1:  # arctan
        q = np.float32(math.pi / 2) * k * x
        return k / np.float32(2.0) / (one + q * q)
    if sg == 2:  # triangle
        return k * max(np.float32(0.0), one - k * abs(x))
    if sg == 3:  # straight-through
        return one
    if sg == 4:  # sigmoid
        s = one / (one + math.exp(-k * x))
        return k * s * (one - s)
    return np.float32(np.nan)  # unreachable: get_kernels refuses other ids


def step_forward(
    xt, v, i, a, c,
    beta, gain, leak, theta, alpha, vreset, adapt, rho,
    reset, delay, synaptic, euler, adaptive, refractory,
):  # fmt: skip
    """One step. Returns ``(s, h, th, blocked, v, i, a, c)``.

    ``s`` the spike, ``h`` the membrane value it was tested on, ``th`` the threshold it
    was tested against, ``blocked`` 1 when a refractory period held the neuron.
    """
    one = np.float32(1.0)
    zero = np.float32(0.0)
    if synaptic:
        j = i + xt
        d = j
        i = j + alpha * j if euler else alpha * j
    else:
        d = xt
    blocked = 0
    if delay:
        r = one if v - (theta + adapt * a) > zero else zero
        if adaptive:
            a = rho * a + r
        th = theta + adapt * a if adaptive else theta
        vb = (one - r) * v if reset == 1 else v
        if euler:
            u = vb + gain * ((leak - vb) + d)
        else:
            u = beta * vb + gain * d + leak
        if reset == 0:
            u = u - r * theta
        s = one if u - th > zero else zero
        return s, u, th, blocked, u, i, a, c
    th = theta + adapt * a if adaptive else theta
    if refractory > 0 and c > zero:
        blocked = 1
        d = zero
    if euler:
        u = v + gain * ((leak - v) + d)
    else:
        u = beta * v + gain * d + leak
    s = one if u - th > zero and blocked == 0 else zero
    if refractory > 0:
        c = np.float32(refractory) if s > zero else max(c - one, zero)
    if reset == 0:
        v = u - s * theta
    elif reset == 1:
        v = (one - s) * u + s * vreset
    else:
        v = u
    if adaptive:
        a = rho * a + s
    return s, u, th, blocked, v, i, a, c


def membrane_before(h_prev, s_prev, theta, vreset, reset, delay):
    """The membrane entering a step, from the previous step's ``h`` and spike."""
    if delay or reset == 2:
        return h_prev
    if reset == 0:
        return h_prev - s_prev * theta
    return (np.float32(1.0) - s_prev) * h_prev + s_prev * vreset


def step_backward(
    gz, gv, gi, s, u, v_in, r, blocked, sgv,
    beta, gain, theta, alpha,
    vreset, reset, delay, detach, synaptic, euler,
):  # fmt: skip
    """Backward of :func:`step_forward`.

    ``gz`` grad of the spike, ``gv`` / ``gi`` grads of the membrane / current leaving the
    step, ``s, u`` the spike and tested membrane, ``v_in`` the membrane entering it,
    ``r`` the delayed reset of this step, ``sgv`` the surrogate derivative at ``u - th``.
    Returns ``(gx, gv_in, gi_in, gbeta, gtheta)``.
    """
    one = np.float32(1.0)
    zero = np.float32(0.0)
    gtheta = zero
    gbeta = zero
    if delay:
        gh = gv + gz * sgv
        gtheta -= gz * sgv
        if reset == 0:
            gtheta -= r * gh
        vb = (one - r) * v_in if reset == 1 else v_in
        if euler:
            gvb = gh * (one - gain)
        else:
            gvb = gh * beta
            gbeta = gh * vb
        gvin = gvb * (one - r) if reset == 1 else gvb
        gd = gh * gain
    else:
        gzt = gz
        if reset == 0:
            gu = gv
            gtheta -= s * gv
            if detach == 0:
                gzt -= gv * theta
        elif reset == 1:
            gu = gv * (one - s)
            if detach == 0:
                gzt += gv * (vreset - u)
        else:
            gu = gv
        gs = zero if blocked else gzt * sgv
        gu += gs
        gtheta -= gs
        if euler:
            gvin = gu * (one - gain)
        else:
            gvin = gu * beta
            gbeta = gu * v_in
        gd = zero if blocked else gu * gain
    if synaptic:
        gj = gd + gi * (one + alpha if euler else alpha)
        return gj, gvin, gj, gbeta, gtheta
    return gd, gvin, gi, gbeta, gtheta
