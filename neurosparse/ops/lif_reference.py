"""Pure step functions of the LIF family: the reference every kernel is held to.

They live below the modules, beside the op that falls back on them
(``ops/lif_sequence.py``); ``neurosparse.neurons.functional`` re-exports them.

One discrete model covers LIF, IF, ALIF and the exact snnTorch ``Leaky`` and Norse
``LIFCell`` conventions. Per step, with input ``x``, state ``(v, i, a, c)`` and
parameters ``p``:

**Input.** ``d = x``; or, with a synaptic current (``spec.synaptic``), ``j = i + x``,
``d = j`` and ``i' = alpha * j`` (decay form) or ``i' = j + alpha * j`` (Euler form,
``alpha = -dt/tau_syn``).

**Membrane.** Decay form: ``u = beta * v + gain * d + leak``. Euler form (Norse):
``u = v + gain * ((leak - v) + d)`` with ``gain = dt/tau_mem`` and ``leak = v_leak``.

**Delayed reset** (``spec.reset_delay``, snnTorch's default): the spike of the previous
step resets the membrane now. ``r = H(v - th_prev)`` (detached), then
``subtract``: ``v' = u - r * threshold``; ``zero``: ``u`` computed from ``v * (1 - r)``;
``none``: ``v' = u``. The spike ``z = H(v' - th)`` is tested on ``v'``, which is also
the membrane the state returns.

**Immediate reset** (Norse, and any neuron with a refractory period): ``z = H(u - th)``,
then ``subtract``: ``v' = u - z * threshold``; ``zero``: ``v' = (1 - z) u + z v_reset``;
``none``: ``v' = u``. ``z`` is detached in the reset unless ``spec.detach_reset`` is
False (Norse lets the gradient through its reset).

**Adaptation** (ALIF, Bellec et al. 2018): ``th = threshold + adapt * a`` and
``a' = rho * a + z`` driven by the detached spike train.

**Refractory period** (immediate reset only): after a spike the membrane ignores its
input and cannot fire for ``spec.refractory`` steps; ``c`` counts them down.

``H`` is ``x > 0`` forward and the surrogate derivative backward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch.autograd import forward_ad

# the surrogate objects are the neurons' (neurons/surrogate.py)
from ..neurons.surrogate import Surrogate

RESETS = ("subtract", "zero", "none")

# the 0 the CPU comparisons test against: a 0-d tensor, since a Python 0 is wrapped in a
# new tensor on every call (~2 µs of a small step's host time); comparing with 0 is exact
# in every float type, so the result is the same (made on the CPU as a normal tensor
# whatever default device or inference mode the importer runs under)
with torch.inference_mode(False):
    _ZERO = torch.zeros((), dtype=torch.float32, device="cpu")
# whether a transform may differentiate a spike without autograd's recording (both
# private to torch; where one is missing every spike goes through the surrogate's Function)
_functorch_active = getattr(torch._C, "_are_functorch_transforms_active", None)
_SKIP_FUNCTION = _functorch_active is not None and hasattr(forward_ad, "_current_level")


@dataclass(frozen=True)
class NeuronSpec:
    """Static structure of a neuron (what the kernel is specialised on)."""

    surrogate: Surrogate
    reset: str = "subtract"
    reset_delay: bool = True
    detach_reset: bool = True
    synaptic: bool = False
    euler: bool = False
    adaptive: bool = False
    refractory: int = 0


class NeuronParams(NamedTuple):
    """Per-neuron parameters, each broadcastable to the feature shape."""

    beta: torch.Tensor
    gain: torch.Tensor
    leak: torch.Tensor
    threshold: torch.Tensor
    alpha: torch.Tensor
    v_reset: torch.Tensor
    adapt: torch.Tensor
    rho: torch.Tensor


class NeuronState(NamedTuple):
    """Membrane ``v``, synaptic current ``i``, adaptation ``a``, refractory count ``c``."""

    v: torch.Tensor
    i: torch.Tensor
    a: torch.Tensor
    c: torch.Tensor


def initial_state(like: torch.Tensor, v_init: torch.Tensor | float = 0.0) -> NeuronState:
    """Resting state shaped like one time step ``like`` (``[B, ...]``)."""
    zeros = torch.zeros_like(like)
    v = zeros + torch.as_tensor(v_init, dtype=like.dtype, device=like.device)
    return NeuronState(v, zeros.clone(), zeros.clone(), zeros.clone())


def _test(op, h: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``op(h, 0).to(dtype)`` for a comparison ``op`` (``torch.gt``: ``(h > 0).to(dtype)``);
    on the CPU one kernel writing ``dtype`` directly (the bool tensor and its conversion
    cost ~3 µs more on a 1 x 64 step, ~35 µs on 32 x 1024)."""
    if type(h) is torch.Tensor and h.is_cpu:
        return op(h, _ZERO, out=torch.empty_like(h, dtype=dtype))
    return op(h, 0).to(dtype)


