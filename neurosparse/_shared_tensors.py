"""Small read-only tensors made once per key and reused across calls.

A streaming step calls ``params()`` and the LIF kernel every step; making their zeros,
ones and unused placeholders anew cost a kernel or an allocation each time (on a GPU a
quarter of a 4096-neuron LIF step in a CUDA graph). Nothing made under
``inference_mode`` (autograd could not save it later) or during a CUDA-graph capture
(its fill would run only on replay, its memory is the graph's) is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import torch

_KEPT: dict[Hashable, torch.Tensor] = {}


def shared_tensor(key: Hashable, make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The tensor kept for ``key``, or ``make()`` (kept when it is safe to)."""
    t = _KEPT.get(key)
    if t is None:
        t = make()
        if not (torch.is_inference_mode_enabled()
                or (t.is_cuda and torch.cuda.is_current_stream_capturing())):  # fmt: skip
            _KEPT[key] = t
    return t
