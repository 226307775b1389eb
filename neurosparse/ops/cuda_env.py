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
from typing import Any

import numpy as np
import torch

_NP_TO_TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.int32): torch.int32,
                np.dtype(np.int64): torch.int64}  # fmt: skip


def fast_launch_enabled() -> bool:
    """Whether :meth:`CudaEnv.launch` may bypass numba's dispatcher (real GPU only)."""
    if os.environ.get("NEUROSPARSE_CUDA_FAST_LAUNCH", "1") in ("0", "false", "no"):
        return False
    from numba.cuda import config

    return not config.ENABLE_CUDASIM


def _arg_kind(a: Any) -> tuple:
    if isinstance(a, torch.Tensor):
        return ("t", a.dtype, a.dim(), a.is_contiguous(), a.device.index)
    return ("s", type(a))


class _Packed:
    """A compiled overload of one kernel and how to pack each of its arguments."""

    def __init__(self, kernel_obj, packers) -> None:
        self.kernel = kernel_obj
        self.packers = packers


def _packer(numba_type):
    """A function ``value -> list of launch parameters`` for one argument, or None."""
    from numba.cuda import types

    if isinstance(numba_type, types.Array):

        def array(t: torch.Tensor) -> list:
            item = t.element_size()
            # numba's array ABI: meminfo, parent, nitems, itemsize, data, shape, strides
            return [0, 0, t.numel(), item, t.data_ptr(), *t.shape,
                    *(s * item for s in t.stride())]  # fmt: skip

        return array
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


def _compile_packed(dispatcher, views) -> _Packed | None:
    """The overload the plain launch of ``views`` used, with its argument packers."""
    try:
        argtypes = tuple(dispatcher.typeof_pyval(v) for v in views)
        kern = dispatcher.overloads.get(argtypes)
        if kern is None or kern.debug or kern.extensions or getattr(kern, "cooperative", False):
            return None
        packers = [_packer(t) for t in kern.argument_types]
        if any(p is None for p in packers):
            return None
        return _Packed(kern._codelibrary.get_cufunc().kernel, packers)
    except Exception:  # an unfamiliar numba-cuda: keep the plain path
        return None


class CudaEnv:
    """Numba views of torch CUDA memory, launched on torch's current stream."""

    _streams: dict[int, Any] = {}  # numba handles of torch streams (each costs ~17 µs)
    _core_streams: dict[int, Any] = {}  # the same as cuda.core streams (fast launches)
    _packed: dict[tuple, _Packed | None] = {}  # (kernel, argument kinds) -> overload
    _configs: dict[tuple, Any] = {}

    def __init__(self, device: torch.device) -> None:
        from numba import cuda

        self.cuda = cuda
        self.device = device
        self.stream_ptr = ptr = torch.cuda.current_stream(device).cuda_stream
        self.stream = self._streams.get(ptr)
        if self.stream is None:
            self.stream = self._streams[ptr] = cuda.external_stream(ptr)

    def view(self, t: torch.Tensor):
        # sync=False: by default numba synchronises the stream a torch tensor advertises
        # on every import (measured ~0.9 ms per event-Linear call on an H200, ~10
        # imports a call). Every kernel here runs on torch's current stream, which
        # already orders it after the work that produced the tensor.
        return self.cuda.as_cuda_array(t.detach(), sync=False)

    def alloc(self, shape: tuple[int, ...], dtype, zero: bool):
        make = torch.zeros if zero else torch.empty
        return self.view(make(shape, dtype=_NP_TO_TORCH[np.dtype(dtype)], device=self.device))

    def tensor(self, shape: tuple[int, ...]) -> tuple[torch.Tensor, Any]:
        """A new float32 torch tensor and its numba view."""
        t = torch.empty(shape, dtype=torch.float32, device=self.device)
        return t, self.view(t)

    def launch(self, kernel, blocks: int, threads: int, *args: Any) -> None:
        """``kernel[blocks, threads, stream](*args)`` with torch tensors among ``args``.

        The first call for a combination of argument kinds goes through numba (which
        compiles if needed); later ones skip numba's per-call work (module docstring).
        """
        key = (kernel, *map(_arg_kind, args))
        packed = self._packed.get(key, False) if fast_launch_enabled() else None
        if packed:
            self._fast(packed, blocks, threads, args)
            return
        views = [self.view(a) if isinstance(a, torch.Tensor) else a for a in args]
        kernel[blocks, threads, self.stream](*views)
        if packed is False:  # first time for this key
            self._packed[key] = _compile_packed(kernel, views)

    def _fast(self, packed: _Packed, blocks: int, threads: int, args) -> None:
        from cuda.core import LaunchConfig
        from cuda.core import launch as core_launch

        stream = self._core_streams.get(self.stream_ptr)
        if stream is None:
            from numba.cuda.cudadrv import driver

            stream = self._core_streams[self.stream_ptr] = driver._to_core_stream(self.stream)
        config = self._configs.get((blocks, threads))
        if config is None:
            config = self._configs[blocks, threads] = LaunchConfig(grid=blocks, block=threads,
                                                                   shmem_size=0)  # fmt: skip
        params: list = []
        for pack, a in zip(packed.packers, args):
            params += pack(a)
        core_launch(stream, config, packed.kernel, *params)
