"""Bases of the event and delta layers: what a new layer does not have to write again.

Event and delta layers differ in how they compute, not in what they hold: sizes,
parameters in torch's layout and initialisation, a ``mode``, conversions from and to the
torch layer, and one constructor. The constructor's parameters are declared once, in two
parts: the *geometry's* (:class:`LinearTwin`: ``in_features, out_features, bias``;
:class:`Conv2dTwin`: ``nn.Conv2d``'s; the recurrent cells': ``input_size, hidden_size,
bias``) and the *kind's* (:class:`EventTwin`: ``mode, device, dtype``; :class:`DeltaTwin`:
the delta thresholds before those). ``inspect.signature`` and ``help()`` show the joined
signature, so ``DeltaLinear(8, 4, True, 0.1)`` binds as it always did.

A new layer is then a class with a docstring, its kind and geometry as bases, and its
computation: ``_events`` (event layers) or ``_run`` (delta layers).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from .._checks import check_choice, check_float_tensor, check_rank, unwrap
from .._counters import OpCounter
from .._state import StepState
from ..errors import ParameterError
from ._init import init_like_torch
from .delta_encoder import DeltaModule, init_threshold
from .dispatch import MODES

_P = inspect.Parameter


def params(*spec: tuple) -> tuple[inspect.Parameter, ...]:
    """Constructor parameters from ``(name, annotation[, default])`` tuples, in order."""
    return tuple(_P(s[0], _P.POSITIONAL_OR_KEYWORD, annotation=s[1],
                    default=s[2] if len(s) > 2 else _P.empty) for s in spec)  # fmt: skip


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


class _ClassSignature:
    """``inspect.signature`` of a layer class: its geometry's parameters, then its kind's.

    Read on the class only: an instance's call is ``forward``, not the constructor.
    """

    def __get__(self, obj, cls) -> inspect.Signature:
        if obj is not None:
            raise AttributeError("__signature__")
        return inspect.Signature(cls._size_params + cls._option_params)


class _Twin(nn.Module):
    weight: nn.Parameter
    bias: nn.Parameter | None
    # the constructor: the geometry's parameters (set by LinearTwin, Conv2dTwin, ...), then
    # the kind's (EventTwin, DeltaTwin); _make_parameters and _init_options receive them
    _size_params: tuple[inspect.Parameter, ...] = ()
    _option_params = params(("mode", "str", "auto"),
                            ("device", "torch.device | str | None", None),
                            ("dtype", "torch.dtype | None", None))  # fmt: skip
    __signature__ = _ClassSignature()
    # A 2-D weight kept in-major in memory (a transposed view with the torch layer's
    # shape): the event kernels then read Wᵀ rows in place, with no packed copy that a
    # write through ``weight.data`` could leave stale.
    _weight_in_major = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
        bound = type(self).__signature__.bind(*args, **kwargs)  # TypeError as any call
        bound.apply_defaults()
        a = bound.arguments
        self.mode = check_choice("mode", a.pop("mode"), MODES)
        kw = {"device": a.pop("device"), "dtype": a.pop("dtype")}
        self.last_path: str | None = None
        self._make_parameters(kw, **{p.name: a.pop(p.name) for p in self._size_params})
        self.reset_parameters()
        self._init_options(kw, **a)

    def _make_parameters(self, kw: dict, **sizes) -> None:
        raise NotImplementedError

    def _init_options(self, kw: dict, **options) -> None:
        """What the kind adds after the parameters (``kw``: device and dtype)."""

    def _new_parameters(self, shape, n_out: int, bias: bool, kw: dict) -> None:
        if self._weight_in_major and len(shape) == 2:
            self.weight = nn.Parameter(torch.empty(shape[::-1], **kw).t())
        else:
            self.weight = nn.Parameter(torch.empty(shape, **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(n_out, **kw))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """The torch layer's initialisation (Kaiming-uniform weight, uniform bias)."""
        init_like_torch(self.weight, self.bias)

    def _copy_from(self, dense: nn.Module):
        with torch.no_grad():
            self.weight.copy_(dense.weight)
            if dense.bias is not None:
                self.bias.copy_(dense.bias)
        return self

    def _options_repr(self) -> str:
        return f"mode={self.mode!r}"

    def extra_repr(self) -> str:
        return f"{self._sizes_repr()}, {self._options_repr()}"


