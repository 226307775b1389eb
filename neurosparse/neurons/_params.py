"""Constructor checks of the neurons' parameters (finite values within a range)."""

from __future__ import annotations

import torch

from .._checks import check_range
from ..errors import ParameterError


def check_param(name: str, value, lo: float | None = None, hi: float | None = None) -> None:
    """Require finite ``value`` (scalar or tensor) with ``lo <= value <= hi`` elementwise.

    ``check_range`` alone lets NaN through (every comparison with NaN is False), and a
    NaN or infinite decay, threshold or slope does not fail later either: the membrane
    turns NaN and the neuron silently never fires (an infinite threshold times a zero
    reset is NaN too), so it is refused here, where the argument still has its name.

    Raises
    ------
    ParameterError
        If ``value`` holds NaN or an infinity, or lies outside ``[lo, hi]``.
    """
    v = torch.as_tensor(value, dtype=torch.float64)
    if not bool(torch.isfinite(v).all()):
        got = value if v.numel() == 1 else f"{int((~torch.isfinite(v)).sum())} non-finite values"
        raise ParameterError(f"{name} must be a finite number, got {got}")
    check_range(name, value, lo, hi)
