"""Shared walk over a sequential model: convert each child, keep plain torch layers."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from ..errors import ParameterError
from ..sequential import Sequential

# stateless layers that act the same on [T, B, ...] as on each step
PASSTHROUGH = (nn.Linear, nn.Conv2d, nn.Flatten, nn.Dropout, nn.Identity, nn.ReLU,
               nn.AvgPool2d, nn.MaxPool2d, nn.BatchNorm1d)  # fmt: skip


def convert_sequence(
    children: list[nn.Module], convert: Callable[[nn.Module], nn.Module | None], peer: str
) -> Sequential:
    out = []
    for child in children:
        new = convert(child)
        if new is None:
            if isinstance(child, nn.Flatten):
                # applied per step by the peer; over [T, B, ...] it must keep T and B apart
                new = nn.Flatten(start_dim=max(child.start_dim, 0) + 1, end_dim=child.end_dim)
            elif isinstance(child, PASSTHROUGH):
                new = child
            else:
                raise ParameterError(
                    f"cannot convert {type(child).__module__}.{type(child).__name__} from "
                    f"{peer}: supported are its neurons and "
                    f"{', '.join(c.__name__ for c in PASSTHROUGH)}"
                )
        out.append(new)
    return Sequential(*out)
