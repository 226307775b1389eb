"""One way to hand torch CUDA tensors to numba-cuda kernels: ``CudaEnv``.

Every op with a CUDA kernel (event layers, delta layers, LIF sequences) reads torch
memory through these views, with no copies, and launches on torch's current stream, so
kernels and torch ops stay ordered without host synchronisation.

:meth:`CudaEnv.launch` is the cheap way in. A plain ``kernel[grid, block, stream](...)``
call on torch tensors costs 0.26-0.33 ms of host time on the H100 box (numba-cuda
0.30.4, ``benchmarks/profile_lif_gpu.py``), 0.03-0.05 ms through ``launch``:
each tensor becomes a numba device array through ``__cuda_array_interface__``, every
argument is typed again to pick the overload, and a new stream object is made. Once a
kernel has run for one set of argument kinds (dtype, rank, contiguity of each tensor;
type of each scalar), ``launch`` keeps the compiled overload and packs later calls'
arguments straight from the tensors (pointer, sizes, byte strides: numba's array ABI)
into ``cuda.core.launch``. Anything it does not recognise takes the plain path.
``NEUROSPARSE_CUDA_FAST_LAUNCH=0`` turns the shortcut off.
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


def _arg_kind(a: Any) -> tuple:
    if isinstance(a, torch.Tensor):
        # get_device(): an int, no torch.device object made (this runs per argument)
        return ("t", a.dtype, a.dim(), a.is_contiguous(), a.get_device())
    if getattr(a, "__cuda_ndarray__", False):  # a numba device array: its exact type
        return ("n", a._numba_type_)
    if isinstance(a, (int, float, bool, np.number)):
        return ("s", type(a))
    return ("x", type(a))  # anything else always takes numba's own path


class _Packed:
    """A compiled overload of one kernel and how to pack each of its arguments."""

    def __init__(self, kernel_obj, packers, device: int | None) -> None:
        self.kernel = kernel_obj
        self.packers = packers
        self.device = device  # CUDA device of the tensor arguments (None: numba's current)


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


def _pack_array(a) -> list:
    # numba's array ABI: meminfo, parent, nitems, itemsize, data, shape, strides (bytes)
    if isinstance(a, torch.Tensor):
        item = a.element_size()
        return [0, 0, a.numel(), item, a.data_ptr(), *a.shape, *[s * item for s in a.stride()]]
    return [0, 0, a.size, a.dtype.itemsize, a.device_ctypes_pointer.value or 0, *a.shape,
            *a.strides]  # fmt: skip


def _packer(numba_type):
    """A function ``value -> list of launch parameters`` for one argument, or None."""
    from numba.cuda import types

    if isinstance(numba_type, types.Array):
        return _pack_array
    if numba_type == types.float32:
        return lambda v: [ctypes.c_float(v)]
    if numba_type == types.float64:
        return lambda v: [ctypes.c_double(v)]
    if isinstance(numba_type, types.Integer):
        ctype = getattr(ctypes, f"c_{numba_type}")
        return lambda v: [ctype(v)]
    if numba_type == types.boolean:
        return lambda v: [bool(v)]
    return None


def _compile_packed(dispatcher, views, device: int | None) -> _Packed | None:
    """The overload the plain launch of ``views`` used, with its argument packers."""
    try:
        argtypes = tuple(dispatcher.typeof_pyval(v) for v in views)
        kern = dispatcher.overloads.get(argtypes)
        if kern is None or kern.debug or kern.extensions or getattr(kern, "cooperative", False):
            return None
        packers = [_packer(t) for t in kern.argument_types]
        if any(p is None for p in packers):
            return None
        return _Packed(kern._codelibrary.get_cufunc().kernel, packers, device)
    except Exception:  # an unfamiliar numba-cuda: keep the plain path
        return None


_packed: dict[tuple, _Packed | None] = {}  # (kernel, argument kinds) -> overload
_core_streams: dict[Any, Any] = {}  # numba stream -> cuda.core stream
_configs: dict[tuple, Any] = {}


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


_CORE: list = []  # (LaunchConfig, launch) of cuda.core, imported on first use


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
    params: list = []
    for pack, a in zip(packed.packers, args):
        params += pack(a)
    core_launch(core, config, packed.kernel, *params)


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
