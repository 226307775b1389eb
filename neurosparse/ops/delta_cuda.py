"""A cached transposed weight for the delta kernels' CUDA twins."""

from __future__ import annotations

import weakref

import torch

_TRANSPOSED: dict[int, tuple[tuple, torch.Tensor]] = {}


def transposed(weight: torch.Tensor) -> torch.Tensor:
    """A contiguous ``weightᵀ``, cached per weight tensor until its data or version change
    (optimizer steps and in-place copies bump the version)."""
    key = (weight.data_ptr(), weight._version, tuple(weight.shape), weight.dtype)
    hit = _TRANSPOSED.get(id(weight))
    if hit is not None and hit[0] == key:
        return hit[1]
    if hit is None:  # drop the copy with the weight (ids are reused after that)
        weakref.finalize(weight, _TRANSPOSED.pop, id(weight), None)
    wt = weight.detach().t().contiguous()
    _TRANSPOSED[id(weight)] = (key, wt)
    return wt
