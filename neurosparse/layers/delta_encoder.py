"""Delta encoding: thresholds, the bookkeeping every delta module shares, ``DeltaEncoder``.

A delta unit keeps a reference value and transmits ``Δ = x_t − ref`` only where
``|x_t − ref| > θ`` (then ``ref ← x_t``), else nothing (Neil et al. 2017; the Delta
Activation Layer of Yousefzadeh & Sifalakis 2021). The op and its straight-through
gradient live in ``neurosparse/ops/delta_encode.py``; this file holds what the delta
layers share:

- thresholds per layer (a scalar) or per channel (one per entry of the channel axis,
  axis 2 of ``[T, B, C, ...]``), fixed (a buffer) or learnable (a parameter, used as
  ``max(θ, 0)``);
- :class:`DeltaModule`, the record of the deltas each layer transmitted in its last call,
  read by ``delta_penalty`` and ``temporal_sparsity`` (``layers/delta_penalty.py``);
- the stand-alone :class:`DeltaEncoder`, which turns any ``[T, B, ...]`` signal into its
  delta stream (or its reference-quantised copy) in front of any layer, snnTorch and
  Norse ones included;
- the Delta Activation Layer's trainable quantisation step (:func:`quantise`, the
  ``quant_step`` option of :class:`DeltaEncoder`): activations are rounded to multiples
  of a step ``s`` before the deltas are taken, so every delta sent is an integer number
  of steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .._checks import (
    check_choice,
    check_finite,
    check_finite_range,
    check_float_tensor,
    check_module_device,
    check_rank,
    check_sequence,
    check_state_tensor,
    unwrap,
)
from .._counters import OpCounter
from .._state import StepState
from ..errors import ParameterError, ShapeError
from ..ops.delta_encode import EncodeStats, delta_encode_op

OUTPUTS = ("delta", "reference")


# -- thresholds --------------------------------------------------------------------------
def init_threshold(
    module: nn.Module,
    threshold: float | torch.Tensor,
    channels: int | None,
    per_channel: bool,
    learn: bool,
    grad_width: float | None,
    name: str = "threshold",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Register ``module.<name>`` (``[]`` or ``[channels]``) and its surrogate width.

    ``threshold`` may be a float (broadcast to every channel when ``per_channel``) or a
    tensor of shape ``[]`` / ``[channels]``.
    """
    t = torch.as_tensor(threshold, dtype=torch.float32).detach().clone()
    check_finite_range(name, t, lo=0.0)
    if t.dim() > 1:
        raise ShapeError(f"{name} must be a scalar or a 1-D tensor, got shape {tuple(t.shape)}")
    if t.dim() == 1 and t.numel() != 1:
        per_channel = True
        channels = t.numel() if channels is None else channels
    if per_channel:
        if channels is None:
            raise ParameterError(
                f"per-channel {name} needs the number of channels; pass channels=<C>"
            )
        if t.dim() == 1 and t.numel() not in (1, channels):
            raise ShapeError(
                f"{name} has {t.numel()} values but the layer has {channels} channels; "
                f"pass one value per channel or a scalar"
            )
        t = t.reshape(-1).expand(channels).clone()
    else:
        t = t.reshape(())
    t = t.to(device=device, dtype=dtype or torch.get_default_dtype())
    if learn:
        module.register_parameter(name, nn.Parameter(t))
    else:
        module.register_buffer(name, t)
    if grad_width is None:
        grad_width = max(float(t.max()) if t.numel() else 0.0, 1e-2)
    if not (isinstance(grad_width, (int, float)) and math.isfinite(grad_width) and grad_width > 0):
        raise ParameterError(f"grad_width must be a positive float, got {grad_width!r}")
    module.__dict__[f"{name}_grad_width"] = float(grad_width)


def check_threshold(name: str, th: torch.Tensor) -> None:
    """Require every value of a threshold tensor to be finite and ``>= 0``.

    A NaN threshold silently never sends (``|d| > NaN`` is false): the layer would
    output its initial value at every step; an infinite one never sends either. The
    constructors check this in :func:`init_threshold`; the functional forms call this.
    """
    check_finite_range(name, th.detach(), lo=0.0)


