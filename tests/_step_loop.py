"""A model that steps a module over time the way a user's Python loop does."""

from __future__ import annotations

import torch
from torch import nn


class StepLoop(nn.Module):
    """Calls ``net`` once per time step of ``x [T, B, ...]`` and stacks the outputs.

    The energy meter then sees ``T`` calls on ``[B, ...]`` inside one model call, the
    layout of snnTorch-style loops, as opposed to one call on the whole sequence.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.net(x[t]) for t in range(x.shape[0])])
