"""neurosparse: spiking and neuromorphic simulation that works only where there are events."""

from __future__ import annotations

from . import data, energy, errors, interop
from .neurons import ALIF, IF, LIF, CubaLIF, NeuronState, SpikingNeuron, surrogate
from .sequential import Sequential

__version__ = "0.1.0"

__all__ = [
    "ALIF",
    "IF",
    "LIF",
    "CubaLIF",
    "NeuronState",
    "Sequential",
    "SpikingNeuron",
    "data",
    "energy",
    "errors",
    "interop",
    "surrogate",
    "__version__",
]
