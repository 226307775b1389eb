"""The sequence-memory step: the Numba kernel ``kernels/sdr_temporal_memory.py``.

Registered so that ``neurosparse info`` lists it. It has no reference *op*: the
pure-Python twin (``sdr/_tm_reference.py``) keeps its own dictionaries instead of the
flat arrays the kernel updates, so it cannot take over a step; the tests hold the two
to each other cell for cell.
"""

from __future__ import annotations

from . import registry

OP = "sdr_temporal_memory"
registry.register(OP, "cpu", reference=False)


_KERNELS = None


def kernels():
    """The kernel module (its layout constants and helpers), imported on first use so
    that importing the package does not load Numba; kept because every step asks."""
    global _KERNELS
    if _KERNELS is None:
        from ..kernels import sdr_temporal_memory as k

        _KERNELS = k
    return _KERNELS


def tm_step(*args) -> int:
    """One step of the kernel (arguments and status of ``kernels.tm_step``)."""
    registry.use_kernel(OP, "cpu")
    return kernels().tm_step(*args)