def unit_thresholds(theta: torch.Tensor, sample_shape: torch.Size, like: torch.Tensor):
    """``max(θ, 0)`` for every unit of one sample (flat ``[U]``), in ``like``'s dtype/device.

    A per-channel θ (``[C]``) spans axis 0 of ``sample_shape`` (``[C, ...]``).
    """
    th = theta.to(dtype=like.dtype, device=like.device)
    # forward max(θ, 0); the gradient passes the clamp, so that a learnable threshold that
    # went below 0 (where it acts as 0) can still be pulled back up by the penalty
    th = th + (th.clamp(min=0) - th).detach()
    if th.dim() == 0:
        return th.expand(math.prod(sample_shape))
    if th.shape[0] != sample_shape[0]:
        raise ShapeError(
            f"the per-channel threshold has {th.shape[0]} values but the input has "
            f"{sample_shape[0]} channels (axis 2 of [T, B, C, ...])"
        )
    view = (th.shape[0],) + (1,) * (len(sample_shape) - 1)
    return th.view(view).expand(tuple(sample_shape)).reshape(-1)


# -- the trainable quantisation step ----------------------------------------------------
def quantise(x: torch.Tensor, step: float | torch.Tensor) -> torch.Tensor:
    """Round ``x`` to multiples of ``step``: ``s · round(x / s)``, trainable in ``s``.

    The quantisation step of the Delta Activation Layer (Yousefzadeh & Sifalakis 2021).
    Gradients: straight through in ``x`` (``∂x̂/∂x = 1``; the true derivative is 0
    almost everywhere), and in ``s`` the exact derivative of the piecewise-linear
    function, ``∂x̂/∂s = round(x/s)``, which a step that requires grad receives. (LSQ,
    Esser et al. 2020, also passes the rounding straight through in ``s`` and gets
    ``round(x/s) − x/s``; the exact one is used here so that finite differences check it.)

    Parameters
    ----------
    x : torch.Tensor
        Any floating tensor.
    step : float or torch.Tensor
        ``s > 0``: a scalar, or a tensor broadcastable to ``x``. A tensor step that went
        to or below 0 in training acts as ``1e-6`` (its gradient still flows).

    Returns
    -------
    torch.Tensor
        ``x̂`` of ``x``'s shape. ``torch.round`` rounds halves to even (``0.5 → 0``).
    """
    x = check_float_tensor("input", x)
    if isinstance(step, torch.Tensor):
        s = step.to(dtype=x.dtype, device=x.device)
        s = s + (s.clamp(min=1e-6) - s).detach()
    else:
        if not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
            raise ParameterError(f"quantisation step must be a positive float, got {step!r}")
        s = torch.tensor(float(step), dtype=x.dtype, device=x.device)
    levels = torch.round(x.detach() / s.detach())
    return s * levels + (x - x.detach())


# -- what each delta module records ------------------------------------------------------
@dataclass
class DeltaStream:
    """The deltas one stream of a layer transmitted in its last call.

    ``delta`` (``[T, B, ...]``) keeps its autograd graph, so ``delta_penalty`` can train on
    it; ``count`` is the number of deltas sent, as the layer counted it (an int, or an
    int64 device tensor on CUDA, so that the call did not wait for the GPU); ``fan_out``
    is the number of synapses each delta drives (a float, or a tensor broadcastable to
    one step of one sample, e.g. a convolution's border-clipped footprints).
    """

    delta: torch.Tensor
    count: int | torch.Tensor
    total: int
    fan_out: float | torch.Tensor = 1.0

    @property
    def nnz(self) -> int:
        """Deltas sent (reading a CUDA count waits for the GPU: read it after the step)."""
        return int(self.count)

    @property
    def sparsity(self) -> float:
        """Fraction of deltas that were zero (not transmitted)."""
        return 1.0 - self.nnz / self.total if self.total else float("nan")


class DeltaModule:
    """Mixin of every delta module: the deltas of its last call, per stream."""

    def _record(self, name: str, stream: DeltaStream) -> None:
        streams = self.__dict__.setdefault("_delta_streams", {})
        streams[name] = stream

    def delta_streams(self) -> dict[str, DeltaStream]:
        """``{stream name: DeltaStream}`` of the last call (empty before the first)."""
        return dict(self.__dict__.get("_delta_streams", {}))

    def clear_deltas(self) -> None:
        """Drop the recorded deltas (and the autograd graph they keep alive)."""
        self.__dict__.pop("_delta_streams", None)

    def __getstate__(self):
        # copy.deepcopy / pickle: the recorded deltas and a step-mode state may hold
        # autograd graphs, which cannot be copied; drop the record, detach the state
        state = dict(super().__getstate__())
        state.pop("_delta_streams", None)
        kept = state.get("state")
        if isinstance(kept, tuple):
            state["state"] = type(kept)(*(t.detach() for t in kept))
        return state


# -- the stand-alone encoder -------------------------------------------------------------
class DeltaEncoderState(NamedTuple):
    """References of every unit after the last step, ``[B, ...]``."""

    ref: torch.Tensor


