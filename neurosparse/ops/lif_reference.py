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
from typing import TYPE_CHECKING, NamedTuple

import torch

if TYPE_CHECKING:  # the surrogate objects are the neurons' (neurons/surrogate.py)
    from ..neurons.surrogate import Surrogate

RESETS = ("subtract", "zero", "none")


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
        r = (v - (p.threshold + p.adapt * a) > 0).to(x.dtype)
        a_new = p.rho * a + r if spec.adaptive else a
        th = p.threshold + p.adapt * a_new if spec.adaptive else p.threshold
        vb = (1 - r) * v if spec.reset == "zero" else v
        u = vb + p.gain * ((p.leak - vb) + d) if spec.euler else p.beta * vb + p.gain * d + p.leak
        v_new = u - r * p.threshold if spec.reset == "subtract" else u
        z = spec.surrogate(v_new - th)
        return z, NeuronState(v_new, i_new, a_new, c)

    th = p.threshold + p.adapt * a if spec.adaptive else p.threshold
    if spec.refractory > 0:
        free = (c <= 0).to(x.dtype)
        d = d * free
    u = v + p.gain * ((p.leak - v) + d) if spec.euler else p.beta * v + p.gain * d + p.leak
    z = spec.surrogate(u - th)
    if spec.refractory > 0:
        z = z * free
        fired = z.detach() > 0
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
