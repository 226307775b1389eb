"""Structural plasticity: rewiring of sparse layers during training.

:class:`Rewiring` prunes the weakest synapses of ``SparseEventLinear`` layers and
regrows as many elsewhere (``"random"`` = SET, ``"hebbian"`` = co-activity,
``"gradient"`` = RigL, ``"momentum"`` = sparse momentum), editing the layers' sparse
storage in place, at a constant rate or on RigL's cosine schedule
(:func:`cosine_fraction`); each rewiring reports its cost as a :class:`RewireCost`.
The modular group-to-group start of G2GNet is an option of the layer itself
(``SparseEventLinear(..., connectivity="groups", groups=G)``).
"""

from .rewiring import RewireCost, Rewiring, cosine_fraction

__all__ = ["RewireCost", "Rewiring", "cosine_fraction"]
