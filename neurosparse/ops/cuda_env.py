"""One way to hand torch CUDA tensors to numba-cuda kernels: ``CudaEnv``.

Every op with a CUDA kernel (event layers, delta layers, LIF sequences) reads torch
memory through these views, with no copies, and launches on torch's current stream, so
kernels and torch ops stay ordered without host synchronisation.

:meth:`CudaEnv.launch` is the cheap way in. A plain ``kernel[grid, block, stream](...)``
call on torch tensors costs 0.26-0.33 ms of host time on the H100 box (numba-cuda
0.30.4, ``benchmarks/profile_lif_gpu.py``), 0.03-0.05 ms through ``cuda.core.launch``:
each tensor becomes a numba device array through ``__cuda_array_interface__``, every
argument is typed again to pick the overload, and a new stream object is made. Once a
kernel has run for one set of argument kinds (dtype, rank, layout of each tensor;
type of each scalar), ``launch`` keeps the compiled overload and writes later calls'
arguments straight from the tensors (pointer, sizes, byte strides: numba's array ABI)
into ``cuda.core.launch``. Anything it does not recognise takes the plain path. (A
direct ``cuLaunchKernel`` through ctypes was tried on an H100 on 2026-12-05 and was
slower: 58.8 vs 48.8 µs per eager ``EventLinear`` call.)
``NEUROSPARSE_CUDA_FAST_LAUNCH=0`` turns the shortcut off; :func:`launcher` says which
path runs.
"""

from __future__ import annotations

import ctypes
import os
import threading
from typing import Any

import numpy as np
import torch

_NP_TO_TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.int32): torch.int32,
                np.dtype(np.int64): torch.int64}  # fmt: skip


_SIM: list[bool] = []  # numba's simulator flag, read once (an import per launch costs µs)


def fast_launch_enabled() -> bool:
    """Whether :meth:`CudaEnv.launch` may bypass numba's dispatcher (real GPU only)."""
    if os.environ.get("NEUROSPARSE_CUDA_FAST_LAUNCH", "1") in ("0", "false", "no"):
        return False
    if not _SIM:
        from numba.cuda import config

        _SIM.append(bool(config.ENABLE_CUDASIM))
    return not _SIM[0]


def _layout(t: torch.Tensor) -> str:
    """numba's layout letter for a tensor's view. It must be part of the key: numba
    indexes "C" and "F" arrays from their shape alone, so an overload compiled for one
    layout reads another's memory wrongly."""
    if t.is_contiguous():
        return "C"
    if t.dim() > 1 and t.permute(*range(t.dim() - 1, -1, -1)).is_contiguous():
        return "F"
    return "A"


def _arg_kind(a: Any) -> tuple:
    if isinstance(a, torch.Tensor):
        # get_device(): an int, no torch.device object made (this runs per argument)
        return ("t", a.dtype, a.dim(), "C" if a.is_contiguous() else _layout(a), a.get_device())
    if getattr(a, "__cuda_ndarray__", False):  # a numba device array: its exact type
        return ("n", a._numba_type_)
    if isinstance(a, (int, float, bool, np.number)):
        return ("s", type(a))
    return ("x", type(a))  # anything else always takes numba's own path


def _array_values(a) -> tuple:
    # numba's array ABI: meminfo, parent, nitems, itemsize, data, shape, strides (bytes)
    if isinstance(a, torch.Tensor):
        item = a.element_size()
        return (0, 0, a.numel(), item, a.data_ptr(), *a.shape, *[s * item for s in a.stride()])
    return (0, 0, a.size, a.dtype.itemsize, a.device_ctypes_pointer.value or 0, *a.shape,
            *a.strides)  # fmt: skip


# cuda.core takes Python ints for 8-byte integers, ctypes objects for the other scalars
_SCALAR_CTORS = {"float32": ctypes.c_float, "float64": ctypes.c_double, "bool": bool,
                 "int8": ctypes.c_int8, "int16": ctypes.c_int16, "int32": ctypes.c_int32,
                 "int64": int, "uint8": ctypes.c_uint8, "uint16": ctypes.c_uint16,
                 "uint32": ctypes.c_uint32, "uint64": int}  # fmt: skip


def _is_array(numba_type) -> bool:
    # by shape of the type, not its class: numba-cuda and numba's own CUDA target have
    # distinct type systems
    return type(numba_type).__name__ == "Array" and hasattr(numba_type, "ndim")


def _param_ctors(numba_type) -> list | None:
    """How each kernel parameter one argument becomes is passed to ``cuda.core`` (numba
    passes each field of an array argument as a parameter of its own), or None for a kind
    this launcher does not pack."""
    if _is_array(numba_type):
        return [int] * (5 + 2 * numba_type.ndim)
    ctor = _SCALAR_CTORS.get(str(numba_type))
    return None if ctor is None else [ctor]


class _Packed:
    """A compiled overload of one kernel and how to pass its parameters."""

    def __init__(self, kernel, ctors: list, device: int | None) -> None:
        self.kernel = kernel  # cuda.core's kernel object
        # per argument: None for an array (its fields are Python ints already, passed as
        # they are), else the ctypes constructor of the scalar
        self.ctors = ctors
        self.device = device  # CUDA device of the tensor arguments (None: numba's current)

    def params(self, args) -> list:
        out: list = []
        for ctor, a in zip(self.ctors, args):
            if ctor is None:
                out += _array_values(a)
            else:
                out.append(ctor(a))
        return out


_thread = threading.local()


