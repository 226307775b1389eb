"""Best-matching dendritic segment as one autograd op.

``segment_activation(context, weights, select)`` returns, per sample and unit, the
signed activation of the unit's best-matching segment and that segment's index.
CPU tensors with sparse contexts run the Numba kernel of ``kernels/sdr_segments.py``
(which skips zero context entries); dense contexts (``auto`` mode), other devices, or
``NEUROSPARSE_KERNELS=torch`` run :func:`segment_activation_reference` (one matmul over
all segments, then a gather). ``NEUROSPARSE_KERNELS=numba`` forces the kernel.
Tests hold the two to each other in value and gradient.
"""

from __future__ import annotations

import numpy as np
import torch

from .._checks import check_choice, check_float_tensor, check_rank, check_same_device
from ..errors import DTypeError, ShapeError
from . import registry

OP = "sdr_segment_activation"
registry.register(OP, "cpu")

_SELECT = ("absmax", "max")
# Context density above which NEUROSPARSE_KERNELS=auto prefers the matmul reference
# (benchmarks/sdr.py: the kernel is ~2.7x faster on one-hot contexts, ~0.5x on dense ones).
AUTO_DENSE_FRACTION = 0.25


def segment_activation_reference(
    context: torch.Tensor, weights: torch.Tensor, select: str = "absmax"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pure-torch reference: all segment activations, then the best one per unit.

    Parameters
    ----------
    context : [M, D] tensor
    weights : [U, S, D] tensor
    select : ``"absmax"`` (largest ``|d|``) or ``"max"`` (largest ``d``)

    Returns
    -------
    value : [M, U] signed activation of the selected segment
    index : [M, U] int64 index of the selected segment
    """
    U, S, D = weights.shape
    d = (context @ weights.reshape(U * S, D).t()).reshape(context.shape[0], U, S)
    key = d.abs() if select == "absmax" else d
    index = key.argmax(dim=-1)
    value = d.gather(-1, index.unsqueeze(-1)).squeeze(-1)
    return value, index


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def _pick(name: str, big: bool):
    """The parallel kernel ``name`` for big problems, its ``_serial`` twin otherwise
    (thread start-up costs more than small problems take)."""
    from ..kernels import sdr_segments

    return getattr(sdr_segments, name if big else name + "_serial")


class _SegmentActivation(torch.autograd.Function):
    @staticmethod
    def forward(ctx, context, weights, absmax: bool):  # type: ignore[override]
        from ..kernels import sdr_segments

        M, (U, S, D) = context.shape[0], weights.shape
        c, w = _np(context), _np(weights)
        value = np.empty((M, U), dtype=c.dtype)
        index = np.empty((M, U), dtype=np.int64)
        big = M * U * S * D >= sdr_segments.PARALLEL_MIN_WORK
        ctx.big = big
        _pick("segment_forward", big)(c, w, bool(absmax), value, index)
        index_t = torch.from_numpy(index)
        ctx.save_for_backward(context, weights, index_t)
        ctx.mark_non_differentiable(index_t)
        return torch.from_numpy(value), index_t

    @staticmethod
    def backward(ctx, grad_value, _grad_index):  # type: ignore[override]
        context, weights, index = ctx.saved_tensors
        g = _np(grad_value.to(context.dtype))
        idx = index.numpy()
        grad_c = grad_w = None
        if ctx.needs_input_grad[0]:
            out = np.empty(tuple(context.shape), dtype=g.dtype)
            _pick("segment_backward_context", ctx.big)(g, idx, _np(weights), out)
            grad_c = torch.from_numpy(out)
        if ctx.needs_input_grad[1]:
            out = np.empty(tuple(weights.shape), dtype=g.dtype)
            _pick("segment_backward_weights", ctx.big)(g, idx, _np(context), out)
            grad_w = torch.from_numpy(out)
        return grad_c, grad_w, None


def segment_activation(
    context: torch.Tensor, weights: torch.Tensor, select: str = "absmax"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed activation and index of each unit's best-matching dendritic segment.

    Parameters
    ----------
    context : [M, D] float tensor
        One context vector per sample (zeros are skipped by the CPU kernel).
    weights : [U, S, D] float tensor
        ``S`` segments of ``D`` weights for each of ``U`` units.
    select : ``"absmax"`` or ``"max"``
        Pick the segment with the largest ``|d|`` (Iyer et al. 2022's absolute-max
        gating) or the largest ``d``.

    Returns
    -------
    value : [M, U] tensor (differentiable in ``context`` and ``weights``)
    index : [M, U] int64 tensor
    """
    check_float_tensor("context", context)
    check_float_tensor("weights", weights)
    check_rank("context", context, (2,), "[M, D]")
    check_rank("weights", weights, (3,), "[units, segments, D]")
    check_same_device("context", context, weights, "weights")
    check_choice("select", select, _SELECT)
    if context.shape[1] != weights.shape[2]:
        raise ShapeError(
            f"context has {context.shape[1]} features but weights expect {weights.shape[2]} "
            "(weights are [units, segments, context_dim])"
        )
    if context.dtype != weights.dtype:
        raise DTypeError(f"context is {context.dtype} but weights are {weights.dtype}; cast one")
    if context.dtype in (torch.float32, torch.float64) and registry.use_kernel(
        OP, context.device.type
    ):
        # The kernel wins by skipping zero context entries; on dense contexts one BLAS
        # matmul over all segments is faster, so "auto" hands those to the reference.
        dense = bool((context != 0).float().mean() > AUTO_DENSE_FRACTION)
        # NaN/inf inputs take the reference, whose argmax picks the first NaN segment
        # (the kernel's ">" never would, and an all-NaN unit came out as 0); one sum
        # each clears the common case (a finite overflow also takes the reference)
        finite = bool(torch.isfinite(context.detach().sum())) and bool(
            torch.isfinite(weights.detach().sum()))
        if finite and not (dense and registry.kernel_mode() == "auto"):
            return _SegmentActivation.apply(context, weights, select == "absmax")
    return segment_activation_reference(context, weights, select)
