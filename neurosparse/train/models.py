"""Model builders for ``neurosparse.train``: a spiking MLP and the DVS conv SNN.

Both take spike tensors ``[T, B, C, H, W]`` and return output spikes ``[T, B, classes]``
(rate-coded: the loss reads their count). The neurons run in sequence mode, which
starts every call from rest: no state is carried from one batch to the next, so the
modules are plain functions of their input as DDP and ``torch.compile`` expect.

``layer = "dense"`` uses ``nn.Linear`` / ``nn.Conv2d``; ``layer = "event"`` converts each
to ``neurosparse.layers.EventLinear`` / ``EventConv2d`` (same parameters and layout, so
checkpoints interchange). Under bf16 autocast the synaptic layers run in bf16 and the
neurons get float32 input: the membrane is integrated in full precision.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..demo import spike_count_loss  # noqa: F401 - the loop imports it from here
from ..errors import ParameterError
from ..neurons import LIF
from ..neurons.surrogate import FastSigmoid
from .config import ModelConfig


def per_step(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a per-frame layer to every step of ``x [T, B, ...]`` at once."""
    return layer(x.flatten(0, 1)).unflatten(0, x.shape[:2])


def spiking(neuron: nn.Module, current: torch.Tensor) -> torch.Tensor:
    """Spikes of ``neuron`` (sequence mode, from rest) for input current ``[T, B, ...]``."""
    return neuron(current.float())[0]


def as_layer(dense: nn.Module, kind: str) -> nn.Module:
    """``dense`` itself, or its event-driven twin from ``neurosparse.layers``."""
    if kind == "dense":
        return dense
    try:
        from ..layers.event_conv2d import EventConv2d
        from ..layers.event_linear import EventLinear
    except ImportError as e:
        raise ParameterError(
            f"config key 'model.layer' is 'event' but neurosparse.layers has no event layers "
            f"here ({e}); use layer = 'dense'"
        ) from None
    twin = EventLinear if isinstance(dense, nn.Linear) else EventConv2d
    # from_dense initialises the new layer before copying the weights in; keep that draw
    # off the global RNG so the rest of the model gets the same weights as with "dense".
    with torch.random.fork_rng(devices=[]):
        return twin.from_dense(dense)


class SpikingMLP(nn.Module):
    """Flatten -> Linear -> LIF -> Linear -> LIF (the demo's network)."""

    def __init__(self, n_in: int, hidden: int, n_classes: int,
                 make_neuron: Callable[[], nn.Module], layer: str = "dense") -> None:  # fmt: skip
        super().__init__()
        self.fc1 = as_layer(nn.Linear(n_in, hidden), layer)
        self.n1 = make_neuron()
        self.fc2 = as_layer(nn.Linear(hidden, n_classes), layer)
        self.n2 = make_neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = spiking(self.n1, per_step(self.fc1, x.flatten(2)))
        return spiking(self.n2, per_step(self.fc2, z))


class ConvSNN(nn.Module):
    """Conv 2->c1 5x5/2 + LIF, Conv c1->c2 3x3/2 + LIF, avg-pool to p x p, Linear + LIF.

    The network of ``benchmarks/gpu.py`` (``conv_snn``) with c1, c2, p = 32, 64, 8 on
    128 x 128 DVS input.
    """

    def __init__(self, in_channels: int, channels: tuple[int, int], pool: int, n_classes: int,
                 make_neuron: Callable[[], nn.Module], layer: str = "dense") -> None:  # fmt: skip
        super().__init__()
        c1, c2 = channels
        self.c1 = as_layer(nn.Conv2d(in_channels, c1, 5, stride=2, padding=2), layer)
        self.c2 = as_layer(nn.Conv2d(c1, c2, 3, stride=2, padding=1), layer)
        self.fc = as_layer(nn.Linear(c2 * pool * pool, n_classes), layer)
        self.pool = pool
        self.n1, self.n2, self.n3 = make_neuron(), make_neuron(), make_neuron()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = spiking(self.n1, per_step(self.c1, x))
        z = spiking(self.n2, per_step(self.c2, z))
        pooled = nn.functional.adaptive_avg_pool2d(z.flatten(0, 1), self.pool).flatten(1)
        return spiking(self.n3, self.fc(pooled).unflatten(0, z.shape[:2]))


def build_model(cfg: ModelConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """The network ``cfg`` describes, for per-step input ``[C, H, W]`` and ``n_classes``."""

    def make_neuron() -> nn.Module:
        return LIF(cfg.beta, cfg.threshold, surrogate=FastSigmoid(cfg.surrogate_slope))

    if cfg.arch == "mlp":
        n_in = 1
        for s in input_shape:
            n_in *= s
        return SpikingMLP(n_in, cfg.hidden, n_classes, make_neuron, cfg.layer)
    if len(input_shape) != 3:
        raise ParameterError(
            f"model.arch = 'conv' needs frames [C, H, W] per step, got shape {input_shape}"
        )
    channels = (cfg.channels[0], cfg.channels[1])
    return ConvSNN(input_shape[0], channels, cfg.pool, n_classes, make_neuron, cfg.layer)


# public API (re-exported by neurosparse.train); per_step and spike_count_loss
# (neurosparse.demo's, for the loop) are imported from here by name
__all__ = ["build_model", "SpikingMLP", "ConvSNN"]
