"""Shared walk over a sequential model: convert each child, keep plain torch layers."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import ParameterError
from ..sequential import Sequential

# act on the last dimension or element by element: the same on [T, B, ...] as per step
PASSTHROUGH = (nn.Linear, nn.Dropout, nn.Identity, nn.ReLU, nn.LeakyReLU, nn.Sigmoid,
               nn.Tanh)  # fmt: skip
# read their input as [N, C, ...]: over [T, B, ...] they need T merged into the batch
PER_STEP = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
            nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d,
            nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.BatchNorm1d, nn.BatchNorm2d,
            nn.BatchNorm3d, nn.Dropout2d, nn.ZeroPad2d, nn.Upsample)  # fmt: skip


class PerStep(nn.Module):
    """Apply a per-sample module (``Conv2d``, pooling, ...) to ``[T, B, ...]`` by merging
    T into the batch, as the peers' step loops apply it to each step.

    Batch norm in training mode then normalises over all ``T x B`` samples of a call, not
    per step as a peer's step loop does (SpikingJelly's multi-step mode does the same as
    here); in eval mode both are the same.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x):
        return self.module(x.flatten(0, 1)).unflatten(0, x.shape[:2])

    def extra_repr(self) -> str:
        return "over [T, B, ...]: T merged into the batch"


def per_step(module: nn.Module) -> nn.Module:
    """``module`` made to act on ``[T, B, ...]`` as it acts on each step's ``[B, ...]``."""
    if isinstance(module, nn.Flatten):
        # keep T and B apart; still a plain Flatten, which NIR export understands
        return nn.Flatten(start_dim=max(module.start_dim, 0) + 1, end_dim=module.end_dim)
    if isinstance(module, PASSTHROUGH):
        return module
    if isinstance(module, PER_STEP):
        return PerStep(module)
    return None


def convert_sequence(
    children: list[nn.Module], convert: Callable[[nn.Module], nn.Module | None], peer: str
) -> Sequential:
    out = []
    for child in children:
        new = convert(child)
        if new is None:
            new = per_step(child)
        if new is None:
            raise ParameterError(
                f"cannot convert {type(child).__module__}.{type(child).__name__} from "
                f"{peer}: supported are its neurons, nn.Flatten, "
                f"{', '.join(c.__name__ for c in PASSTHROUGH + PER_STEP)}"
            )
        out.append(new)
    return Sequential(*out)
