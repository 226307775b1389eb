"""Models in and out: snnTorch, Norse and SpikingJelly models in, NIR graphs both ways."""

from .nir import from_nir, to_nir
from .norse import from_norse
from .snntorch import from_snntorch
from .spikingjelly import from_spikingjelly

__all__ = ["from_snntorch", "from_norse", "from_spikingjelly", "to_nir", "from_nir"]