class EventTwin(OpCounter, _Twin):
    """Base of the event layers: ``forward`` is the layer's ``_events(x)``, which returns
    the output and the path it took (kept in ``last_path``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, path = self._events(x)
        self.__dict__["last_path"] = path  # a plain attribute: Module.__setattr__ costs µs
        return y


def threshold_repr(th: torch.Tensor) -> str:
    return f"{float(th):g}" if th.dim() == 0 else f"[{th.numel()}]"


class DeltaTwin(OpCounter, DeltaModule, StepState, _Twin):
    """Base of the delta layers: thresholds, sequence and step modes.

    A subclass sets ``_in_units`` (the attribute holding the number of input channels,
    one threshold each when ``per_channel``), ``_step_layout`` (one step's input axes)
    and implements ``_run(x [T, B, ...], state) -> (out [T, B, ...], new state)``.
    """

    _option_params = (*params(("threshold", "float | torch.Tensor", 0.0),
                              ("per_channel", "bool", False),
                              ("learn_threshold", "bool", False),
                              ("grad_width", "float | None", None)),
                      *_Twin._option_params)  # fmt: skip
    _in_units: str
    _step_layout: str

    def _init_options(self, kw, threshold, per_channel, learn_threshold, grad_width) -> None:
        init_threshold(self, threshold, getattr(self, self._in_units), per_channel,
                       learn_threshold, grad_width, **kw)  # fmt: skip
        self.state = None

    def forward(self, x: torch.Tensor, state=None, return_state: bool = False):
        """Sequence mode ``[T, B, ...]``, from rest unless ``state`` is passed; the output
        (``(out, state)`` with ``return_state=True``)."""
        z, new = self._run(x, state)
        return (z, new) if return_state else z

    def step(self, x: torch.Tensor, state=None, return_state: bool = False):
        """One step ``[B, ...]`` (``(out, state)`` with ``return_state=True``).

        Without ``state`` it continues from the state kept by the previous step and keeps
        the new one (:meth:`reset` forgets it); an explicit ``state`` leaves it alone.
        """
        x = check_float_tensor("step input", unwrap(x))
        check_rank("step input", x, (self._step_layout.count(",") + 1,),
                   f"{self._step_layout}, one time step")  # fmt: skip
        z, new = self._step(lambda s: self._run(x[None], s), state)
        return (z[0], new) if return_state else z[0]

    def _options_repr(self) -> str:
        return f"threshold={threshold_repr(self.threshold)}, mode={self.mode!r}"


class LinearTwin(_Twin):
    """Geometry of ``nn.Linear``: ``in_features``, ``out_features``, ``weight [out, in]``,
    ``bias [out]``."""

    _size_params = params(("in_features", "int"), ("out_features", "int"), ("bias", "bool", True))
    _in_units = "in_features"

    def _make_parameters(self, kw, in_features, out_features, bias) -> None:
        self.in_features = positive_int("in_features", in_features)
        self.out_features = positive_int("out_features", out_features)
        self._new_parameters((out_features, in_features), out_features, bias, kw)

    def _sizes_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")  # fmt: skip

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
    """Geometry of ``nn.Conv2d`` (dilation 1, zero padding): sizes, weight, bias."""

    _size_params = params(("in_channels", "int"), ("out_channels", "int"),
                          ("kernel_size", "int | tuple[int, int]"),
                          ("stride", "int | tuple[int, int]", 1),
                          ("padding", "int | tuple[int, int]", 0), ("groups", "int", 1),
                          ("bias", "bool", True))  # fmt: skip
    _in_units = "in_channels"

    def _make_parameters(self, kw, in_channels, out_channels, kernel_size, stride, padding,
                         groups, bias) -> None:  # fmt: skip
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
        self._new_parameters(shape, out_channels, bias, kw)

    def _sizes_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, groups={self.groups}, "
                f"bias={self.bias is not None}")  # fmt: skip

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
