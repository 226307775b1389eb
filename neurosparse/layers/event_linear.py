"""``EventLinear``: an ``nn.Linear`` whose cost follows the number of input spikes.

Same parameters, layout and result as ``nn.Linear`` applied at every time step; inside,
the active inputs of a call become compressed index lists once and the output is the
sum of the weight columns of the inputs that spiked (scaled by the event value for
graded events). See ``neurosparse/ops/event_linear.py`` for the op and its gradients,
and ``neurosparse/layers/dispatch.py`` for when ``mode="auto"`` takes the dense path.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_choice, check_float_tensor, check_rank, check_same_device
from .._counters import OpCounter
from ..errors import DTypeError, ParameterError, ShapeError
from ..ops.event_linear import backend, event_linear_apply, index_linear, scan_linear
from ._init import init_like_torch
from .dispatch import MODES, choose_path, run_cuda_linear


def _unwrap(x: object) -> object:
    # A neurosparse neuron returns (spikes, state); taking its spikes lets
    # nn.Sequential(EventLinear, LIF, EventLinear) run without an adapter.
    if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], torch.Tensor):
        return x[0]
    return x


def check_weight(
    weight: object, bias: object, x: torch.Tensor, rank: int, layout: str
) -> None:
    """Weight/bias checks shared by the event layers: dtype, rank, layout, device."""
    weight = check_float_tensor("weight", weight)
    check_rank("weight", weight, (rank,), layout)
    check_same_device("weight", weight, x, "input")
    if weight.dtype != x.dtype:
        raise DTypeError(
            f"weight has dtype {weight.dtype} but input has dtype {x.dtype}; use one dtype "
            f"(the kernels run float32, other float dtypes run the torch reference)"
        )
    # a Linear weight may also be stored transposed (EventLinear's own layout)
    if not (weight.is_contiguous() or (weight.dim() == 2 and weight.t().is_contiguous())):
        raise ShapeError(
            f"weight must be contiguous (strides {weight.stride()} for shape "
            f"{tuple(weight.shape)}); pass weight.contiguous()"
        )
    if bias is not None:
        bias = check_float_tensor("bias", bias)
        check_same_device("bias", bias, x, "input")
        if bias.shape != (weight.shape[0],):
            raise ShapeError(
                f"bias must have shape ({weight.shape[0]},) (one per output), "
                f"got {tuple(bias.shape)}"
            )
        if bias.dtype != x.dtype:
            raise DTypeError(f"bias has dtype {bias.dtype} but input has dtype {x.dtype}")


def count_linear(counter: OpCounter, scan, x2d: torch.Tensor, weight: torch.Tensor) -> None:
    """Record what an event Linear does for ``x2d [M, in]``, from its scan (whichever
    path then runs: the counts describe the input)."""
    n_out, n_in = weight.shape
    counter.count_ops(
        synops=scan.unit * n_out,
        macs=scan.graded * n_out,
        dense_macs=x2d.shape[0] * n_in * n_out,
        events_in=scan.nnz,
        inputs_in=x2d.numel(),
        weight_bytes_read=scan.nnz * n_out * weight.element_size(),
    )


def _event_linear(
    x: object,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mode: str,
    counter: OpCounter | None,
) -> tuple[torch.Tensor, str]:
    check_choice("mode", mode, MODES)
    x = check_float_tensor("input", _unwrap(x))
    check_rank("input", x, (2, 3), "[T, B, in_features] or [B, in_features]")
    check_weight(weight, bias, x, 2, "[out_features, in_features]")
    n_out, n_in = weight.shape
    if x.shape[-1] != n_in:
        raise ShapeError(
            f"input has {x.shape[-1]} features in its last dimension (shape "
            f"{tuple(x.shape)}) but the layer expects in_features={n_in}"
        )
    x2d = x.reshape(-1, n_in).contiguous()
    if backend(x2d) == "cuda":  # no count pass: it would synchronise (dispatch.py)
        y2d, path = run_cuda_linear(mode, x2d, weight, bias, counter)
        return y2d.reshape(*x.shape[:-1], n_out), path
    scan = scan_linear(x2d)
    path = choose_path(mode, "linear", x.device.type, (x2d.shape[0], n_in, n_out), scan.rate)
    if counter is not None:
        count_linear(counter, scan, x2d, weight)
    if path == "dense":
        y2d = F.linear(x2d, weight, bias)
    else:
        y2d = event_linear_apply(x2d, weight, bias, index_linear(x2d, scan))
    return y2d.reshape(*x.shape[:-1], n_out), path


def event_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, mode: str = "auto"
) -> torch.Tensor:
    """Functional event Linear: ``F.linear(x, weight, bias)`` computed from the events of x.

    Parameters
    ----------
    x : torch.Tensor
        ``[T, B, in]`` or ``[B, in]``, binary or graded events (any float values; zeros
        are skipped). float32 runs the Numba kernels, other float dtypes the torch
        reference.
    weight : torch.Tensor
        ``[out, in]`` (``nn.Linear`` layout), contiguous, on x's device and dtype.
    bias : torch.Tensor, optional
        ``[out]``.
    mode : {"auto", "event", "dense"}
        ``"auto"`` picks the path from the measured activity (``layers/dispatch.py``).

    Returns
    -------
    torch.Tensor
        ``[..., out]``, the layout ``F.linear`` gives.

    Raises
    ------
    ShapeError, DTypeError, DeviceError, InputValueError, ParameterError
        Wrong shapes or layout, dtypes, devices, NaN/inf events, unknown mode.
    """
    return _event_linear(x, weight, bias, mode, None)[0]


class EventLinear(OpCounter, nn.Module):
    """Drop-in ``nn.Linear`` for spike inputs: cost follows the number of events.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    mode : {"auto", "event", "dense"}
        Path per call; ``"auto"`` compares the call's measured activity with the
        crossover measured for the shape (``neurosparse/layers/dispatch.py``).

    Notes
    -----
    Input ``[T, B, in]`` (time first) or ``[B, in]`` (one step); output ``[T, B, out]`` /
    ``[B, out]``, equal to ``nn.Linear`` per step. A ``(spikes, state)`` tuple from a
    neurosparse neuron is accepted (its spikes are used). ``weight``/``bias`` are plain
    parameters in ``nn.Linear`` layout, so state dicts interchange with ``nn.Linear``.

    Counters (``op_counts()``, per call, summed until ``reset_counters()``; identical in
    both paths because they describe the input, not the path): ``synops`` = ±1 events ×
    out_features, ``macs`` = graded events × out_features, ``events_in``, ``inputs_in``,
    ``dense_macs`` = inputs × out_features, ``weight_bytes_read`` = events ×
    out_features × bytes per weight (one weight fetched per synaptic op). ``last_path``
    says which path the last call took.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        mode: str = "auto",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ParameterError(f"{name} must be a positive int, got {v!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.mode = check_choice("mode", mode, MODES)
        kw = {"device": device, "dtype": dtype}
        # stored transposed (in-major): the event kernels read Wᵀ rows in place, so no
        # packed copy exists that a write through weight.data could leave stale
        self.weight = nn.Parameter(torch.empty(in_features, out_features, **kw).t())
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features, **kw))
        else:
            self.register_parameter("bias", None)
        self.last_path: str | None = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """``nn.Linear``'s initialisation (Kaiming-uniform weight, uniform bias)."""
        init_like_torch(self.weight, self.bias)

    @classmethod
    def from_dense(cls, linear: nn.Linear, mode: str = "auto") -> EventLinear:
        """An ``EventLinear`` holding a copy of ``linear``'s weight and bias."""
        if not isinstance(linear, nn.Linear):
            raise ParameterError(f"from_dense expects an nn.Linear, got {type(linear).__name__}")
        w = linear.weight
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None, mode,
                    device=w.device, dtype=w.dtype)  # fmt: skip
        layer.load_state_dict(linear.state_dict())
        return layer

    def to_dense(self) -> nn.Linear:
        """An ``nn.Linear`` holding a copy of this layer's parameters."""
        w = self.weight
        lin = nn.Linear(self.in_features, self.out_features, self.bias is not None,
                        device=w.device, dtype=w.dtype)  # fmt: skip
        lin.load_state_dict(self.state_dict())
        return lin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, self.last_path = _event_linear(x, self.weight, self.bias, self.mode, self)
        return y

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, mode={self.mode!r}"
        )
