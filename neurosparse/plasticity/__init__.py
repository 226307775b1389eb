"""Structural plasticity: rewiring of sparse layers during training.

:class:`Rewiring` prunes the weakest synapses of ``SparseEventLinear`` layers and
regrows as many elsewhere (``"random"`` = SET, ``"hebbian"`` = co-activity,
``"gradient"`` = RigL), editing the layers' sparse storage in place; each rewiring
reports its cost as a :class:`RewireCost`.
"""

from .rewiring import RewireCost, Rewiring

__all__ = ["RewireCost", "Rewiring"]
