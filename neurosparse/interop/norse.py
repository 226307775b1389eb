"""Norse models -> neurosparse (``LIFCell``, ``LIF``, ``SequentialState`` stacks)."""

from __future__ import annotations

from torch import nn

from ..errors import ParameterError
from ..neurons import CubaLIF
from ..neurons import surrogate as sg
from ..sequential import Sequential
from ._walk import PerStep, convert_sequence, per_step


def _cuba(p, dt: float) -> CubaLIF:
    if p.method != "super":
        raise ParameterError(f"Norse surrogate method {p.method!r} is not supported (only 'super')")
    # norse 1.1.0's SuperSpike backward ignores alpha (slope 1): reproduce what it computes
    return CubaLIF(float(p.tau_syn_inv), float(p.tau_mem_inv), float(p.v_leak), float(p.v_th),
                   float(p.v_reset), dt, sg.SuperSpike(1.0))  # fmt: skip


def _neuron(child: nn.Module) -> nn.Module | None:
    import norse.torch as norse

    if isinstance(child, (norse.LIFCell, norse.LIF)):
        for name in ("tau_syn_inv", "tau_mem_inv", "v_leak", "v_th", "v_reset"):
            if getattr(child.p, name).numel() != 1:
                raise ParameterError(f"per-neuron Norse parameters are not supported: {name} "
                                     f"has {getattr(child.p, name).numel()} values")  # fmt: skip
        return _cuba(child.p, float(child.dt))
    if isinstance(child, (norse.LIFRecurrentCell, norse.LIFRecurrent)):
        raise ParameterError(f"recurrent Norse module {type(child).__name__} is not supported")
    return None


def _step_mode(child: nn.Module) -> nn.Module | None:
    """A child of a model stepped over time (``LIFCell``s): every layer sees ``[B, ...]``."""
    import norse.torch as norse

    if isinstance(child, norse.Lift):
        raise ParameterError("norse.Lift inside a model of Cells: Lift expects [T, B, ...], "
                             "the Cells one step; use one kind of module")
    return _neuron(child)


def _sequence_mode(child: nn.Module) -> nn.Module | None:
    """A child of a model applied to whole sequences (``LIF``, ``Lift``): plain layers
    already see ``[T, B, ...]``, and ``Lift(m)`` applies ``m`` per step."""
    import norse.torch as norse

    if isinstance(child, norse.LIFCell):
        raise ParameterError("norse.LIFCell inside a model of sequence modules (LIF, Lift): "
                             "a Cell takes one step; use norse.LIF")
    if isinstance(child, norse.Lift):
        inner = child.lifted_module
        if getattr(inner, "is_spiking_neuron", False) or _neuron(inner) is not None:
            raise ParameterError("norse.Lift around a neuron is not supported; use norse.LIF")
        return per_step(inner) or PerStep(inner)
    return _neuron(child) or child


def from_norse(model: nn.Module) -> Sequential:
    """Convert a Norse ``SequentialState`` (or a single ``LIFCell`` / ``LIF``) into an
    :class:`~neurosparse.Sequential` over ``[T, B, ...]`` with identical spikes.

    A model of ``LIFCell``s is one Norse steps over time (each layer sees ``[B, ...]``);
    a model of ``LIF`` / ``Lift`` modules is one Norse applies to ``[T, B, ...]``; both
    convert. ``Conv2d``, pooling and the like are applied per step (T merged into the
    batch).
    """
    import norse.torch as norse

    children = list(model.children()) if isinstance(model, nn.Sequential) else [model]
    sequence = any(isinstance(c, (norse.LIF, norse.Lift)) for c in children)
    return convert_sequence(children, _sequence_mode if sequence else _step_mode, "Norse")
