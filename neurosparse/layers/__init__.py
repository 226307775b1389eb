"""Synaptic layers that do work only where there are events or deltas.

- event layers: ``EventLinear`` / ``EventConv2d`` gather the weights of the inputs that
  spiked (cost follows the number of input events);
- delta layers: ``DeltaEncoder``, ``DeltaLinear``, ``DeltaConv2d``, ``DeltaGRU``,
  ``DeltaLSTM`` transmit only changes above a threshold, with ``delta_penalty`` to train
  for temporal sparsity and ``temporal_sparsity`` to report it;
- ``SparseEventLinear``: sparse weights (constant fan-in) driven by sparse events, whose
  synapses ``neurosparse.plasticity.Rewiring`` prunes and regrows in place.
"""

from .delta_conv2d import DeltaConv2d, DeltaConv2dState
from .delta_encoder import DeltaEncoder, DeltaEncoderState, delta_encode
from .delta_gru import DeltaGRU, DeltaGRUState
from .delta_linear import DeltaLinear, DeltaLinearState, delta_linear
from .delta_lstm import DeltaLSTM, DeltaLSTMState
from .delta_penalty import delta_penalty, temporal_sparsity
from .delta_refine import refine_for_sparsity, to_delta
from .event_conv2d import EventConv2d, event_conv2d
from .event_linear import EventLinear, event_linear
from .sparse_event_linear import SparseEventLinear, sparse_event_linear

__all__ = [
    "DeltaConv2d",
    "DeltaConv2dState",
    "DeltaEncoder",
    "DeltaEncoderState",
    "DeltaGRU",
    "DeltaGRUState",
    "DeltaLSTM",
    "DeltaLSTMState",
    "DeltaLinear",
    "DeltaLinearState",
    "EventConv2d",
    "EventLinear",
    "SparseEventLinear",
    "delta_encode",
    "delta_linear",
    "delta_penalty",
    "event_conv2d",
    "event_linear",
    "refine_for_sparsity",
    "sparse_event_linear",
    "temporal_sparsity",
    "to_delta",
]
