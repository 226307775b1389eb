"""Launching the delta kernels' CUDA twins on torch tensors (no copies).

Numba reads torch CUDA memory through ``numba.cuda.as_cuda_array`` and launches on
torch's current stream, so kernels and torch ops stay ordered. Kept here, apart from the
event layers' helpers, so the delta ops depend only on those layers' public ops.
"""

from __future__ import annotations

import weakref

import torch


class NumbaCuda:
    """Numba views of torch tensors on ``device`` and torch's current stream there."""

    def __init__(self, device: torch.device) -> None:
        from numba import cuda

        self._cuda = cuda
        self.stream = cuda.external_stream(torch.cuda.current_stream(device).cuda_stream)

    def view(self, t: torch.Tensor):
        return self._cuda.as_cuda_array(t.detach())


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
