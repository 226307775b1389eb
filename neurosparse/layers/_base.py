"""Bases of the layers that stand in for ``nn.Linear`` and ``nn.Conv2d``.

Event and delta layers differ in how they compute, not in what they hold: sizes,
``weight``/``bias`` parameters in torch's layout and initialisation, a ``mode``, and
conversions from and to the torch layer. :class:`LinearTwin` and :class:`Conv2dTwin`
hold those once, so a new layer is its ``forward`` plus a constructor that calls
``_setup`` and adds what is its own (a threshold, ...).
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_choice
from ..errors import ParameterError
from ._init import init_like_torch
from .dispatch import MODES


def positive_int(name: str, v: object) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ParameterError(f"{name} must be a positive int, got {v!r}")
    return v


def pair(name: str, v: object, lo: int) -> tuple[int, int]:
    """An int or a pair of ints, each ``>= lo``, as a pair (``nn.Conv2d``'s convention)."""
    t = (v, v) if isinstance(v, int) and not isinstance(v, bool) else v
    ok = isinstance(t, (tuple, list)) and len(t) == 2 and all(
        isinstance(a, int) and not isinstance(a, bool) and a >= lo for a in t
    )
    if not ok:
        raise ParameterError(f"{name} must be an int >= {lo} or a pair of them, got {v!r}")
    return int(t[0]), int(t[1])


class _Twin(nn.Module):
    weight: nn.Parameter
    bias: nn.Parameter | None
    # A 2-D weight kept in-major in memory (a transposed view with the torch layer's
    # shape): the event kernels then read Wᵀ rows in place, with no packed copy that a
    # write through ``weight.data`` could leave stale.
    _weight_in_major = False

    def _parameters_like_torch(self, shape, n_out: int, bias: bool, mode: str, kw) -> None:
        self.mode = check_choice("mode", mode, MODES)
        if self._weight_in_major and len(shape) == 2:
            self.weight = nn.Parameter(torch.empty(shape[::-1], **kw).t())
        else:
            self.weight = nn.Parameter(torch.empty(shape, **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(n_out, **kw))
        else:
            self.register_parameter("bias", None)
        self.last_path: str | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The torch layer's initialisation (Kaiming-uniform weight, uniform bias)."""
        init_like_torch(self.weight, self.bias)

    def _copy_from(self, dense: nn.Module):
        with torch.no_grad():
            self.weight.copy_(dense.weight)
            if dense.bias is not None:
                self.bias.copy_(dense.bias)
        return self


class LinearTwin(_Twin):
    """``in_features``, ``out_features``, ``weight [out, in]``, ``bias [out]``, ``mode``."""

    def _setup(self, in_features, out_features, bias, mode, device, dtype) -> None:
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self._parameters_like_torch((out_features, in_features), out_features, bias, mode,
                                    {"device": device, "dtype": dtype})  # fmt: skip

    @classmethod
    def from_dense(cls, linear: nn.Linear, *args, **kw):
        """A layer holding a copy of ``linear``'s weight and bias.

        Further arguments go to the constructor after ``bias`` (``mode`` for the event
        layer, ``threshold, ...`` for the delta layer).
        """
        if not isinstance(linear, nn.Linear):
            raise ParameterError(f"from_dense expects an nn.Linear, got {type(linear).__name__}")
        w = linear.weight
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, *args,
                    device=w.device, dtype=w.dtype, **kw)  # fmt: skip
        return layer._copy_from(linear)

    def to_dense(self) -> nn.Linear:
        """An ``nn.Linear`` holding a copy of this layer's parameters."""
        w = self.weight
        lin = nn.Linear(self.in_features, self.out_features, self.bias is not None,
                        device=w.device, dtype=w.dtype)  # fmt: skip
        return _Twin._copy_from(lin, self)


class Conv2dTwin(_Twin):
    """``nn.Conv2d``'s sizes (dilation 1, zero padding), weight, bias, and ``mode``."""

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, groups, bias, mode,
               device, dtype) -> None:  # fmt: skip
        self.in_channels = positive_int("in_channels", in_channels)
        self.out_channels = positive_int("out_channels", out_channels)
        self.groups = positive_int("groups", groups)
        if in_channels % groups or out_channels % groups:
            raise ParameterError(
                f"groups={groups} must divide in_channels={in_channels} and "
                f"out_channels={out_channels}"
            )
        self.kernel_size = pair("kernel_size", kernel_size, 1)
        self.stride = pair("stride", stride, 1)
        self.padding = pair("padding", padding, 0)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self._parameters_like_torch(shape, out_channels, bias, mode,
                                    {"device": device, "dtype": dtype})  # fmt: skip

    @classmethod
    def from_dense(cls, conv: nn.Conv2d, *args, **kw):
        """A layer holding a copy of ``conv``'s parameters (further arguments as for
        :meth:`LinearTwin.from_dense`)."""
        if not isinstance(conv, nn.Conv2d):
            raise ParameterError(f"from_dense expects an nn.Conv2d, got {type(conv).__name__}")
        if conv.dilation != (1, 1) or conv.padding_mode != "zeros" or isinstance(
            conv.padding, str
        ):
            raise ParameterError(
                f"{cls.__name__} supports dilation 1, zero padding and integer padding; got "
                f"dilation={conv.dilation}, padding={conv.padding!r}, "
                f"padding_mode={conv.padding_mode!r}"
            )
        w = conv.weight
        layer = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.groups, conv.bias is not None, *args,
                    device=w.device, dtype=w.dtype, **kw)  # fmt: skip
        return layer._copy_from(conv)

    def to_dense(self) -> nn.Conv2d:
        """An ``nn.Conv2d`` holding a copy of this layer's parameters."""
        w = self.weight
        conv = nn.Conv2d(self.in_channels, self.out_channels, self.kernel_size, self.stride,
                         self.padding, 1, self.groups, self.bias is not None,
                         device=w.device, dtype=w.dtype)  # fmt: skip
        return _Twin._copy_from(conv, self)
