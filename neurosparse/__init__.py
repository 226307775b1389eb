"""neurosparse: spiking and neuromorphic simulation that works only where there are events."""

from __future__ import annotations

import os
import sys

# Threads. Numba picks its threading layer itself (TBB, else OpenMP, else workqueue):
# TBB and OpenMP run parallel kernels from several Python threads at once, the
# workqueue layer aborts the process when two threads launch one, so the package no
# longer forces it; NUMBA_THREADING_LAYER=workqueue opts in (docs/conventions.md).
# OpenMP workers spin after each parallel region unless OMP_WAIT_POLICY=PASSIVE, and on
# few cores the spinning starves torch's threads (benchmarks/results/sdr.md: the next
# torch op ~15x slower on 2 cores). libgomp, shared with torch, reads the policy once
# when it loads, so it is set only if torch is not loaded yet and the user left it unset.
if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

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
