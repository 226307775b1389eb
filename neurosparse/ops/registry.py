"""Which implementation runs an op: the Numba kernel or the pure-torch reference.

One switch for the whole package, the environment variable ``NEUROSPARSE_KERNELS``:

- ``auto`` (default): the Numba kernel when it can run on the tensor's device, else the
  torch reference with a one-time warning saying why;
- ``numba``: the kernel or a :class:`~neurosparse.errors.KernelUnavailableError`;
- ``torch``: always the reference (useful to debug or to compare).

Ops register the devices their kernels cover; ``neurosparse info`` prints the table.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

from ..errors import KernelUnavailableError, ParameterError

_MODES = ("auto", "numba", "torch")


@dataclass
class _Op:
    name: str
    devices: set[str] = field(default_factory=set)
    warned: set[str] = field(default_factory=set)


_OPS: dict[str, _Op] = {}


def kernel_mode() -> str:
    """Return the value of ``NEUROSPARSE_KERNELS`` (``auto`` when unset)."""
    mode = os.environ.get("NEUROSPARSE_KERNELS", "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ParameterError(
            f"NEUROSPARSE_KERNELS={mode!r} is not one of {_MODES}; unset it or pick one of those"
        )
    return mode


def register(op: str, *devices: str) -> None:
    """Declare that ``op`` has a Numba kernel for each of ``devices`` (``"cpu"``, ``"cuda"``)."""
    _OPS.setdefault(op, _Op(op)).devices.update(devices)


def cuda_kernels_available() -> bool:
    """True when numba-cuda can launch kernels (a GPU, or the simulator in CI)."""
    try:
        from numba import cuda
    except Exception:  # pragma: no cover - numba is a hard dependency
        return False
    try:
        return bool(cuda.is_available())
    except Exception:
        return False


def use_kernel(op: str, device_type: str) -> bool:
    """Decide whether ``op`` on ``device_type`` runs its Numba kernel.

    Raises
    ------
    KernelUnavailableError
        When ``NEUROSPARSE_KERNELS=numba`` but no kernel covers the device.
    """
    mode = kernel_mode()
    if mode == "torch":
        return False
    entry = _OPS.get(op)
    ok = entry is not None and device_type in entry.devices
    if ok and device_type == "cuda":
        ok = cuda_kernels_available()
    if ok:
        return True
    reason = (
        f"op {op!r} has no Numba kernel for device {device_type!r}"
        if not (entry and device_type in entry.devices)
        else "numba.cuda cannot launch kernels here"
    )
    if mode == "numba":
        raise KernelUnavailableError(
            f"NEUROSPARSE_KERNELS=numba but {reason}; set NEUROSPARSE_KERNELS=auto to fall back"
        )
    if entry is not None and device_type not in entry.warned:
        entry.warned.add(device_type)
        warnings.warn(f"{reason}: using the pure-torch reference", RuntimeWarning, stacklevel=3)
    return False


def table() -> list[tuple[str, str, str]]:
    """Rows ``(op, device, implementation)`` of what would run now, for ``neurosparse info``."""
    mode = kernel_mode()
    rows = []
    for name in sorted(_OPS):
        for dev in ("cpu", "cuda"):
            has = dev in _OPS[name].devices and (dev == "cpu" or cuda_kernels_available())
            impl = "numba" if (has and mode != "torch") else "torch"
            rows.append((name, dev, impl))
    return rows
