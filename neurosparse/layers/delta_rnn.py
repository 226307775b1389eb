"""Shared body of ``DeltaGRU`` and ``DeltaLSTM`` (DeltaRNN, Gao et al. 2018).

Both the input ``x_t`` and the hidden state ``h_{t−1}`` are delta-encoded, each with its
own thresholds, and the gate pre-activations are two running memories:

    M_x[t] = M_x[t−1] + W_ih·Δx_t      (= W_ih·x̂_t + b_ih)
    M_h[t] = M_h[t−1] + W_hh·Δh_{t−1}  (= W_hh·ĥ_{t−1} + b_hh)

so a cell computes exactly what the dense cell computes with ``x̂`` and ``ĥ`` in its
matrix products (``h_{t−1}`` itself in the GRU's ``z ⊙ h`` term and in the LSTM's cell
update). With both thresholds 0 it equals ``nn.GRU`` / ``nn.LSTM``.

The input half of all steps is one delta Linear call (``layers/delta_linear.py``); the
recurrent half is ``ops/delta_rnn.py`` (Numba kernels for inference, a differentiable
torch loop for training). Parameters use ``nn.GRU``/``nn.LSTM`` single-layer names and
layouts (``weight_ih_l0`` ...), so state dicts load from a one-layer ``nn.GRU``/``nn.LSTM``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .._checks import check_module_device, check_sequence, check_state_tensor, unwrap
from ..errors import ParameterError, ShapeError
from ..ops.delta_accumulate import accumulate
from ..ops.delta_encode import delta_encode_op
from ..ops.delta_rnn import GATES, RecurrentState, recurrent_sequence
from ._base import DeltaTwin, params, positive_int, threshold_repr
from .delta_encoder import (
    DeltaStream,
    init_threshold,
    unit_thresholds,
)
from .delta_linear import delta_matmul


class DeltaRNNBase(DeltaTwin):
    """Common constructor, state handling and forward of the delta recurrent cells.

    Subclasses set ``cell`` (``ops.delta_rnn.GRU``/``LSTM``) and ``state_type`` (a
    NamedTuple with the fields ``h, [c,] x_ref, h_ref, mx, mh``).
    """

    cell: int
    state_type: type
    _size_params = params(("input_size", "int"), ("hidden_size", "int"), ("bias", "bool", True))
    _option_params = (DeltaTwin._option_params[0],
                      *params(("hidden_threshold", "float | torch.Tensor | None", None)),
                      *DeltaTwin._option_params[1:])  # fmt: skip
    _in_units = "input_size"
    _step_layout = "[B, input_size]"

    def _make_parameters(self, kw, input_size, hidden_size, bias) -> None:
        self.input_size = positive_int("input_size", input_size)
        self.hidden_size = positive_int("hidden_size", hidden_size)
        gh = GATES[self.cell] * hidden_size
        self.weight_ih_l0 = nn.Parameter(torch.empty(gh, input_size, **kw))
        self.weight_hh_l0 = nn.Parameter(torch.empty(gh, hidden_size, **kw))
        if bias:
            self.bias_ih_l0 = nn.Parameter(torch.empty(gh, **kw))
            self.bias_hh_l0 = nn.Parameter(torch.empty(gh, **kw))
        else:
            self.register_parameter("bias_ih_l0", None)
            self.register_parameter("bias_hh_l0", None)

    def _init_options(self, kw, threshold, hidden_threshold, **delta) -> None:
        super()._init_options(kw, threshold, **delta)
        if hidden_threshold is None:
            hidden_threshold = threshold if torch.as_tensor(threshold).numel() == 1 else 0.0
        init_threshold(self, hidden_threshold, self.hidden_size, delta["per_channel"],
                       delta["learn_threshold"], delta["grad_width"], name="hidden_threshold",
                       **kw)  # fmt: skip

    def reset_parameters(self) -> None:
        """``nn.GRU``/``nn.LSTM`` initialisation: uniform(±1/√H)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih_l0, self.weight_hh_l0, self.bias_ih_l0, self.bias_hh_l0):
            if p is not None:
                nn.init.uniform_(p, -bound, bound)

    @classmethod
    def from_dense(cls, rnn: nn.Module, threshold: float = 0.0, **kw):
        """A delta cell holding a copy of a one-layer, unidirectional ``nn.GRU``/``nn.LSTM``."""
        want = nn.GRU if cls.cell == 0 else nn.LSTM
        if not isinstance(rnn, want) or rnn.num_layers != 1 or rnn.bidirectional:
            raise ParameterError(f"from_dense expects a one-layer unidirectional "
                                 f"{want.__name__}, got {rnn!r}")  # fmt: skip
        if rnn.batch_first or getattr(rnn, "proj_size", 0):
            raise ParameterError("from_dense needs batch_first=False and no projection")
        w = rnn.weight_ih_l0
        cell = cls(rnn.input_size, rnn.hidden_size, rnn.bias, threshold, device=w.device,
                   dtype=w.dtype, **kw)  # fmt: skip
        with torch.no_grad():
            for name, p in cell.named_parameters():
                if hasattr(rnn, name):
                    p.copy_(getattr(rnn, name))
        return cell

    # -- state ---------------------------------------------------------------------------
    def _biases(self, x: torch.Tensor, n_b: int) -> tuple[torch.Tensor, torch.Tensor]:
        gh = self.weight_ih_l0.shape[0]
        if self.bias_ih_l0 is None:
            zero = x.new_zeros(n_b, gh)
            return zero, zero
        return self.bias_ih_l0.expand(n_b, gh), self.bias_hh_l0.expand(n_b, gh)

    def _initial(self, x: torch.Tensor, state) -> tuple[torch.Tensor, torch.Tensor,
                                                          RecurrentState]:  # fmt: skip
        """``(x_ref, mx, recurrent state)`` from ``state`` (see :meth:`forward`)."""
        n_b = x.shape[1]
        n_h, gh = self.hidden_size, self.weight_hh_l0.shape[0]
        bx, bh = self._biases(x, n_b)
        x_ref = x.new_zeros(n_b, self.input_size)
        zeros = x.new_zeros(n_b, n_h)
        if state is None:
            return x_ref, bx, RecurrentState(zeros, zeros, zeros, bh)
        if isinstance(state, self.state_type):
            fields = state._asdict()
            shapes = {"h": (n_b, n_h), "c": (n_b, n_h), "x_ref": (n_b, self.input_size),
                      "h_ref": (n_b, n_h), "mx": (n_b, gh), "mh": (n_b, gh)}  # fmt: skip
            s = {k: check_state_tensor(f"state.{k}", v, shapes[k], x) for k, v in fields.items()}
            rec = RecurrentState(s["h"], s.get("c", zeros), s["h_ref"], s["mh"])
            return s["x_ref"], s["mx"], rec
        # a bare hidden state (``h`` or, for the LSTM, ``(h, c)``) as nn.GRU/nn.LSTM take
        # it: the hidden references start at h (so nothing is sent for it) and the
        # recurrent memory is computed densely once
        parts = state if isinstance(state, tuple) else (state,)
        if len(parts) != (2 if self.cell else 1):
            raise ShapeError(
                f"state must be a {self.state_type.__name__} or "
                f"{'(h, c)' if self.cell else 'a tensor h'} of shape [B, {n_h}], got "
                f"{type(state).__name__}"
            )
        h = check_state_tensor("state h", parts[0], (n_b, n_h), x)
        c = check_state_tensor("state c", parts[1], (n_b, n_h), x) if self.cell else zeros
        mh = bh + h @ self.weight_hh_l0.t()
        return x_ref, bx, RecurrentState(h, c, h, mh)

    def _pack(self, x_ref, mx, rec: RecurrentState):
        values = {"h": rec.h, "c": rec.c, "x_ref": x_ref, "h_ref": rec.h_ref, "mx": mx,
                  "mh": rec.mh}  # fmt: skip
        return self.state_type(**{k: values[k] for k in self.state_type._fields})

    # -- forward -------------------------------------------------------------------------
    def _run(self, x, state):
        x = check_sequence(unwrap(x), 3, "[T, B, input_size], time first")
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ShapeError(f"input must be [T, B, {self.input_size}], got shape "
                             f"{tuple(x.shape)}")  # fmt: skip
        w_ih, w_hh = self.weight_ih_l0, self.weight_hh_l0
        check_module_device(self, x, type(self).__name__, dtype=True)
        n_t, n_b, n_in = x.shape
        n_h, gh = self.hidden_size, w_hh.shape[0]
        x_ref0, mx0, rec0 = self._initial(x, state)
        thr_x = unit_thresholds(self.threshold, x.shape[2:], x)
        dx, x_ref, sx = delta_encode_op(x.contiguous(), x_ref0.contiguous(), thr_x,
                                        self.threshold_grad_width)  # fmt: skip
        inc, path, unit_x = delta_matmul(dx.reshape(n_t * n_b, n_in), w_ih, sx, self.mode)
        mx = accumulate(inc.reshape(n_t, n_b, gh), mx0, inplace=True)
        thr_h = unit_thresholds(self.hidden_threshold, (n_h,), x)
        res = recurrent_sequence(mx, w_hh, thr_h, rec0, self.cell,
                                 self.hidden_threshold_grad_width)  # fmt: skip
        self._record("input", DeltaStream(dx, sx.nnz, sx.total, float(gh)))
        self._record("hidden", DeltaStream(res.dh, res.nnz, n_t * n_b * n_h, float(gh)))
        nnz, unit = sx.nnz + res.nnz, unit_x + res.unit
        nb = x.element_size()
        # a bare hidden state's recurrent memory is one dense product (``_initial``)
        init = n_b * n_h * gh if (state is not None
                                  and not isinstance(state, self.state_type)) else 0  # fmt: skip
        self.count_ops(
            synops=unit * gh,
            macs=(nnz - unit) * gh + init,
            dense_macs=n_t * n_b * (n_in + n_h) * gh + init,
            events_in=nnz,
            inputs_in=n_t * n_b * (n_in + n_h),
            neuron_updates=n_t * n_b * n_h,
            weight_bytes_read=nnz * gh * w_ih.element_size() + (init // n_b) * w_hh.element_size(),
            # references of x and h read every step, written at sends; both memories r/w
            state_bytes_rw=(n_t * n_b * (n_in + n_h) + nnz) * nb + 4 * n_t * n_b * gh * nb,
        )
        self.last_path = path
        return res.h_seq, self._pack(x_ref, mx[-1], res.state)

    def forward(self, x: torch.Tensor, state=None):
        """Sequence mode: ``x [T, B, input_size]`` -> ``(h [T, B, hidden_size], state)``.

        ``state``: ``None`` starts from rest (zero hidden state and references, memories
        = biases); a state returned by this cell continues the stream (as one call
        would, up to float rounding of ~1e-7: each call sums its own deltas); a bare ``h``
        (``(h, c)`` for the LSTM) ``[B, hidden_size]`` starts from that hidden state.
        """
        return self._run(x, state)

    def step(self, x: torch.Tensor, state=None):
        """One step ``x [B, input_size]`` -> ``(h [B, hidden_size], state)``; keeps the
        state in the module unless ``state`` is passed."""
        return super().step(x, state, return_state=True)

    def _sizes_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, bias={self.bias_ih_l0 is not None}"

    def _options_repr(self) -> str:
        return (f"threshold={threshold_repr(self.threshold)}, "
                f"hidden_threshold={threshold_repr(self.hidden_threshold)}")  # fmt: skip
