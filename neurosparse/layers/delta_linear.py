"""``DeltaLinear``: a Linear layer that only computes on what changed since the last step.

Per step (Neil et al. 2017): the input is delta-encoded (``layers/delta_encoder.py``),
and the pre-activation is updated with the weight columns of the units that sent a delta,
``z_t = z_{t−1} + W·Δ_t`` (``z_{−1} = b``). Because ``Σ_{s≤t} Δ_s = x̂_t``, the output is
exactly ``W·x̂_t + b``: the dense layer applied to the reference-quantised input (equal to
``nn.Linear`` on the raw input when θ = 0).

The ``W·Δ`` products of all steps are one graded-event matmul over the ``T·B`` rows of
deltas, run by the event Linear's kernels (``neurosparse/ops/event_linear.py``: Numba CPU
row gathers, Numba CUDA, torch reference); the running sum over time is
``ops/delta_accumulate.py`` (float64 sums). ``mode="auto"`` hands a call whose deltas are
too dense to the dense matmul (``layers/dispatch.py``), with the same result; on CUDA it
hands it every call (the activity is not read back to the host).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .._checks import (
    check_choice,
    check_same_device,
    check_sequence,
    check_state_tensor,
    unwrap,
)
from .._counters import OpCounter
from ..errors import DTypeError, ShapeError
from ..ops import event_linear as el
from ..ops.delta_accumulate import accumulate
from ..ops.delta_encode import EncodeStats, delta_encode_op, on_gpu
from ._base import DeltaTwin, LinearTwin
from .delta_encoder import (
    DeltaModule,
    DeltaStream,
    check_threshold,
    unit_thresholds,
)
from .dispatch import MODES, choose_path, cuda_linear_path
from .event_linear import check_weight


class DeltaLinearState(NamedTuple):
    """``x_ref [B, in]``: the last value each input unit sent; ``z [B, out]``: ``W·x̂ + b``."""

    x_ref: torch.Tensor
    z: torch.Tensor


def delta_matmul(
    delta2d: torch.Tensor, weight: torch.Tensor, stats: EncodeStats, mode: str
) -> tuple[torch.Tensor, str, int]:
    """``delta2d @ weightᵀ`` over the non-zero deltas only (or dense, per ``mode``).

    Returns the product, the path taken and the number of deltas of magnitude 1. On
    CUDA nothing is read to the host: ``"auto"`` takes the dense product (as the event
    Linear does, ``layers/dispatch.py``) and the counts stay device tensors.
    """
    m, k = delta2d.shape
    n = weight.shape[0]
    if on_gpu(delta2d):  # no rate read: it would synchronise (dispatch.cuda_linear_path)
        path = cuda_linear_path(mode, m, k, n, delta2d.dtype)
    else:
        path = choose_path(mode, "linear", delta2d.device.type, (m, k, n),
                           stats.nnz / max(1, m * k))  # fmt: skip
    if path == "dense":
        return F.linear(delta2d, weight), path, stats.unit
    scan = el.scan_linear(delta2d, exact=False)  # stats already counted the deltas
    index = el.index_linear(delta2d, scan)
    return el.event_linear_apply(delta2d, weight, None, index), path, stats.unit


def _flatten_input(x: torch.Tensor, n_in: int) -> torch.Tensor:
    # [T, B, in], or [T, B, *] whose trailing axes hold in_features values (a flattened
    # convolution output, as in DeltaConv2d -> DeltaLinear)
    if x.shape[-1] == n_in and x.dim() == 3:
        return x
    if x.dim() > 3 and math.prod(x.shape[2:]) == n_in:
        return x.reshape(x.shape[0], x.shape[1], n_in)
    raise ShapeError(
        f"input has shape {tuple(x.shape)} but the layer expects [T, B, {n_in}] (or [T, B, *] "
        f"with {n_in} values per sample)"
    )


def delta_linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    threshold: float | torch.Tensor = 0.0,
    state: DeltaLinearState | None = None,
    mode: str = "auto",
    grad_width: float | None = None,
) -> tuple[torch.Tensor, DeltaLinearState]:
    """Functional delta Linear: ``F.linear(x̂_t, weight, bias)`` computed from the deltas.

    Parameters
    ----------
    x : ``[T, B, in]`` (or ``[T, B, *]`` with ``in`` values per sample).
    weight : ``[out, in]``; bias : ``[out]`` or None.
    threshold : scalar or ``[in]`` (per input unit), ≥ 0.
    state : DeltaLinearState, optional (``None``: zero references, ``z = b``).
    mode : {"auto", "event", "dense"}

    Returns
    -------
    z : ``[T, B, out]``; state : DeltaLinearState after the last step.
    """
    # the caller's tensors, not a layer's: a 1-D weight failed with a bare unpacking
    # error, and a [B, out] bias was broadcast as a per-sample bias without a word
    x = check_sequence(unwrap(x), 3, "[T, B, in_features], time first")
    check_weight(weight, bias, x, 2, "[out_features, in_features]", contiguous=False)
    holder = _Functional(weight, bias, threshold, mode, grad_width)
    return holder.run(x, state)


class _Functional(DeltaModule):
    def __init__(self, weight, bias, threshold, mode, grad_width):
        self.weight, self.bias, self.mode = weight, bias, check_choice("mode", mode, MODES)
        th = torch.as_tensor(threshold)
        check_threshold("threshold", th)
        self.threshold = th
        self.threshold_grad_width = (grad_width if grad_width is not None
                                     else max(float(th.detach().max()), 1e-2))  # fmt: skip

    def run(self, x, state):
        return _sequence(self, x, state, None)


def _sequence(layer, x, state, counter: OpCounter | None):
    x = check_sequence(unwrap(x), 3, "[T, B, in_features], time first")
    weight, bias = layer.weight, layer.bias
    n_out, n_in = weight.shape
    x3 = _flatten_input(x, n_in)
    n_t, n_b = x3.shape[:2]
    check_same_device("the input", x, weight, "the layer's weight")
    if weight.dtype != x.dtype:
        raise DTypeError(
            f"weight is {weight.dtype} but the input is {x.dtype}; convert the layer with "
            f".to({x.dtype}) or the input with .to({weight.dtype})"
        )
    if state is None:
        ref0 = torch.zeros(n_b, n_in, dtype=x.dtype, device=x.device)
        z0 = (bias if bias is not None else torch.zeros(n_out, dtype=x.dtype, device=x.device))
        z0 = z0.expand(n_b, n_out)
    else:
        if not isinstance(state, tuple) or len(state) != 2:
            raise ShapeError(f"state must be a DeltaLinearState (x_ref, z), got "
                             f"{type(state).__name__}")  # fmt: skip
        ref0 = check_state_tensor("state.x_ref", state[0], (n_b, n_in), x)
        z0 = check_state_tensor("state.z", state[1], (n_b, n_out), x)
    thr = unit_thresholds(layer.threshold, x3.shape[2:], x3)
    delta, ref, stats = delta_encode_op(x3.contiguous(), ref0, thr, layer.threshold_grad_width)
    inc, path, unit = delta_matmul(delta.reshape(n_t * n_b, n_in), weight, stats, layer.mode)
    z = accumulate(inc.reshape(n_t, n_b, n_out), z0, inplace=True)
    layer._record("input", DeltaStream(delta, stats.nnz, stats.total, float(n_out)))
    if counter is not None:
        nb = x.element_size()
        counter.count_ops(
            synops=unit * n_out,
            macs=(stats.nnz - unit) * n_out,
            dense_macs=n_t * n_b * n_in * n_out,
            events_in=stats.nnz,
            inputs_in=stats.total,
            neuron_updates=stats.total,
            weight_bytes_read=stats.nnz * n_out * weight.element_size(),
            # references read every step and written at each send; z read and written
            state_bytes_rw=(stats.total + stats.nnz) * nb + 2 * n_t * n_b * n_out * nb,
        )
    layer.last_path = path
    return z, DeltaLinearState(ref, z[-1])


class DeltaLinear(DeltaTwin, LinearTwin):
    """Linear layer driven by input deltas: output ``W·x̂_t + b`` for ``x [T, B, in]``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    threshold : float or torch.Tensor
        Delta threshold θ ≥ 0 of the input units (θ = 0: every change is sent and the
        layer equals ``nn.Linear``).
    per_channel : bool
        One threshold per input unit (``in_features`` of them).
    learn_threshold : bool
        Train θ through the surrogate gradient of ``ops/delta_encode.py``.
    grad_width : float, optional
        Half-width of that surrogate (default ``max(θ, 0.01)``).
    mode : {"auto", "event", "dense"}
        How ``W·Δ`` is computed; every path gives the same result.
    device, dtype
        Where and in which dtype the parameters are made (as ``nn.Linear``).

    Notes
    -----
    Input ``[T, B, in]`` (or ``[T, B, *]`` with ``in`` values per sample, flattened);
    output ``[T, B, out]``. Sequence mode starts from rest (zero references, ``z = b``)
    unless ``state`` is passed; ``return_state=True`` returns ``(z, state)``. ``step(x_t)``
    continues from the state kept by the previous ``step`` until :meth:`reset`. Weight
    and bias use ``nn.Linear``'s layout, so state dicts interchange (plus ``threshold``).

    Counters: ``macs`` (graded deltas) / ``synops`` (deltas of magnitude 1) = deltas ×
    out_features; ``dense_macs`` = T·B·in·out; ``events_in`` = deltas sent; ``inputs_in``
    = input elements; ``neuron_updates`` = delta units compared; ``weight_bytes_read`` =
    deltas × out × bytes per weight; ``state_bytes_rw`` = references and ``z`` traffic.
    """

    _step_layout = "[B, in_features]"

    def _run(self, x, state):
        return _sequence(self, x, state, self)