def _ensure_context(device: int | None) -> None:
    # numba-cuda makes its context current on a thread the first time it launches there;
    # the fast path must too: autograd runs backward on its own thread, where a kernel
    # first launched from the main thread would otherwise find no context. (One device
    # per thread is assumed, as numba-cuda assumes it.)
    done = getattr(_thread, "contexts", None)
    if done is None:
        done = _thread.contexts = set()
    if device not in done:
        from numba.cuda.cudadrv import devices

        devices.get_context(device)
        done.add(device)


def _compile_packed(dispatcher, views, device: int | None) -> _Packed | None:
    """The overload the plain launch of ``views`` used, with how to pack its arguments."""
    try:
        argtypes = tuple(dispatcher.typeof_pyval(v) for v in views)
        kern = dispatcher.overloads.get(argtypes)
        if kern is None or kern.debug or kern.extensions or getattr(kern, "cooperative", False):
            return None
        ctors = [_param_ctors(t) for t in kern.argument_types]
        if any(c is None for c in ctors):
            return None
        per_arg = [None if _is_array(t) else c[0] for t, c in zip(kern.argument_types, ctors)]
        return _Packed(kern._codelibrary.get_cufunc().kernel, per_arg, device)
    except Exception:  # an unfamiliar numba-cuda: keep the plain path
        return None


_packed: dict[tuple, _Packed | None] = {}  # (kernel, argument kinds) -> overload


def launch(kernel, grid, block, stream, *args: Any) -> None:
    """``kernel[grid, block, stream](*args)``; ``args`` may mix torch CUDA tensors, numba
    device arrays and scalars. The first call for a combination of argument kinds goes
    through numba (which compiles if needed); later ones skip numba's per-call work
    (module docstring). ``kernels.launch`` routes the torch-free launchers here.
    """
    if not fast_launch_enabled():
        kernel[grid, block, stream](*[_view(a) if isinstance(a, torch.Tensor) else a
                                      for a in args])  # fmt: skip
        return
    key = (kernel, *map(_arg_kind, args))
    packed = _packed.get(key, False)
    if packed:
        _fast(packed, grid, block, stream, args)
        return
    views = [_view(a) if isinstance(a, torch.Tensor) else a for a in args]
    kernel[grid, block, stream](*views)
    if packed is False:  # first time for this key
        usable = not any(k[0] == "x" for k in key[1:])
        device = next((a.device.index for a in args if isinstance(a, torch.Tensor)), None)
        _packed[key] = _compile_packed(kernel, views, device) if usable else None


def _view(t: torch.Tensor):
    from numba import cuda

    # sync=False: by default numba synchronises the stream a torch tensor advertises
    # on every import (measured ~0.9 ms per event-Linear call on an H200, ~10
    # imports a call). Every kernel here runs on torch's current stream, which
    # already orders it after the work that produced the tensor.
    return cuda.as_cuda_array(t.detach(), sync=False)


_core_streams: dict[Any, Any] = {}  # numba stream -> cuda.core stream
_CORE: list = []  # (LaunchConfig, launch) of cuda.core, imported on first use
_configs: dict[tuple, Any] = {}


def _fast(packed: _Packed, grid, block, stream, args) -> None:
    if not _CORE:
        from cuda.core import LaunchConfig
        from cuda.core import launch as core_launch

        _CORE.extend((LaunchConfig, core_launch))
    LaunchConfig, core_launch = _CORE
    _ensure_context(packed.device)
    core = _core_streams.get(stream)
    if core is None:
        from numba.cuda.cudadrv import driver

        core = driver._to_core_stream(stream)
        if len(_core_streams) < 64:  # CudaEnv keeps one numba stream per torch stream
            _core_streams[stream] = core
    config = _configs.get((grid, block))
    if config is None:
        config = _configs[grid, block] = LaunchConfig(grid=grid, block=block, shmem_size=0)
    core_launch(core, config, packed.kernel, *packed.params(args))


def launcher() -> str:
    """Which launch path :func:`launch` takes after a kernel's first call."""
    return "cuda.core" if fast_launch_enabled() else "numba (NEUROSPARSE_CUDA_FAST_LAUNCH=0)"


class CudaEnv:
    """Numba views of torch CUDA memory, launched on torch's current stream."""

    _streams: dict[int, Any] = {}  # numba handles of torch streams (each costs ~17 µs)

    def __init__(self, device: torch.device) -> None:
        from numba import cuda

        self.cuda = cuda
        self.device = device
        index = device.index if device.index is not None else torch.cuda.current_device()
        # the raw pointer: a Stream object costs a few µs of host time per call
        ptr = torch._C._cuda_getCurrentRawStream(index)
        self.stream = self._streams.get(ptr)
        if self.stream is None:
            self.stream = self._streams[ptr] = cuda.external_stream(ptr)

    def view(self, t: torch.Tensor):
        return _view(t)

    def arg(self, t: torch.Tensor) -> torch.Tensor:
        """A tensor as a kernel argument: the tensor itself (:func:`launch` packs torch
        tensors without making numba views; the simulator tests swap this for a view)."""
        return t

    def alloc(self, shape: tuple[int, ...], dtype, zero: bool):
        make = torch.zeros if zero else torch.empty
        return self.view(make(shape, dtype=_NP_TO_TORCH[np.dtype(dtype)], device=self.device))

    def tensor(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, Any]:
        """A new float32 torch tensor and its numba view."""
        t = torch.empty(shape, dtype=torch.float32, device=self.device)
        return t, self.view(t)

    def launch(self, kernel, blocks, threads, *args: Any) -> None:
        """:func:`launch` on torch's current stream."""
        launch(kernel, blocks, threads, self.stream, *args)


def _install() -> None:
    from ..kernels import _launch

    _launch.set_launcher(launch)


_install()
