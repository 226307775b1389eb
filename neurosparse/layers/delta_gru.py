"""``DeltaGRU``: a GRU whose input and hidden state are delta-encoded (DeltaRNN).

Gao, Neil, Ceolini, Liu & Delbruck 2018 (FPGA): the matrix products of a GRU are updated
only with the columns of the inputs and hidden units that changed by more than a
threshold; the gate pre-activations are running memories (see ``layers/delta_rnn.py``
for the equations and ``kernels/delta_rnn.py`` for the kernels).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..ops.delta_rnn import GRU
from .delta_rnn import DeltaRNNBase


class DeltaGRUState(NamedTuple):
    """Everything a ``DeltaGRU`` carries from one step to the next (``[B, ·]`` each).

    ``h``: hidden state; ``x_ref``/``h_ref``: last value each input/hidden unit sent;
    ``mx``/``mh``: input and recurrent memories ``W_ih·x̂ + b_ih`` and ``W_hh·ĥ + b_hh``
    (``3·hidden_size`` wide, gate order r, z, n).
    """

    h: torch.Tensor
    x_ref: torch.Tensor
    h_ref: torch.Tensor
    mx: torch.Tensor
    mh: torch.Tensor


class DeltaGRU(DeltaRNNBase):
    """GRU layer on delta-encoded input and hidden state: ``[T, B, I] -> ([T, B, H], state)``.

    Parameters
    ----------
    input_size, hidden_size : int
    bias : bool
    threshold : float or torch.Tensor
        Delta threshold θ_x ≥ 0 of the input units (scalar, or ``[input_size]``).
    hidden_threshold : float or torch.Tensor, optional
        Delta threshold θ_h of the hidden units (default: ``threshold`` when scalar).
    per_channel : bool
        One threshold per input unit and per hidden unit.
    learn_threshold : bool
        Train both thresholds through the surrogate gradient of ``ops/delta_encode.py``.
    grad_width : float, optional
        Half-width of that surrogate.
    mode : {"auto", "event", "dense"}
        Path of the input products ``W_ih·Δx`` (same result on every path).
    device, dtype
        Where and in which dtype the parameters are made (as ``nn.GRU``).

    Notes
    -----
    With both thresholds 0 the output equals ``nn.GRU`` (one layer, time first). The
    parameters have ``nn.GRU``'s names and layout (``DeltaGRU.from_dense(gru)`` copies
    them). Forward returns ``(h_seq, DeltaGRUState)`` like ``nn.GRU``/the neurons; it
    starts from rest unless ``state`` is passed (a ``DeltaGRUState``, or a bare ``h``).
    Inference (no gradient needed) runs the Numba kernels of ``kernels/delta_rnn*.py``;
    training runs the differentiable torch loop of ``ops/delta_rnn.py``.

    Counters: ``macs`` / ``synops`` = (input + hidden deltas) × 3·hidden_size;
    ``dense_macs`` = T·B·(I + H)·3H; ``events_in`` = deltas sent; ``inputs_in`` =
    T·B·(I + H); ``neuron_updates`` = T·B·H; ``weight_bytes_read`` = one weight per op.
    """

    cell = GRU
    state_type = DeltaGRUState
