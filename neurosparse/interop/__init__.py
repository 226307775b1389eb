"""Models in and out: snnTorch and Norse models to neurosparse, NIR graphs both ways."""

from .nir import from_nir, to_nir
from .norse import from_norse
from .snntorch import from_snntorch

__all__ = ["from_snntorch", "from_norse", "to_nir", "from_nir"]
