"""``EventConv2d``: an ``nn.Conv2d`` whose cost follows the number of input events.

Each event scatters its kernel footprint into the output (borders clip it); the result
equals ``nn.Conv2d`` applied at every time step. See ``neurosparse/ops/event_conv2d.py``
for the op and its gradients and ``neurosparse/layers/dispatch.py`` for ``mode="auto"``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_float_tensor, check_rank, unwrap
from .._counters import OpCounter
from ..errors import ParameterError, ShapeError
from ..ops.event_conv2d import ConvGeometry, event_conv2d_apply, index_conv2d, scan_conv2d
from ._init import init_like_torch
from .dispatch import MODES, choose_conv_path
from .event_linear import check_weight


def _pair(name: str, v: object, lo: int) -> tuple[int, int]:
    t = (v, v) if isinstance(v, int) and not isinstance(v, bool) else v
    if (
        not isinstance(t, (tuple, list))
        or len(t) != 2
        or not all(isinstance(a, int) and not isinstance(a, bool) and a >= lo for a in t)
    ):
        raise ParameterError(f"{name} must be an int >= {lo} or a pair of them, got {v!r}")
    return int(t[0]), int(t[1])


def _event_conv2d(
    x: object,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    stride: tuple[int, int],
    padding: tuple[int, int],
    groups: int,
    mode: str,
    counter: OpCounter | None,
) -> tuple[torch.Tensor, str]:
    check_choice("mode", mode, MODES)
    x = check_float_tensor("input", unwrap(x))
    check_rank("input", x, (4, 5), "[T, B, C, H, W] or [B, C, H, W]")
    check_weight(weight, bias, x, 4, "[out_channels, in_channels/groups, kh, kw]")
    if not isinstance(groups, int) or groups < 1 or weight.shape[0] % groups:
        raise ParameterError(
            f"groups must be a positive int dividing out_channels={weight.shape[0]}, "
            f"got {groups!r}"
        )
    c_out, cg, kh, kw = weight.shape
    c_in, h, w = x.shape[-3:]
    if c_in != cg * groups:
        raise ShapeError(
            f"input has {c_in} channels (shape {tuple(x.shape)}) but the weight expects "
            f"in_channels = {cg} × groups {groups} = {cg * groups}"
        )
    x4 = x.reshape(-1, c_in, h, w).contiguous()
    geom = ConvGeometry(x4.shape[0], c_in, h, w, c_out, kh, kw, *stride, *padding, groups)
    if geom.ho < 1 or geom.wo < 1:
        raise ShapeError(
            f"input of {h}×{w} pixels with padding {padding} is smaller than the "
            f"{kh}×{kw} kernel; pad it or use a smaller kernel"
        )
    scan = scan_conv2d(x4, geom, exact=False)  # CUDA: counts stay on the device
    key = (geom.n, c_in, c_out, kh * kw, geom.ho * geom.wo)
    path = choose_conv_path(mode, x.device.type, key, scan)
    if counter is not None:
        unit, graded, nnz = scan.op_counts()
        counter.count_ops(
            synops=unit,
            macs=graded,
            dense_macs=geom.dense_macs,
            events_in=nnz,
            inputs_in=x4.numel(),
            weight_bytes_read=(unit + graded) * weight.element_size(),
        )
    if path == "dense":
        y4 = F.conv2d(x4, weight, bias, stride, padding, 1, groups)
    else:
        y4 = event_conv2d_apply(x4, weight, bias, index_conv2d(x4, scan))
    return y4.reshape(*x.shape[:-3], c_out, geom.ho, geom.wo), path


def event_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    groups: int = 1,
    mode: str = "auto",
) -> torch.Tensor:
    """Functional event Conv2d: ``F.conv2d(x, weight, bias, stride, padding, 1, groups)``.

    Parameters
    ----------
    x : torch.Tensor
        ``[T, B, C, H, W]`` or ``[B, C, H, W]``; binary or graded events. float32 runs the
        Numba kernels, other float dtypes the torch reference.
    weight : torch.Tensor
        ``[out, in/groups, kh, kw]`` (``nn.Conv2d`` layout), contiguous, x's device/dtype.
    bias : torch.Tensor, optional
        ``[out]``.
    stride, padding : int or (int, int)
        Zero padding; dilation is 1.
    groups : int
    mode : {"auto", "event", "dense"}

    Returns
    -------
    torch.Tensor
        ``[T, B, out, Ho, Wo]`` / ``[B, out, Ho, Wo]``.
    """
    return _event_conv2d(x, weight, bias, _pair("stride", stride, 1),
                         _pair("padding", padding, 0), groups, mode, None)[0]  # fmt: skip


class EventConv2d(OpCounter, nn.Module):
    """Drop-in ``nn.Conv2d`` for event inputs (stride, zero padding, groups; dilation 1).

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding : int or (int, int)
    groups : int
    bias : bool
    mode : {"auto", "event", "dense"}

    Input ``[T, B, C, H, W]`` (time first) or ``[B, C, H, W]``; output as ``nn.Conv2d``
    per step. Parameters keep the ``nn.Conv2d`` layout, so state dicts interchange.

    Counters (per call, both paths): ``synops``/``macs`` = exact accumulates of the ±1
    and the graded events (``out/groups ×`` outputs each event's footprint reaches, fewer
    at borders and with strides), ``events_in``, ``inputs_in``, ``dense_macs`` (every
    tap of every output, padding included), ``weight_bytes_read`` (one weight per op).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        mode: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("groups", groups)):  # fmt: skip
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ParameterError(f"{name} must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ParameterError(
                f"groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair("kernel_size", kernel_size, 1)
        self.stride = _pair("stride", stride, 1)
        self.padding = _pair("padding", padding, 0)
        self.groups = groups
        self.mode = check_choice("mode", mode, MODES)
        kw = {"device": device, "dtype": dtype}
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = nn.Parameter(torch.empty(shape, **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_channels, **kw))
        else:
            self.register_parameter("bias", None)
        self.last_path: str | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Conv2d``'s initialisation."""
        init_like_torch(self.weight, self.bias)

    @classmethod
    def from_dense(cls, conv: nn.Conv2d, mode: str = "auto") -> EventConv2d:
        """An ``EventConv2d`` holding a copy of ``conv``'s parameters."""
        if not isinstance(conv, nn.Conv2d):
            raise ParameterError(f"from_dense expects an nn.Conv2d, got {type(conv).__name__}")
        if conv.dilation != (1, 1) or conv.padding_mode != "zeros" or isinstance(
            conv.padding, str
        ):
            raise ParameterError(
                f"EventConv2d supports dilation 1, zero padding and integer padding; got "
                f"dilation={conv.dilation}, padding={conv.padding!r}, "
                f"padding_mode={conv.padding_mode!r}"
            )
        w = conv.weight
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.groups, conv.bias is not None, mode,
                    device=w.device, dtype=w.dtype)  # fmt: skip
        layer.load_state_dict(conv.state_dict())
        return layer

    def to_dense(self) -> nn.Conv2d:
        """An ``nn.Conv2d`` holding a copy of this layer's parameters."""
        w = self.weight
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride,
                         self.padding, 1, self.groups, self.bias is not None,
                         device=w.device, dtype=w.dtype)  # fmt: skip
        conv.load_state_dict(self.state_dict())
        return conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, self.last_path = _event_conv2d(x, self.weight, self.bias, self.stride, self.padding,
                                          self.groups, self.mode, self)  # fmt: skip
        return y

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, groups={self.groups}, "
            f"bias={self.bias is not None}, mode={self.mode!r}"
        )
