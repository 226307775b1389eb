"""Collect what the plots draw: spikes of every neuron layer, membrane potentials."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from .._checks import check_float_tensor, check_rank


def _is_neuron(module: nn.Module) -> bool:
    return bool(getattr(module, "is_spiking_neuron", False))


@torch.no_grad()
def record_spikes(
    model: nn.Module, x: torch.Tensor, select: Callable[[nn.Module], bool] | None = None
) -> tuple[Any, dict[str, torch.Tensor]]:
    """Run ``model(x)`` once and keep the output of every selected layer.

    Parameters
    ----------
    model
        Any module run on a time-first input (e.g. :class:`~neurosparse.Sequential`).
    x
        Its input, ``[T, B, ...]``.
    select
        Which submodules to record (default: neurosparse spiking neurons). A module that
        returns ``(output, state)`` is recorded by its output.

    Returns
    -------
    (output, {name: tensor})
        The model's output and, in call order, each recorded layer's output
        ``[T, B, ...]`` (detached) under its name in ``model.named_modules()``, ready for
        :func:`~neurosparse.viz.sparsity_over_time` and :func:`~neurosparse.viz.raster`.
    """
    select = select or _is_neuron
    recorded: dict[str, torch.Tensor] = {}
    hooks = []

    def hook(name):
        def keep(_module, _inputs, out):
            out = out[0] if isinstance(out, tuple) else out
            recorded[name] = out.detach().clone()
        return keep

    for name, module in model.named_modules():
        if module is not model and select(module):
            hooks.append(module.register_forward_hook(hook(name)))
    try:
        out = model(x)
    finally:
        for h in hooks:
            h.remove()
    return out, recorded


@torch.no_grad()
def record_membrane(neuron: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Step a neurosparse neuron through ``x [T, B, ...]``; return spikes and membrane ``v``.

    The membrane is the state after each step (after reset), both ``[T, B, ...]``; the
    neuron's own stored state is left untouched (the state is passed explicitly).
    """
    x = check_float_tensor("x", x)
    check_rank("x", x, tuple(range(2, 9)), "[T, B, ...], time first")
    state = None
    spikes, vs = [], []
    for t in range(x.shape[0]):
        z, state = neuron.step(x[t], neuron.initial_state(x[t]) if state is None else state)
        spikes.append(z)
        vs.append(state.v)
    return torch.stack(spikes), torch.stack(vs)