def delta_encode(
    x: torch.Tensor,
    threshold: float | torch.Tensor = 0.0,
    state: DeltaEncoderState | torch.Tensor | None = None,
    grad_width: float | None = None,
) -> tuple[torch.Tensor, DeltaEncoderState]:
    """Functional delta encoding of ``x [T, B, ...]``.

    Parameters
    ----------
    x : torch.Tensor
        ``[T, B, ...]``, time first, floating point, finite.
    threshold : float or torch.Tensor
        θ ≥ 0: a scalar, or one value per channel (axis 2 of ``x``). Gradients reach a
        tensor threshold that requires them (surrogate, see ``ops/delta_encode.py``).
    state : DeltaEncoderState or torch.Tensor, optional
        References ``[B, ...]`` to start from; ``None`` starts from zeros.
    grad_width : float, optional
        Half-width of the threshold's surrogate gradient (default ``max(θ, 0.01)``).

    Returns
    -------
    delta : torch.Tensor
        ``[T, B, ...]``: ``x_t − ref`` where ``|x_t − ref| > θ``, else 0.
    state : DeltaEncoderState
        The references after the last step.
    """
    x = check_sequence(x, 2, "[T, B, ...], time first")
    check_finite("input", x)
    th = torch.as_tensor(threshold, dtype=x.dtype, device=x.device)
    check_threshold("threshold", th)
    ref0 = _initial_ref(x, state)
    thr = unit_thresholds(th, x.shape[2:], x)
    width = grad_width if grad_width is not None else max(float(th.detach().max()), 1e-2)
    n_t, n_b = x.shape[:2]
    delta, ref, _ = delta_encode_op(x.reshape(n_t, n_b, -1), ref0.reshape(n_b, -1), thr, width)
    return delta.reshape(x.shape), DeltaEncoderState(ref.reshape(x.shape[1:]))


def _initial_ref(x: torch.Tensor, state) -> torch.Tensor:
    if state is None:
        return torch.zeros_like(x[0])
    ref = state.ref if isinstance(state, DeltaEncoderState) else state
    return check_state_tensor("state.ref", ref, tuple(x.shape[1:]), x)


