"""Parameter initialisation shared by the layers that stand in for ``nn.Linear`` / ``nn.Conv2d``."""

from __future__ import annotations

import math

import torch
from torch import nn


def init_like_torch(weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """``nn.Linear`` / ``nn.Conv2d``'s initialisation: Kaiming-uniform weight (a = sqrt(5))
    and a bias uniform in ±1/sqrt(fan_in), so a converted model starts where torch's does."""
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(weight[0].numel())
        nn.init.uniform_(bias, -bound, bound)
