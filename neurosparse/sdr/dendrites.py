"""Active-dendrite linear layer (Iyer et al. 2022, "Avoiding catastrophe").

Every output unit has a feed-forward weight row and ``num_segments`` dendritic
segments that each read a context vector. The segment that matches the context best
modulates the unit::

    y      = W x + b                                   (feed-forward)
    d_u,s  = Σ_j D[u, s, j] · c_j                       (segment activations)
    s*     = argmax_s |d_u,s|   (or argmax_s d_u,s)      (best-matching segment)
    gate:  out_u = y_u · σ(d_u,s*)        bias:  out_u = y_u + d_u,s*

Context-dependent gating lets different tasks use different sub-networks, which
(with k-winners after the layer) reduces catastrophic forgetting. Only the selected
segment of each unit receives a gradient. The segment computation runs in the Numba
kernel ``kernels/sdr_segments.py`` on CPU (see :mod:`neurosparse.ops.sdr_dendrites`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import (
    check_choice,
    check_finite,
    check_float_tensor,
    check_module_device,
    check_range,
    unwrap,
)
from .._counters import OpCounter
from ..errors import ParameterError, ShapeError
from ..ops.sdr_dendrites import segment_activation

_MODES = ("gate", "bias")


def dendritic_linear(
    x: torch.Tensor,
    context: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    segments: torch.Tensor,
    mode: str = "gate",
    select: str = "absmax",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Functional active-dendrite layer.

    Parameters
    ----------
    x : [..., in_features]
    context : [..., context_dim], broadcastable to ``x``'s leading dimensions
    weight : [out_features, in_features]; bias : [out_features] or None
    segments : [out_features, num_segments, context_dim]
    mode : ``"gate"`` (``y·σ(d)``) or ``"bias"`` (``y + d``)
    select : ``"absmax"`` or ``"max"``

    Returns
    -------
    out : [..., out_features]
    segment_index : [..., out_features] int64, the winning segment of each unit
    """
    check_choice("mode", mode, _MODES)
    if x.shape[-1] != weight.shape[1]:
        raise ShapeError(f"x must be [..., {weight.shape[1]}], got shape {tuple(x.shape)}")
    U, _, D = segments.shape
    if context.shape[-1] != D:
        raise ShapeError(
            f"context must be [..., {D}] (context_dim), got shape {tuple(context.shape)}"
        )
    lead = x.shape[:-1]
    try:
        ctx = context.expand(*lead, D)
    except RuntimeError:
        raise ShapeError(
            f"context of shape {tuple(context.shape)} does not broadcast to x's leading "
            f"dimensions {tuple(lead)}"
        ) from None
    y = F.linear(x, weight, bias)
    value, index = segment_activation(ctx.reshape(-1, D), segments, select)
    value = value.reshape(*lead, U)
    out = y * torch.sigmoid(value) if mode == "gate" else y + value
    return out, index.reshape(*lead, U)


