"""neurosparse: spiking and neuromorphic simulation that works only where there are events."""

from __future__ import annotations

import os

if "NUMBA_THREADING_LAYER" not in os.environ:
    # Numba's OpenMP layer leaves its workers spinning after every parallel kernel, which
    # on few cores starves torch's own threads (seen: the next torch op 15x slower on 2
    # cores); the workqueue layer sleeps instead. Set NUMBA_THREADING_LAYER to choose.
    import numba as _numba

    _numba.config.THREADING_LAYER = "workqueue"

from . import data, energy, errors, interop, layers, plasticity, sdr, viz
from .layers import (
    DeltaConv2d,
    DeltaEncoder,
    DeltaGRU,
    DeltaLinear,
    DeltaLSTM,
    EventConv2d,
    EventLinear,
    SparseEventLinear,
    delta_penalty,
    temporal_sparsity,
)
from .neurons import ALIF, IF, LIF, CubaLIF, NeuronState, SpikingNeuron, surrogate
from .sdr import DendriticLinear, KWinners, KWinners2d
from .sequential import Sequential

__version__ = "0.1.0"

__all__ = [
    "ALIF",
    "IF",
    "LIF",
    "CubaLIF",
    "DeltaConv2d",
    "DeltaEncoder",
    "DeltaGRU",
    "DeltaLSTM",
    "DeltaLinear",
    "EventConv2d",
    "EventLinear",
    "DendriticLinear",
    "KWinners",
    "KWinners2d",
    "NeuronState",
    "Sequential",
    "SparseEventLinear",
    "SpikingNeuron",
    "data",
    "energy",
    "errors",
    "interop",
    "layers",
    "plasticity",
    "sdr",
    "surrogate",
    "delta_penalty",
    "temporal_sparsity",
    "viz",
    "__version__",
]
