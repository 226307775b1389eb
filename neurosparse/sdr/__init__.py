"""Sparse distributed representations: SDRs, encoders, matching theory, k-winners,
active dendrites, spatial pooler and sequence (temporal) memory with Hebbian rewiring.

Streams (numpy state, Numba kernels, one CPU core)::

    enc = ns.sdr.ScalarEncoder(size=2048, active=40, min=0, max=100)  # also RDSE, category
    sp = ns.sdr.SpatialPooler(input_size=2048, columns=2048, active=40)
    tm = ns.sdr.SequenceMemory(columns=2048, cells_per_column=32, seed=0)
    for value in stream:
        cols = sp(enc(value), learn=True)
        out = tm.step(cols, learn=True)  # out.active_cells, .predictive_cells, .anomaly

Deep nets (``nn.Module``s, autograd, time-first friendly): :class:`KWinners`,
:class:`KWinners2d`, :class:`DendriticLinear`, :class:`KSparseAutoencoder`. One-shot
associative memory (Sparsey-style): :class:`AssociativeMemory`. Theory (Ahmad & Hawkins
2016): :mod:`neurosparse.sdr.theory`.
"""

from . import theory
from .associative import AssociativeMemory
from .dendrites import DendriticLinear, dendritic_linear
from .encoders import RDSE, CategoryEncoder, ScalarEncoder
from .ksparse_autoencoder import KSparseAutoencoder
from .kwinners import KWinners, KWinners2d, kwinners, kwinners2d
from .sdr import (
    SDR,
    add_noise,
    as_sdr,
    capacity,
    dropout,
    expected_overlap,
    intersection,
    match,
    overlap,
    random_sdr,
    union,
)
from .sequence_memory import SequenceMemory, TMOutput
from .spatial_pooler import SpatialPooler

__all__ = [
    "RDSE",
    "SDR",
    "AssociativeMemory",
    "CategoryEncoder",
    "DendriticLinear",
    "KSparseAutoencoder",
    "KWinners",
    "KWinners2d",
    "ScalarEncoder",
    "SequenceMemory",
    "SpatialPooler",
    "TMOutput",
    "add_noise",
    "as_sdr",
    "capacity",
    "dendritic_linear",
    "dropout",
    "expected_overlap",
    "intersection",
    "kwinners",
    "kwinners2d",
    "match",
    "overlap",
    "random_sdr",
    "theory",
    "union",
]
