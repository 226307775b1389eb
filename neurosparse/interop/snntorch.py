"""snnTorch models -> neurosparse (``Leaky``, ``Synaptic``, Linear / Conv2d stacks)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ParameterError
from ..neurons import LIF
from ..neurons import surrogate as sg
from ..sequential import Sequential
from ._walk import convert_sequence

_SURROGATES = {"atan": sg.ATan, "fast_sigmoid": sg.FastSigmoid, "triangular": sg.Triangle,
               "straight_through_estimator": sg.StraightThrough, "sigmoid": sg.Sigmoid}  # fmt: skip


def _surrogate(module) -> sg.Surrogate:
    """Map snnTorch's ``spike_grad`` (a closure such as ``atan.<locals>.inner``)."""
    fn = getattr(module, "spike_grad", None)
    name = getattr(fn, "__qualname__", "").split(".")[0]
    cls = _SURROGATES.get(name)
    if cls is None:
        return sg.ATan()  # snnTorch's default
    cells = [c.cell_contents for c in (getattr(fn, "__closure__", None) or ())]
    slopes = [c for c in cells if isinstance(c, (int, float)) and not isinstance(c, bool)]
    return cls(float(slopes[0])) if slopes else cls()


def _reset(module) -> str:
    return {0: "subtract", 1: "zero", 2: "none"}[int(module.reset_mechanism_val)]


def _threshold(module):
    # a scalar or one per neuron, as snnTorch allows; LIF takes either
    return torch.as_tensor(module.threshold, dtype=torch.float32).detach().clone()


def _check_plain(module) -> None:
    """Refuse the snnTorch options LIF does not model rather than drop them silently."""
    name = type(module).__name__
    graded = torch.as_tensor(getattr(module, "graded_spikes_factor", 1.0))
    if not bool((graded == 1).all()):
        raise ParameterError(f"snnTorch {name} with graded_spikes_factor != 1 is not supported "
                             f"(spikes would differ in size), got {graded.tolist()}")  # fmt: skip
    if getattr(module, "inhibition", False):
        raise ParameterError(f"snnTorch {name} with inhibition=True is not supported")
    if getattr(module, "state_quant", False):
        raise ParameterError(f"snnTorch {name} with state_quant is not supported")


def _convert(child: nn.Module) -> nn.Module | None:
    import snntorch as snn

    if isinstance(child, (snn.RLeaky, snn.RSynaptic)):
        raise ParameterError(f"recurrent snnTorch neuron {type(child).__name__} is not supported")
    if isinstance(child, (snn.Leaky, snn.Synaptic)) and not child.reset_delay:
        raise ParameterError(
            "snnTorch neurons with reset_delay=False are not supported; neurosparse matches "
            "snnTorch's default delayed reset exactly"
        )
    if isinstance(child, (snn.Leaky, snn.Synaptic)):
        _check_plain(child)
    if isinstance(child, snn.Synaptic):
        return LIF.snntorch_synaptic(child.alpha.detach().clone(), child.beta.detach().clone(),
                                     _threshold(child), _reset(child), _surrogate(child))
    if isinstance(child, snn.Leaky):
        return LIF.snntorch(child.beta.detach().clone(), _threshold(child), _reset(child),
                            _surrogate(child))  # fmt: skip
    return None


def from_snntorch(model: nn.Module) -> Sequential:
    """Convert an snnTorch model built as ``nn.Sequential`` (``init_hidden=True`` neurons,
    applied step by step) into an :class:`~neurosparse.Sequential` run on ``[T, B, ...]``.

    The result gives the same spikes as stepping the snnTorch model over ``T`` and its
    neurons the same membranes (tests check 1e-6 over 100 steps). Weights are shared,
    not copied.
    """
    children = list(model.children()) if isinstance(model, nn.Sequential) else [model]
    return convert_sequence(children, _convert, "snnTorch")