class DendriticLinear(OpCounter, nn.Module):
    """Linear layer whose units are modulated by their best-matching context segment.

    Parameters
    ----------
    in_features, out_features : int
        Feed-forward sizes.
    num_segments : int
        Dendritic segments per unit.
    context_dim : int
        Length of the context vector each segment reads.
    mode : ``"gate"`` or ``"bias"``
        ``out = y · σ(d*)`` (Iyer et al.'s gating) or ``out = y + d*``.
    select : ``"absmax"``, ``"max"`` or None
        How the best segment is chosen; None means ``"absmax"`` for gating (a strongly
        negative segment can switch a unit off) and ``"max"`` for biasing.
    bias : bool
        Feed-forward bias.
    dendrite_sparsity : float
        Fraction of segment weights fixed at zero by a random mask drawn once
        (Numenta's sparse dendrites); masked weights stay zero through training.

    Shape
    -----
    ``forward(x, context)``: ``x [..., in_features]``, ``context [..., context_dim]``
    broadcastable to ``x``'s leading dimensions (e.g. ``[B, D]`` with ``x [T, B, in]``).
    Output ``[..., out_features]``. The winning segments of the last call are kept in
    ``last_segment_index``.

    Examples
    --------
    >>> layer = DendriticLinear(10, 4, num_segments=3, context_dim=5)
    >>> layer(torch.randn(2, 10), torch.randn(2, 5)).shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        num_segments: int,
        context_dim: int,
        mode: str = "gate",
        select: str | None = None,
        bias: bool = True,
        dendrite_sparsity: float = 0.0,
    ) -> None:
        super().__init__()
        for name, v in (
            ("in_features", in_features), ("out_features", out_features),
            ("num_segments", num_segments), ("context_dim", context_dim),
        ):  # fmt: skip
            if int(v) < 1:
                raise ParameterError(f"{name} must be >= 1, got {v}")
        check_choice("mode", mode, _MODES)
        select = select or ("absmax" if mode == "gate" else "max")
        check_choice("select", select, ("absmax", "max"))
        check_range("dendrite_sparsity", dendrite_sparsity, 0.0, 1.0)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.num_segments, self.context_dim = int(num_segments), int(context_dim)
        self.mode, self.select = mode, select
        self.dendrite_sparsity = float(dendrite_sparsity)
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.bias = nn.Parameter(torch.empty(self.out_features)) if bias else None
        self.segments = nn.Parameter(
            torch.empty(self.out_features, self.num_segments, self.context_dim)
        )
        if self.dendrite_sparsity > 0:
            keep = torch.rand(self.segments.shape) >= self.dendrite_sparsity
            self.register_buffer("segment_mask", keep.to(self.segments.dtype))
        else:
            self.segment_mask = None
        self.last_segment_index: torch.Tensor | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.Linear's initialisation for ``W``/``b``; segments ``U(±1/√context_dim)``."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)
        bound = 1 / math.sqrt(self.context_dim)
        with torch.no_grad():
            self.segments.uniform_(-bound, bound)
            if self.segment_mask is not None:
                self.segments.mul_(self.segment_mask)

    def effective_segments(self) -> torch.Tensor:
        """Segment weights with the fixed sparsity mask applied."""
        if self.segment_mask is None:
            return self.segments
        return self.segments * self.segment_mask

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = check_float_tensor("x", unwrap(x))
        check_module_device(self, x, "DendriticLinear")
        check_float_tensor("context", context)
        # a NaN context entry makes every segment of every unit NaN (one bad task code
        # poisons the whole layer's output): refuse it here, where the cause is known
        check_finite("context", context)
        segments = self.effective_segments()
        out, index = dendritic_linear(
            x, context.to(x.dtype), self.weight, self.bias, segments, self.mode, self.select,
        )  # fmt: skip
        self.last_segment_index = index.detach()
        # Exact work: the feed-forward matmul, plus one MAC per (non-zero context entry,
        # non-zero segment weight it meets: the fixed sparsity mask's zeros do no work); a
        # context row broadcast over several samples is counted per sample.
        m = index.numel() // self.out_features
        reuse = m // max(1, context[..., 0].numel())
        U, S, D = self.out_features, self.num_segments, self.context_dim
        fan = (segments.detach() != 0).sum(dim=(0, 1)).to(torch.float64)  # [D]
        ctx_rows = (context.detach() != 0).reshape(-1, D).to(torch.float64)
        ctx_macs = int((ctx_rows @ fan.to(ctx_rows.device)).sum()) * reuse
        self.count_ops(
            macs=m * self.in_features * U + ctx_macs,
            dense_macs=m * U * (self.in_features + S * D),
            inputs_in=x.numel(),
            events_in=int(torch.count_nonzero(x.detach())),
        )
        return out

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"num_segments={self.num_segments}, context_dim={self.context_dim}, "
            f"mode={self.mode!r}, select={self.select!r}, bias={self.bias is not None}"
        )
