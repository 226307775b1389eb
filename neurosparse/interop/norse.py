"""Norse models -> neurosparse (``LIFCell``, ``LIF``, ``SequentialState`` stacks)."""

from __future__ import annotations

from torch import nn

from ..errors import ParameterError
from ..neurons import CubaLIF
from ..neurons import surrogate as sg
from ..sequential import Sequential
from ._walk import convert_sequence


def _cuba(p, dt: float) -> CubaLIF:
    if p.method != "super":
        raise ParameterError(f"Norse surrogate method {p.method!r} is not supported (only 'super')")
    # norse 1.1.0's SuperSpike backward ignores alpha (slope 1): reproduce what it computes
    return CubaLIF(float(p.tau_syn_inv), float(p.tau_mem_inv), float(p.v_leak), float(p.v_th),
                   float(p.v_reset), dt, sg.SuperSpike(1.0))  # fmt: skip


def _convert(child: nn.Module) -> nn.Module | None:
    import norse.torch as norse

    if isinstance(child, (norse.LIFCell, norse.LIF)):
        if child.p.tau_syn_inv.numel() != 1 or child.p.tau_mem_inv.numel() != 1:
            raise ParameterError("per-neuron Norse time constants are not supported")
        return _cuba(child.p, float(child.dt))
    if isinstance(child, (norse.LIFRecurrentCell, norse.LIFRecurrent)):
        raise ParameterError(f"recurrent Norse module {type(child).__name__} is not supported")
    return None


def from_norse(model: nn.Module) -> Sequential:
    """Convert a Norse ``SequentialState`` (or a single ``LIFCell`` / ``LIF``) into an
    :class:`~neurosparse.Sequential` over ``[T, B, ...]`` with identical spikes.
    """
    children = list(model.children()) if isinstance(model, nn.Sequential) else [model]
    return convert_sequence(children, _convert, "Norse")
