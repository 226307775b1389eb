"""Spiking neurons: LIF, IF, ALIF, current-based LIF; surrogate gradients."""

from . import functional, surrogate
from .alif import ALIF
from .base import SpikingNeuron
from .cuba import CubaLIF
from .functional import NeuronParams, NeuronSpec, NeuronState
from .lif import IF, LIF

__all__ = [
    "ALIF",
    "CubaLIF",
    "IF",
    "LIF",
    "NeuronParams",
    "NeuronSpec",
    "NeuronState",
    "SpikingNeuron",
    "functional",
    "surrogate",
]
