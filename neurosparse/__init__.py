"""neurosparse: spiking and neuromorphic simulation that works only where there are events."""

from __future__ import annotations

from . import errors

__version__ = "0.1.0"

__all__ = ["errors", "__version__"]
