"""``EventConv2d``: an ``nn.Conv2d`` whose cost follows the number of input events.

Each event scatters its kernel footprint into the output (borders clip it); the result
equals ``nn.Conv2d`` applied at every time step. See ``neurosparse/ops/event_conv2d.py``
for the op and its gradients and ``neurosparse/layers/dispatch.py`` for ``mode="auto"``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._counters import OpCounter
from ..errors import ParameterError, ShapeError
from ..ops.event_conv2d import ConvGeometry, event_conv2d_apply, index_conv2d, scan_conv2d
from ._base import Conv2dTwin, EventTwin, pair
from .dispatch import choose_conv_path
from .event_linear import event_input


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
    x = event_input(x, weight, bias, mode, (4, 5), "[T, B, C, H, W] or [B, C, H, W]",
                    "[out_channels, in_channels/groups, kh, kw]")  # fmt: skip
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
    return _event_conv2d(x, weight, bias, pair("stride", stride, 1),
                         pair("padding", padding, 0), groups, mode, None)[0]  # fmt: skip


class EventConv2d(EventTwin, Conv2dTwin):
    """Drop-in ``nn.Conv2d`` for event inputs (stride, zero padding, groups; dilation 1).

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, groups, bias
        As ``nn.Conv2d`` (ints, or pairs of ints for the kernel size, stride and padding).
    mode : {"auto", "event", "dense"}
        Path per call (``neurosparse/layers/dispatch.py``).
    device, dtype
        Where and in which dtype the parameters are made (as ``nn.Conv2d``).

    Notes
    -----
    Input ``[T, B, C, H, W]`` (time first) or ``[B, C, H, W]``; output as ``nn.Conv2d``
    per step. Parameters keep the ``nn.Conv2d`` layout, so state dicts interchange.

    Counters (per call, both paths): ``synops``/``macs`` = exact accumulates of the ±1
    and the graded events (``out/groups ×`` outputs each event's footprint reaches, fewer
    at borders and with strides), ``events_in``, ``inputs_in``, ``dense_macs`` (every
    tap of every output, padding included), ``weight_bytes_read`` (one weight per op).
    """

    def _events(self, x: torch.Tensor) -> tuple[torch.Tensor, str]:
        # a model moved with .to(memory_format=torch.channels_last) holds a weight the
        # kernels cannot read in place: the layer passes a contiguous copy itself (a
        # module user cannot pass one, and nn.Conv2d accepts that model)
        w = self.weight if self.weight.is_contiguous() else self.weight.contiguous()
        return _event_conv2d(x, w, self.bias, self.stride, self.padding, self.groups,
                             self.mode, self)  # fmt: skip
