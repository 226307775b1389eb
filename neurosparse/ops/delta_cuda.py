"""The transposed weight the delta kernels' CUDA twins read."""

from __future__ import annotations

import torch


def transposed(weight: torch.Tensor) -> torch.Tensor:
    """A contiguous ``weightᵀ``, made per call (a view when the weight is stored
    transposed).

    Not cached: a copy keyed on the tensor's version counter misses writes through
    ``weight.data``, and the delta kernels run a whole sequence per call, so one
    transpose per call is a small share of it.
    """
    wt = weight.detach().t()
    return wt if wt.is_contiguous() else wt.contiguous()
