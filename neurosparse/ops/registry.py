"""Which implementation runs an op: the Numba kernel or the pure-torch reference.

One switch for the whole package, the environment variable ``NEUROSPARSE_KERNELS``:

- ``auto`` (default): the Numba kernel when it can run the call, else the torch
  reference with a one-time warning saying why;
- ``numba``: strict -- the kernel or a :class:`~neurosparse.errors.KernelUnavailableError`
  naming why it cannot run (no kernel for the device, a dtype or surrogate the kernel
  does not cover, ...); never a silent switch to the reference;
- ``torch``: always the reference (useful to debug or to compare).

Ops register the devices their kernels cover (and, in ``covers``, what else a call
needs to reach the kernel). Every decision goes through :func:`use_kernel`; a call the
kernel cannot run passes the reason as ``unsupported``, and :func:`fallback` is the one
place that turns a reason into an error (strict mode) or a warning plus a record.
``neurosparse info`` prints :func:`table` and the reasons recorded in this process.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass, field

from .._env import getenv
from ..errors import KernelUnavailableError, ParameterError

_MODES = ("auto", "numba", "torch")


@dataclass
class _Op:
    name: str
    devices: set[str] = field(default_factory=set)
    covers: str = ""
    reference: bool = True
    fallbacks: Counter = field(default_factory=Counter)


_OPS: dict[str, _Op] = {}


def kernel_mode() -> str:
    """Return the value of ``NEUROSPARSE_KERNELS`` (``auto`` when unset)."""
    mode = getenv("NEUROSPARSE_KERNELS", "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ParameterError(
            f"NEUROSPARSE_KERNELS={mode!r} is not one of {_MODES}; unset it or pick one of those"
        )
    return mode


def register(op: str, *devices: str, covers: str = "", reference: bool = True) -> None:
    """Declare that ``op`` has a Numba kernel for each of ``devices`` (``"cpu"``, ``"cuda"``).

    ``covers`` says in words which calls the kernel takes when that is not all of them
    (e.g. ``"float32, built-in surrogates"``); ``neurosparse info`` shows it.
    ``reference=False`` marks an op without a step-compatible reference (the sequence
    memory: its pure-Python twin is a separate class): it runs its kernel whatever
    ``NEUROSPARSE_KERNELS`` says, and ``neurosparse info`` says so.
    """
    entry = _OPS.setdefault(op, _Op(op))
    entry.devices.update(devices)
    entry.reference = reference
    if covers:
        entry.covers = covers


_CUDA_OK: list[bool] = []  # read once: a process does not gain or lose its GPU driver


def cuda_kernels_available() -> bool:
    """True when numba-cuda can launch kernels (a GPU, or the simulator in CI)."""
    if not _CUDA_OK:
        try:
            from numba import cuda

            _CUDA_OK.append(bool(cuda.is_available()))
        except Exception:  # no numba-cuda, or no driver
            _CUDA_OK.append(False)
    return _CUDA_OK[0]


def _device_reason(op: str, device_type: str) -> str | None:
    entry = _OPS.get(op)
    if entry is None or device_type not in entry.devices:
        return f"op {op!r} has no Numba kernel for device {device_type!r}"
    if device_type == "cuda" and not cuda_kernels_available():
        return "numba.cuda cannot launch kernels here"
    return None


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _caller_level() -> int:
    """``stacklevel`` of the first frame outside neurosparse and torch (the user's line
    that made the call), counted from the caller of this function."""
    import sys

    import torch

    inside = (_PACKAGE_DIR, os.path.dirname(os.path.abspath(torch.__file__)))
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(inside):
        frame, level = frame.f_back, level + 1
    return level if frame is not None else 2


def fallback(op: str, device_type: str, reason: str) -> bool:
    """The one place a call leaves the kernel for the reference; returns False.

    Under ``NEUROSPARSE_KERNELS=numba`` it raises :class:`KernelUnavailableError`;
    otherwise it counts ``reason`` (see :func:`fallbacks`) and warns once per reason.
    """
    if kernel_mode() == "numba":
        raise KernelUnavailableError(
            f"NEUROSPARSE_KERNELS=numba but {reason} ({op} on {device_type}); "
            "set NEUROSPARSE_KERNELS=auto to use the pure-torch reference"
        )
    entry = _OPS.setdefault(op, _Op(op))
    key = f"{device_type}: {reason}"
    first = key not in entry.fallbacks
    entry.fallbacks[key] += 1
    if first:
        warnings.warn(
            f"{reason} ({op} on {device_type}): using the pure-torch reference",
            RuntimeWarning,
            stacklevel=_caller_level(),
        )
    return False


def use_kernel(op: str, device_type: str, unsupported: str | None = None) -> bool:
    """Decide whether this call of ``op`` on ``device_type`` runs its Numba kernel.

    Parameters
    ----------
    unsupported : str, optional
        Why this particular call cannot run the kernel (its dtype, its surrogate, ...),
        or None when the kernel takes it. Only the device is checked here.

    Raises
    ------
    KernelUnavailableError
        When ``NEUROSPARSE_KERNELS=numba`` but the kernel cannot run the call.
    """
    mode = kernel_mode()
    entry = _OPS.get(op)
    if entry is not None and not entry.reference:
        reason = _device_reason(op, device_type) or unsupported
        if reason is not None:
            raise KernelUnavailableError(f"{reason} ({op} has no reference to fall back to)")
        return True
    if mode == "torch":
        return False
    reason = _device_reason(op, device_type) or unsupported
    if reason is None:
        return True
    return fallback(op, device_type, reason)


def fallbacks() -> dict[str, dict[str, int]]:
    """``{op: {"device: reason": calls}}`` of the reference fallbacks of this process."""
    return {name: dict(e.fallbacks) for name, e in sorted(_OPS.items()) if e.fallbacks}


def table() -> list[tuple[str, str, str]]:
    """Rows ``(op, device, implementation)`` of what would run now, for ``neurosparse info``.

    The implementation names what the registry picks for a call the kernel covers, then
    what the kernel does not cover (those calls run the reference, or raise in strict
    mode), then the fallbacks this process has recorded.
    """
    mode = kernel_mode()
    rows = []
    for name in sorted(_OPS):
        entry = _OPS[name]
        for dev in ("cpu", "cuda"):
            reason = _device_reason(name, dev)
            if not entry.reference:
                impl = ("numba (no reference op: NEUROSPARSE_KERNELS=torch does not apply)"
                        if reason is None else f"error ({reason})")  # fmt: skip
            elif mode == "torch":
                impl = "torch (NEUROSPARSE_KERNELS=torch)"
            elif reason is not None:
                impl = f"torch ({reason})" if mode == "auto" else f"error ({reason})"
            else:
                impl = f"numba for {entry.covers}, else torch" if entry.covers else "numba"
            seen = {k: n for k, n in entry.fallbacks.items() if k.startswith(dev + ":")}
            if seen:
                impl += "; fell back: " + ", ".join(
                    f"{k.split(': ', 1)[1]} x{n}" for k, n in seen.items()
                )
            rows.append((name, dev, impl))
    return rows
