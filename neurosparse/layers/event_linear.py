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

from .._checks import check_choice, check_float_tensor, check_rank, check_same_device, unwrap
from .._counters import OpCounter
from ..errors import DTypeError, ShapeError
from ..ops.event_linear import backend, event_linear_apply, index_linear, scan_linear
from ._base import EventTwin, LinearTwin
from .dispatch import MODES, choose_path, run_cuda_linear
from .event_linear_plan import make_plan


def check_weight(
    weight: object, bias: object, x: torch.Tensor, rank: int, layout: str,
    contiguous: bool = True,
) -> None:
    """Weight/bias checks shared by the event and delta layers: dtype, rank, device,
    and (``contiguous``: for kernels that read the weight in place) layout."""
    weight = check_float_tensor("weight", weight)
    check_rank("weight", weight, (rank,), layout)
    check_same_device("weight", weight, x, "input")
    if weight.dtype != x.dtype:
        raise DTypeError(
            f"weight has dtype {weight.dtype} but input has dtype {x.dtype}; use one dtype "
            f"(the kernels run float32, other float dtypes run the torch reference)"
        )
    # a Linear weight may also be stored transposed (EventLinear's own layout)
    laid_out = weight.is_contiguous() or (weight.dim() == 2 and weight.t().is_contiguous())
    if contiguous and not laid_out:
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


def event_input(
    x: object, weight: object, bias: object, mode: str, ranks: tuple[int, ...], layout: str,
    weight_layout: str,
) -> torch.Tensor:
    """The checks every event layer makes of a call: the mode, the input (a neuron's
    ``(spikes, state)`` gives its spikes; ``layout`` names the axes of ``ranks``) and the
    weight and bias against it. Returns the input tensor."""
    check_choice("mode", mode, MODES)
    x = check_float_tensor("input", unwrap(x))
    check_rank("input", x, ranks, layout)
    check_weight(weight, bias, x, len(weight_layout.split(",")), weight_layout)
    return x


def check_features(x: torch.Tensor, n_in: int) -> None:
    """The last axis of a Linear's input holds ``n_in`` features."""
    if x.shape[-1] != n_in:
        raise ShapeError(
            f"input has {x.shape[-1]} features in its last dimension (shape "
            f"{tuple(x.shape)}) but the layer expects in_features={n_in}"
        )


def count_linear(counter: OpCounter, scan, x2d: torch.Tensor, weight: torch.Tensor) -> None:
    """Record what an event Linear does for ``x2d [M, in]``, from its scan (whichever
    path then runs: the counts describe the input)."""
    n_out, n_in = weight.shape
    # events per row, already counted by the CPU scan: the energy meter's per-step counts
    counter.__dict__["_row_events"] = scan.counts
    counter.count_ops(
        synops=scan.unit * n_out,
        macs=scan.graded * n_out,
        dense_macs=x2d.shape[0] * n_in * n_out,
        events_in=scan.nnz,
        inputs_in=x2d.numel(),
        weight_bytes_read=scan.nnz * n_out * weight.element_size(),
    )


def _cuda_call_ok(x: torch.Tensor, weight: object, bias: object, mode: str) -> bool:
    """True only when every check of :func:`event_input` and :func:`check_features`
    would pass and the call runs the CUDA kernel. An eager GPU call is bound by host
    time (the kernel takes a few µs at batch 1), and these few comparisons replace ~20
    function calls of the general checks; any call they do not clear takes the general
    path, which raises the specific error."""
    if not (isinstance(weight, torch.Tensor) and (bias is None or isinstance(bias, torch.Tensor))):
        return False
    dt = x.dtype
    return (
        (dt is torch.float32 or dt is torch.bfloat16)
        and weight.dtype is dt
        and weight.dim() == 2
        and 2 <= x.dim() <= 3
        and x.shape[-1] == weight.shape[1]
        and weight.device == x.device
        and (weight.is_contiguous() or weight.t().is_contiguous())
        and (bias is None or (bias.dtype is dt and bias.device == x.device
                              and bias.shape == weight.shape[:1]))
        and mode in MODES
        and backend(x) == "cuda"
    )  # fmt: skip


def _event_linear(
    x: object,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mode: str,
    counter: OpCounter | None,
) -> tuple[torch.Tensor, str]:
    if type(x) is torch.Tensor and x.is_cuda and _cuda_call_ok(x, weight, bias, mode):
        n_out, n_in = weight.shape
        y2d, path = run_cuda_linear(mode, x.reshape(-1, n_in).contiguous(), weight, bias, counter)
        return y2d.reshape(*x.shape[:-1], n_out), path
    x = event_input(x, weight, bias, mode, (2, 3), "[T, B, in_features] or [B, in_features]",
                    "[out_features, in_features]")  # fmt: skip
    n_out, n_in = weight.shape
    check_features(x, n_in)
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
        ``"auto"`` picks the path from the measured activity on the CPU and takes the
        dense product on CUDA (``layers/dispatch.py``).

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


class EventLinear(EventTwin, LinearTwin):
    """Drop-in ``nn.Linear`` for spike inputs: cost follows the number of events.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    mode : {"auto", "event", "dense"}
        Path per call; ``"auto"`` compares the call's measured activity with the
        crossover measured for the shape on the CPU, and takes the dense product on CUDA
        (reading the activity back would synchronise; ``neurosparse/layers/dispatch.py``).
    device, dtype
        Where and in which dtype the parameters are made (as ``nn.Linear``).

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

    _weight_in_major = True  # see _base._Twin
    #: every input event costs ``out_features`` operations, so the energy meter may split a
    #: sequence call's counts by step from the events of each step (``energy/meter.py``)
    counts_per_input_event = True

    def _events(self, x: torch.Tensor) -> tuple[torch.Tensor, str]:
        plan = self.__dict__.get("_ns_plan")
        if plan is not None:
            y = plan.run(self, x)
            if y is not None:
                return y, "event"
        y, path = _event_linear(x, self.weight, self.bias, self.mode, self)
        # an eager CUDA call with nothing to differentiate is kept for the next one
        self.__dict__["_ns_plan"] = make_plan(self, x, path)
        return y, path

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        self.__dict__.pop("_ns_plan", None)  # its tensors are being replaced
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:
        state = dict(super().__getstate__())
        state.pop("_ns_plan", None)  # a plan of this process's streams and kernels
        return state