def _spike(h: torch.Tensor, spec: NeuronSpec) -> torch.Tensor:
    """``spec.surrogate(h)``: the Heaviside step of ``h``, differentiable by the surrogate.

    Where nothing is differentiated (no autograd recording for ``h``, no forward-mode
    or functorch transform) the forward of a surrogate called the built-in way
    (``SpikeFunction``: ``(h > 0).to(h.dtype)``) is computed directly: the autograd
    Function's call costs a few µs of host time per step and returns the same tensor.
    """
    surrogate = spec.surrogate
    if (_SKIP_FUNCTION and type(surrogate).__call__ is Surrogate.__call__
            and not (h.requires_grad and torch.is_grad_enabled())
            and forward_ad._current_level < 0 and not _functorch_active()):  # fmt: skip
        return _test(torch.gt, h, h.dtype)
    return surrogate(h)


def _reset_after(u: torch.Tensor, z: torch.Tensor, p: NeuronParams, spec: NeuronSpec):
    zr = z.detach() if spec.detach_reset else z
    if spec.reset == "subtract":
        return u - zr * p.threshold
    if spec.reset == "zero":
        return (1 - zr) * u + zr * p.v_reset
    return u


def neuron_step(
    x: torch.Tensor, state: NeuronState, p: NeuronParams, spec: NeuronSpec
) -> tuple[torch.Tensor, NeuronState]:
    """Advance one time step. ``x`` and every state tensor are ``[B, ...]``.

    Returns
    -------
    (z, state) : spikes of this step (float, 0 or 1) and the new state.
    """
    v, i, a, c = state
    if spec.synaptic:
        j = i + x
        d = j
        i_new = j + p.alpha * j if spec.euler else p.alpha * j
    else:
        d, i_new = x, i

    if spec.reset_delay:
        # ``+ p.adapt * a`` stays for a non-adaptive neuron too: ``0 * a`` is exact only
        # for a finite ``a`` (an explicit state may hold anything), and adding it rounds
        # the threshold to ``a``'s dtype (a half-precision state)
        r = _test(torch.gt, v - (p.threshold + p.adapt * a), x.dtype)
        a_new = p.rho * a + r if spec.adaptive else a
        th = p.threshold + p.adapt * a_new if spec.adaptive else p.threshold
        vb = (1 - r) * v if spec.reset == "zero" else v
        # a LIF's ``gain * d`` (1) and ``+ leak`` (0) stay: ``-0.0 + 0.0`` is +0.0, so the
        # sum's bits depend on it, and testing for a gain of 1 costs what the product does
        u = vb + p.gain * ((p.leak - vb) + d) if spec.euler else p.beta * vb + p.gain * d + p.leak
        v_new = u - r * p.threshold if spec.reset == "subtract" else u
        z = _spike(v_new - th, spec)
        return z, NeuronState(v_new, i_new, a_new, c)

    th = p.threshold + p.adapt * a if spec.adaptive else p.threshold
    if spec.refractory > 0:
        free = _test(torch.le, c, x.dtype)
        d = d * free
    u = v + p.gain * ((p.leak - v) + d) if spec.euler else p.beta * v + p.gain * d + p.leak
    z = _spike(u - th, spec)
    if spec.refractory > 0:
        z = z * free
        fired = torch.gt(z.detach(), _ZERO if z.is_cpu else 0)
        c_new = torch.where(fired, torch.full_like(c, spec.refractory), (c - 1).clamp(min=0))
    else:
        c_new = c
    v_new = _reset_after(u, z, p, spec)
    a_new = p.rho * a + z.detach() if spec.adaptive else a
    return z, NeuronState(v_new, i_new, a_new, c_new)


def neuron_sequence(
    x: torch.Tensor, state: NeuronState, p: NeuronParams, spec: NeuronSpec
) -> tuple[torch.Tensor, NeuronState]:
    """Reference sequence mode: loop :func:`neuron_step` over ``x`` of shape ``[T, B, ...]``."""
    out = []
    for t in range(x.shape[0]):
        z, state = neuron_step(x[t], state, p, spec)
        out.append(z)
    return torch.stack(out), state
