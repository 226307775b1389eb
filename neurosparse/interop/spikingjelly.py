"""SpikingJelly models -> neurosparse (``LIFNode`` / ``IFNode`` with a hard reset to 0,
multi-step or single-step ``nn.Sequential`` stacks of conv, pooling and linear layers)."""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from ..errors import ParameterError
from ..neurons import IF, LIF
from ..neurons import surrogate as sg
from ..sequential import Sequential
from ._walk import convert_sequence

_SURROGATES = {"ATan": sg.ATan, "Sigmoid": sg.Sigmoid}


def _surrogate(node) -> sg.Surrogate:
    fn = node.surrogate_function
    cls = _SURROGATES.get(type(fn).__name__)
    if cls is None:
        warnings.warn(f"SpikingJelly surrogate {type(fn).__name__} has no counterpart here; "
                      "using ATan(2) (spikes are unaffected, gradients differ)", stacklevel=3)
        return sg.ATan()
    return cls(float(fn.alpha))


def _threshold(node) -> float:
    # SpikingJelly fires at v >= v_threshold, we at v > threshold: the next float32 below
    # makes the two conditions the same for every float32 v (a hard reset never reads it)
    return float(torch.nextafter(torch.tensor(float(node.v_threshold)),
                                 torch.tensor(-math.inf)))  # fmt: skip


def _convert(child: nn.Module) -> nn.Module | None:
    from spikingjelly.activation_based import layer, neuron

    if isinstance(child, (neuron.LIFNode, neuron.IFNode)):
        name = type(child).__name__
        if type(child) not in (neuron.LIFNode, neuron.IFNode):
            raise ParameterError(f"SpikingJelly neuron {name} is not supported")
        if child.v_reset is None or float(child.v_reset) != 0.0:
            raise ParameterError(
                f"SpikingJelly {name} with v_reset={child.v_reset} is not supported: only the "
                "hard reset to 0 (v_reset=0.0, the default) converts with identical spikes"
            )
        kw = {"reset": "zero", "reset_delay": False, "surrogate": _surrogate(child)}
        if isinstance(child, neuron.IFNode):
            return IF(_threshold(child), **kw)
        if child.decay_input:
            raise ParameterError(
                "SpikingJelly LIFNode with decay_input=True (its default) scales the input by "
                "1/tau inside the neuron, which neurosparse's LIF does not; build it with "
                "decay_input=False (V = V - V/tau + X) to convert"
            )
        tau = float(child.tau)
        if tau != 2.0:
            # V - V/tau and beta*V round differently unless 1/tau is a power of two
            raise ParameterError(
                f"SpikingJelly LIFNode tau={tau}: only tau=2.0 (1/tau exact in binary) "
                "converts with bit-identical membranes; other tau would differ in rounding"
            )
        return LIF(1.0 - 1.0 / tau, _threshold(child), **kw)
    if isinstance(child, layer.SeqToANNContainer) or getattr(child, "step_mode", None) == "m":
        return child  # a multi-step layer already acts on [T, B, ...]
    if isinstance(child, neuron.BaseNode):
        raise ParameterError(f"SpikingJelly neuron {type(child).__name__} is not supported")
    return None


def from_spikingjelly(model: nn.Module) -> Sequential:
    """Convert a SpikingJelly ``nn.Sequential`` (``activation_based`` layers, single-step or
    multi-step) into an :class:`~neurosparse.Sequential` over ``[T, B, ...]``.

    Supported neurons: ``IFNode`` and ``LIFNode(tau=2.0, decay_input=False)``, each with
    the hard reset to 0 (SpikingJelly's default ``v_reset=0.0``). Their spikes are the
    same as SpikingJelly's in multi-step mode (tests check it on a conv net); anything else
    raises :class:`~neurosparse.errors.ParameterError` rather than converting approximately.
    Weights are shared, not copied. Gradients follow our surrogate and a detached reset.
    """
    children = list(model.children()) if isinstance(model, nn.Sequential) else [model]
    return convert_sequence(children, _convert, "SpikingJelly")