class DeltaEncoder(OpCounter, DeltaModule, StepState):
    """Send only what changed: ``[T, B, ...] -> [T, B, ...]`` deltas (or quantised input).

    Parameters
    ----------
    threshold : float or torch.Tensor
        θ ≥ 0. A change is sent where ``|x_t − ref| > θ`` (strictly), so θ = 0 sends every
        change and nothing else.
    channels : int, optional
        Size of the channel axis (axis 2 of the input); needed for per-channel θ.
    per_channel : bool
        One threshold per channel (initialised to ``threshold``).
    learn_threshold : bool
        Make θ a parameter trained through a surrogate gradient (used as ``max(θ, 0)``).
    grad_width : float, optional
        Half-width of that surrogate (default ``max(θ, 0.01)``).
    output : {"delta", "reference"}
        ``"delta"``: the sparse change stream ``Δ_t`` (what an event-driven layer
        consumes; feed it to ``EventLinear`` and sum over time, or to a spiking neuron as
        input current). ``"reference"``: the reference-quantised signal ``x̂_t`` (each
        unit holds the last value it sent), equal to the input where θ = 0.
    fan_out : float
        Synapses each delta drives downstream, for ``delta_penalty(weighted=True)``.
    quant_step : float, optional
        Round the input to multiples of this step before encoding (:func:`quantise`);
        ``None`` (default) leaves it as it is.
    learn_quant_step : bool
        Make the step a parameter ``quant_step`` trained through the exact step
        gradient ``round(x/s)`` (see :func:`quantise`; not LSQ's).

    Notes
    -----
    Modes follow the neurons: ``encoder(x)`` (sequence mode) starts from zero references
    unless ``state`` is passed, and returns ``out`` (``(out, state)`` with
    ``return_state=True``); ``encoder.step(x_t)`` continues from the references kept by
    the previous ``step`` until :meth:`reset`.

    Counters: ``spikes`` = deltas sent, ``neuron_updates`` = units compared (one per
    element and step), ``state_bytes_rw`` = references read (every unit, every step) and
    written (at each send).
    """

    def __init__(
        self,
        threshold: float | torch.Tensor = 0.0,
        channels: int | None = None,
        per_channel: bool = False,
        learn_threshold: bool = False,
        grad_width: float | None = None,
        output: str = "delta",
        fan_out: float = 1.0,
        quant_step: float | None = None,
        learn_quant_step: bool = False,
    ) -> None:
        super().__init__()
        init_threshold(self, threshold, channels, per_channel, learn_threshold, grad_width)
        if quant_step is None:
            if learn_quant_step:
                raise ParameterError("learn_quant_step=True needs a starting quant_step > 0")
            self.quant_step = None
        else:
            if not (isinstance(quant_step, (int, float)) and math.isfinite(quant_step)
                    and quant_step > 0):  # fmt: skip
                raise ParameterError(f"quant_step must be a positive float, got {quant_step!r}")
            step = torch.tensor(float(quant_step))
            if learn_quant_step:
                self.quant_step = nn.Parameter(step)
            else:
                self.register_buffer("quant_step", step)
        self.output = check_choice("output", output, OUTPUTS)
        if not (isinstance(fan_out, (int, float)) and fan_out > 0):
            raise ParameterError(f"fan_out must be a positive number, got {fan_out!r}")
        self.fan_out = float(fan_out)
        self.state: DeltaEncoderState | None = None

    def _encode(self, x, state):
        x = check_sequence(unwrap(x), 2, "[T, B, ...], time first")
        check_module_device(self, x, "DeltaEncoder")
        if self.quant_step is not None:
            x = quantise(x, self.quant_step)
        ref0 = _initial_ref(x, state)
        thr = unit_thresholds(self.threshold, x.shape[2:], x)
        n_t, n_b = x.shape[:2]
        d3, ref, stats = delta_encode_op(x.reshape(n_t, n_b, -1), ref0.reshape(n_b, -1), thr,
                                         self.threshold_grad_width)  # fmt: skip
        delta = d3.reshape(x.shape)
        self._count(stats, x.element_size())
        self._record("input", DeltaStream(delta, stats.nnz, stats.total, self.fan_out))
        if self.output == "delta":
            out = delta
        else:
            from ..ops.delta_accumulate import accumulate

            out = quantised(x, delta, ref0, accumulate(delta, ref0))
        return out, DeltaEncoderState(ref.reshape(x.shape[1:]))

    def _count(self, stats: EncodeStats, nbytes: int) -> None:
        self.count_ops(spikes=stats.nnz, neuron_updates=stats.total,
                       state_bytes_rw=(stats.total + stats.nnz) * nbytes)  # fmt: skip

    def forward(
        self,
        x: torch.Tensor,
        state: DeltaEncoderState | torch.Tensor | None = None,
        return_state: bool = False,
    ):
        """Sequence mode: ``x [T, B, ...]`` -> deltas (or ``x̂``) ``[T, B, ...]``."""
        out, new = self._encode(x, state)
        return (out, new) if return_state else out

    def step(
        self,
        x: torch.Tensor,
        state: DeltaEncoderState | torch.Tensor | None = None,
        return_state: bool = False,
    ):
        """One step ``x [B, ...]`` -> ``[B, ...]`` (``(out, state)`` with ``return_state``).

        Without ``state`` it continues from the kept references and keeps the new ones.
        """
        x = check_float_tensor("input", unwrap(x))
        check_rank("input", x, tuple(range(1, 8)), "[B, ...], one time step")
        out, new = self._step(lambda s: self._encode(x[None], s), state)
        return (out[0], new) if return_state else out[0]

    def extra_repr(self) -> str:
        th = self.threshold
        t = f"{float(th):g}" if th.dim() == 0 else f"[{th.numel()} channels]"
        learn = ", learn_threshold=True" if isinstance(th, nn.Parameter) else ""
        q = "" if self.quant_step is None else f", quant_step={float(self.quant_step.detach()):g}"
        return f"threshold={t}{learn}{q}, output={self.output!r}"


def quantised(
    x: torch.Tensor, delta: torch.Tensor, ref0: torch.Tensor, summed: torch.Tensor
) -> torch.Tensor:
    """``x̂_t`` (the last value each unit sent, else ``ref0``) with the gradient of ``summed``.

    ``summed = ref0 + Σ_{s≤t} Δ_s`` equals ``x̂`` up to rounding and carries the estimator's
    gradient; the exact values are read back from ``x`` so that ``x̂`` is bit-exact.
    """
    n_t = x.shape[0]
    steps = torch.arange(n_t, device=x.device).view((n_t,) + (1,) * (x.dim() - 1))
    last = torch.where(delta != 0, steps.expand_as(x), -1).cummax(0).values
    exact = torch.where(last >= 0, x.detach().gather(0, last.clamp(min=0)),
                        ref0.detach().expand_as(x))  # fmt: skip
    return exact + (summed - summed.detach())


