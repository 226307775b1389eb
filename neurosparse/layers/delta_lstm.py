"""``DeltaLSTM``: an LSTM whose input and hidden state are delta-encoded (DeltaRNN).

The delta scheme of ``DeltaGRU`` (Gao et al. 2018) applied to the LSTM's four gates; the
cell state ``c`` is internal and updated densely (it is never multiplied by a weight).
Equations in ``layers/delta_rnn.py`` and ``kernels/delta_rnn.py``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..ops.delta_rnn import LSTM
from .delta_rnn import DeltaRNNBase


class DeltaLSTMState(NamedTuple):
    """Everything a ``DeltaLSTM`` carries from one step to the next (``[B, ·]`` each).

    ``h``, ``c``: hidden and cell state; ``x_ref``/``h_ref``: last value each input/hidden
    unit sent; ``mx``/``mh``: input and recurrent memories (``4·hidden_size`` wide, gate
    order i, f, g, o).
    """

    h: torch.Tensor
    c: torch.Tensor
    x_ref: torch.Tensor
    h_ref: torch.Tensor
    mx: torch.Tensor
    mh: torch.Tensor


class DeltaLSTM(DeltaRNNBase):
    """LSTM layer on delta-encoded input and hidden state: ``[T, B, I] -> ([T, B, H], state)``.

    Same parameters, modes, state handling and counters as :class:`DeltaGRU` with four
    gates (``4·hidden_size``) and ``nn.LSTM``'s parameter names and layout; a bare state
    is ``(h, c)``. With both thresholds 0 the output equals ``nn.LSTM`` (one layer).
    """

    cell = LSTM
    state_type = DeltaLSTMState
