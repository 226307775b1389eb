"""The one autograd Function of the event ops: ``y = op(x, weight) + bias`` over an index.

The event Linear (``ops/event_linear.py``), the event Conv2d (``ops/event_conv2d.py``)
and the ELL sparse Linear (``ops/ell_linear.py`` on the CPU, ``ops/sparse_event_linear.py``
on CUDA) differ in their kernels, not in their autograd plumbing: each builds an index of
its events first, then runs a forward over it and, in backward, an input gradient and a
weight gradient. An :class:`EventOp` names those three functions; :func:`apply_event_op`
runs them with the bookkeeping they share (what is saved, which gradients are asked
for, the bias gradient, and no autograd machinery at all in inference).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.autograd.function import once_differentiable


@dataclass(frozen=True)
class EventOp:
    """The kernels of one event op.

    Attributes
    ----------
    forward : callable
        ``(x, weight, bias, index) -> y``; ``bias`` may be None.
    grad_input : callable
        ``(gy, x, weight, index) -> grad of x``. ``x`` is None unless ``saves_input``.
    grad_weight : callable
        ``(gy, x, weight, index) -> grad of weight`` (same ``x``).
    bias_dims : tuple of int
        Axes of ``gy`` the bias gradient sums over.
    saves_input : bool
        Whether backward needs ``x`` itself (the ELL ops); the others read the events
        from their index and do not keep ``x`` alive.
    """

    forward: Callable[..., torch.Tensor]
    grad_input: Callable[..., torch.Tensor]
    grad_weight: Callable[..., torch.Tensor]
    bias_dims: tuple[int, ...] = (0,)
    saves_input: bool = False


class _EventFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, index, op):  # type: ignore[override]
        ctx.index, ctx.op, ctx.has_bias = index, op, bias is not None
        ctx.save_for_backward(weight, x if op.saves_input else None)
        return op.forward(x, weight, bias, index)

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):  # type: ignore[override]
        weight, x = ctx.saved_tensors
        op, index, gy = ctx.op, ctx.index, gy.contiguous()
        gx = op.grad_input(gy, x, weight, index) if ctx.needs_input_grad[0] else None
        gw = op.grad_weight(gy, x, weight, index) if ctx.needs_input_grad[1] else None
        gb = gy.sum(op.bias_dims) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb, None, None


def apply_event_op(
    op: EventOp, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, index: Any
) -> torch.Tensor:
    """``op`` over a prebuilt ``index`` as an autograd op (gradients to x, weight, bias).

    ``x`` is passed so autograd can route its gradient; the values the forward reads are
    the index's (and ``x``'s for an op that reads it).
    """
    if not torch.is_grad_enabled() or not (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    ):  # inference: skip autograd's Function machinery (~10 µs of host time a call)
        return op.forward(x, weight, bias, index)
    return _EventFn.apply(x, weight, bias, index, op)
