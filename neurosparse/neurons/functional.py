"""Pure step functions of the LIF family (the reference of the fused kernels).

Defined in :mod:`neurosparse.ops.lif_reference`, below the modules and beside the op
that falls back on them; importable from here as before.
"""

from __future__ import annotations

from ..ops.lif_reference import (
    RESETS,
    NeuronParams,
    NeuronSpec,
    NeuronState,
    initial_state,
    neuron_sequence,
    neuron_step,
)

__all__ = [
    "RESETS",
    "NeuronParams",
    "NeuronSpec",
    "NeuronState",
    "initial_state",
    "neuron_sequence",
    "neuron_step",
]
