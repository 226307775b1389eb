"""One way to hand torch CUDA tensors to numba-cuda kernels: ``CudaEnv``.

Every op with a CUDA kernel (event layers, delta layers, LIF sequences) reads torch
memory through these views, with no copies, and launches on torch's current stream, so
kernels and torch ops stay ordered without host synchronisation.

:meth:`CudaEnv.launch` is the cheap way in. A plain ``kernel[grid, block, stream](...)``
call costs about 97 µs of host time for a kernel of eight arrays (H200, numba-cuda
0.30.4; RESULTS.md, "GPU launch host time"): each tensor becomes a numba device array
through ``__cuda_array_interface__``, every argument is typed again to pick the overload,
and a new stream object is made. Once a kernel has run for one set of argument kinds
(dtype, rank, layout of each tensor; type of each scalar), ``launch`` keeps the compiled
overload and writes later calls' arguments straight from the tensors (pointer, sizes,
byte strides: numba's array ABI) into ``cuda.core.launch`` (38.8 µs for that kernel).
The ``driver`` path starts them with the driver's ``cuLaunchKernel`` (through
cuda.bindings) on a parameter block it keeps per thread: numba's array ABI (pointer,
sizes, byte strides) is written into the block only for the arguments whose tensor
changed since that thread's last launch of the overload, and the driver copies the
values at launch, so the block can be rewritten at once. The probe measured 9.0 µs per
such launch against 38.8 µs for packing every argument into ``cuda.core.launch``.
Anything it does not recognise takes numba's path.

``NEUROSPARSE_CUDA_FAST_LAUNCH`` picks the path: ``1`` (default) takes the ``driver``
path (on H100s: the same bits as numba's launch in every test of ``tests/test_gpu.py``,
and a LIF step 0.87x the host time through ``cuda.core``, paired median: RESULTS.md,
"GPU streaming through GraphStream"), or ``cuda.core`` for a kernel without a driver handle
(no cuda.bindings); ``core`` packs every call's arguments into ``cuda.core.launch``;
``0`` uses numba's own launch every time. :func:`launcher` says which path runs.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import numpy as np
import torch

from .._env import getenv

_NP_TO_TORCH = {np.dtype(np.float32): torch.float32, np.dtype(np.int32): torch.int32,
                np.dtype(np.int64): torch.int64}  # fmt: skip


_SIM: list[bool] = []  # numba's simulator flag, read once (an import per launch costs µs)


def fast_launch_mode() -> str:
    """``"core"``, ``"driver"`` or ``"off"`` (module docstring; ``"off"`` in the simulator)."""
    value = getenv("NEUROSPARSE_CUDA_FAST_LAUNCH", "1")
    if value in ("0", "false", "no"):
        return "off"
    if not _SIM:
        from numba.cuda import config

        _SIM.append(bool(config.ENABLE_CUDASIM))
    if _SIM[0]:
        return "off"
    return "core" if value == "core" else "driver"


def fast_launch_enabled() -> bool:
    """Whether :meth:`CudaEnv.launch` may bypass numba's dispatcher (real GPU only)."""
    return fast_launch_mode() != "off"


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
        # the ranks a launch passes most (a LIF step: 2-D traces, 0-d parameters) without
        # the generic unpacking, which costs 0.5-0.7 µs more per tensor (this runs for
        # every array argument of every launch)
        n = a.dim()
        if n == 2:
            m0, m1 = a.shape
            s0, s1 = a.stride()
            return (0, 0, m0 * m1, item, a.data_ptr(), m0, m1, s0 * item, s1 * item)
        if n == 0:
            return (0, 0, 1, item, a.data_ptr())
        return (0, 0, a.numel(), item, a.data_ptr(), *a.shape, *[s * item for s in a.stride()])
    return (0, 0, a.size, a.dtype.itemsize, a.device_ctypes_pointer.value or 0, *a.shape,
            *a.strides)  # fmt: skip


# ctypes storage of each scalar kernel parameter, by numba type name (arrays are int64
# fields: numba passes each field of an array argument as a parameter of its own)
_SCALAR_CTYPES = {"float32": ctypes.c_float, "float64": ctypes.c_double, "bool": ctypes.c_bool,
                  "int8": ctypes.c_int8, "int16": ctypes.c_int16, "int32": ctypes.c_int32,
                  "int64": ctypes.c_int64, "uint8": ctypes.c_uint8, "uint16": ctypes.c_uint16,
                  "uint32": ctypes.c_uint32, "uint64": ctypes.c_uint64}  # fmt: skip


def _is_array(numba_type) -> bool:
    # by shape of the type, not its class: numba-cuda and numba's own CUDA target have
    # distinct type systems
    return type(numba_type).__name__ == "Array" and hasattr(numba_type, "ndim")


def _param_layout(numba_type) -> int | type | None:
    """How one argument is passed: the rank of an array (``5 + 2 * ndim`` int64 fields),
    the ctypes type of a scalar, or None for a kind this launcher does not pack."""
    if _is_array(numba_type):
        return int(numba_type.ndim)
    return _SCALAR_CTYPES.get(str(numba_type))


def _signature(a) -> tuple:
    """What an array argument's parameters are made of; equal signatures, equal fields
    and equal kinds (dtype, rank and layout follow from it; a pointer names its device)."""
    if isinstance(a, torch.Tensor):
        return (a.data_ptr(), a.dtype, a.shape, a.stride())
    return (a.device_ctypes_pointer.value, a.dtype, a.shape, a.strides)


class _Slots:
    """One thread's parameter block for one overload: the values and the array of
    pointers to them that ``cuLaunchKernel`` reads.

    ``layout``: per argument, what :func:`_param_layout` says; ``kinds``: per argument,
    what :func:`_arg_kind` said when the overload was kept.
    """

    def __init__(self, layout: list, kinds: tuple) -> None:
        self.layout, self.kinds = layout, kinds
        n_fields = sum(5 + 2 * x for x in layout if type(x) is int)
        self.fields = (ctypes.c_int64 * max(n_fields, 1))()
        base = ctypes.addressof(self.fields)
        addresses: list[int] = []
        # per argument: the offset of its fields (an array) or its ctypes value (a scalar)
        self.plan: list = []
        offset = 0
        for x in layout:
            if type(x) is int:
                n = 5 + 2 * x
                addresses += [base + 8 * (offset + j) for j in range(n)]
                self.plan.append(offset)
                offset += n
            else:
                value = x()
                addresses.append(ctypes.addressof(value))
                self.plan.append(value)
        self.pointers = (ctypes.c_void_p * len(addresses))(*addresses)
        self.address = ctypes.addressof(self.pointers)
        self.seen: list = [None] * len(layout)

    def fill(self, args) -> bool:
        """Write ``args`` into the block; False (and the block unusable until a later
        fill succeeds) where an argument is not of the overload's kind."""
        if len(args) != len(self.plan):
            return False
        seen, kinds, fields = self.seen, self.kinds, self.fields
        for i, (where, a) in enumerate(zip(self.plan, args)):
            if type(where) is int:
                if not isinstance(a, torch.Tensor) and not getattr(a, "__cuda_ndarray__", False):
                    return False
                sig = _signature(a)
                if sig == seen[i]:
                    continue
                if _arg_kind(a) != kinds[i]:
                    seen[i] = None
                    return False
                values = _array_values(a)
                fields[where:where + len(values)] = values
                seen[i] = sig
            else:
                if type(a) is not kinds[i][1]:
                    return False
                where.value = a
        return True

    def values(self) -> list:
        """The parameters as the kernel will read them (for tests)."""
        out: list = []
        for where, x in zip(self.plan, self.layout):
            out += list(self.fields[where:where + 5 + 2 * x]) if type(x) is int else [where.value]
        return out


# cuda.core takes Python ints for 8-byte integers and bool for bool, ctypes objects for
# the other scalars
_CORE_SCALARS = {ctypes.c_int64: int, ctypes.c_uint64: int, ctypes.c_bool: bool}


class _Packed:
    """A compiled overload of one kernel: its ``cuda.core`` kernel, its driver handle and
    per-thread blocks (the ``driver`` path)."""

    def __init__(self, function, layout: list, kinds: tuple, device: int | None,
                 kernel=None) -> None:  # fmt: skip
        self.function = function  # a cuda.bindings CUfunction (None in CPU tests)
        self.kernel = kernel  # cuda.core's kernel object
        self.layout = layout
        self.kinds = kinds
        self.device = device  # CUDA device of the tensor arguments (None: numba's current)
        self._local = threading.local()
        # per argument, for cuda.core: None for an array (its fields are Python ints), else
        # the constructor of the scalar
        self.ctors = [None if type(x) is int else _CORE_SCALARS.get(x, x) for x in layout]

    def params(self, args) -> list:
        """The parameters of one call as ``cuda.core.launch`` takes them."""
        out: list = []
        for ctor, a in zip(self.ctors, args):
            if ctor is None:
                out += _array_values(a)
            else:
                out.append(ctor(a))
        return out

    def slots(self) -> _Slots:
        """This thread's parameter block (autograd runs the backward on its own thread:
        one shared block could be rewritten between another thread's fill and launch)."""
        s = getattr(self._local, "slots", None)
        if s is None:
            if self.function is not None:
                _ensure_context(self.device)
            s = self._local.slots = _Slots(self.layout, self.kinds)
        return s


_thread = threading.local()


def _ensure_context(device: int | None) -> None:
    # numba-cuda makes its context current on a thread the first time it launches there;
    # the fast paths must too: autograd runs backward on its own thread, where a kernel
    # first launched from the main thread would otherwise find no context. (One device
    # per thread is assumed, as numba-cuda assumes it.)
    done = getattr(_thread, "contexts", None)
    if done is None:
        done = _thread.contexts = set()
    if device not in done:
        from numba.cuda.cudadrv import devices

        devices.get_context(device)
        done.add(device)


_DRIVER: list = []  # (cuLaunchKernel, CUfunction, CUstream, CUDA_SUCCESS), imported once


def _driver() -> list:
    if not _DRIVER:
        from cuda.bindings import driver

        _DRIVER.extend((driver.cuLaunchKernel, driver.CUfunction, driver.CUstream,
                        driver.CUresult.CUDA_SUCCESS))  # fmt: skip
    return _DRIVER


def _compile_packed(dispatcher, views, kinds: tuple, device: int | None) -> _Packed | None:
    """The overload the plain launch of ``views`` used, with how to pass its arguments."""
    try:
        argtypes = tuple(dispatcher.typeof_pyval(v) for v in views)
        kern = dispatcher.overloads.get(argtypes)
        if kern is None or kern.debug or kern.extensions or getattr(kern, "cooperative", False):
            return None
        layout = [_param_layout(t) for t in kern.argument_types]
        if any(x is None for x in layout):
            return None
        # the library kernel handle (CUkernel): cuLaunchKernel takes it in place of a
        # CUfunction and resolves it in the current context, so one handle serves every
        # device
        core_kernel = kern._codelibrary.get_cufunc().kernel
    except Exception:  # an unfamiliar numba-cuda: keep the plain path
        return None
    try:
        function = _driver()[1](int(core_kernel.handle))
    except Exception:  # no cuda.bindings driver: the driver path stays off for it
        function = None
    return _Packed(function, layout, kinds, device, core_kernel)


_packed: dict[tuple, _Packed | None] = {}  # (kernel, argument kinds) -> overload


def launch(kernel, grid, block, stream, *args: Any) -> None:
    """``kernel[grid, block, stream](*args)``; ``args`` may mix torch CUDA tensors, numba
    device arrays and scalars. The first call for a combination of argument kinds goes
    through numba (which compiles if needed); later ones skip numba's per-call work
    (module docstring). ``kernels.launch`` routes the torch-free launchers here.
    """
    mode = fast_launch_mode()
    if mode == "off":
        kernel[grid, block, stream](*[_view(a) if isinstance(a, torch.Tensor) else a
                                      for a in args])  # fmt: skip
        return
    if mode == "driver":
        # this thread's last overload of the kernel: a step loop calls each kernel with
        # the same kinds every time, and its fill compares signatures instead of a key
        last = getattr(_thread, "last", None)
        if last is None:
            last = _thread.last = {}
        packed = last.get(kernel)
        if packed is not None and _fast(packed, grid, block, stream, args):
            return
    kinds = tuple(map(_arg_kind, args))
    packed = _packed.get((kernel, *kinds), False)
    if packed:
        # cuda.core also where the kernel has no driver handle (no cuda.bindings)
        if mode == "core" or packed.function is None:
            _fast_core(packed, grid, block, stream, args)
            return
        if _fast(packed, grid, block, stream, args):
            last[kernel] = packed
            return
    views = [_view(a) if isinstance(a, torch.Tensor) else a for a in args]
    kernel[grid, block, stream](*views)
    if packed is False:  # first time for this key
        usable = not any(k[0] == "x" for k in kinds)
        device = next((a.device.index for a in args if isinstance(a, torch.Tensor)), None)
        _packed[(kernel, *kinds)] = (_compile_packed(kernel, views, kinds, device) if usable
                                     else None)  # fmt: skip


def _view(t: torch.Tensor):
    from numba import cuda

    # sync=False: by default numba synchronises the stream a torch tensor advertises
    # on every import (measured ~0.9 ms per event-Linear call on an H200, ~10
    # imports a call). Every kernel here runs on torch's current stream, which
    # already orders it after the work that produced the tensor.
    return cuda.as_cuda_array(t.detach(), sync=False)


_streams: dict[Any, Any] = {}  # numba stream -> the driver's CUstream
_dims: dict[tuple, tuple] = {}  # (grid, block) -> the six launch dimensions


def _launch_dims(grid, block) -> tuple:
    dims = _dims.get((grid, block))
    if dims is None:
        g = (grid, 1, 1) if isinstance(grid, int) else (*grid, 1, 1)[:3]
        b = (block, 1, 1) if isinstance(block, int) else (*block, 1, 1)[:3]
        dims = (*map(int, g), *map(int, b))
        if len(_dims) < 4096:  # grids follow problem sizes: keep the cache bounded
            _dims[grid, block] = dims
    return dims


_core_streams: dict[Any, Any] = {}  # numba stream -> cuda.core stream
_CORE: list = []  # (LaunchConfig, launch) of cuda.core, imported on first use
_configs: dict[tuple, Any] = {}


def _fast_core(packed: _Packed, grid, block, stream, args) -> None:
    """Launch through ``cuda.core``, every argument packed anew."""
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


def _fast(packed: _Packed, grid, block, stream, args) -> bool:
    """Launch through the driver; False (nothing launched) where ``args`` do not fit."""
    slots = packed.slots()
    if not slots.fill(args):
        return False
    cu_launch, _, cu_stream, ok = _driver()
    handle = _streams.get(stream)
    if handle is None:
        raw = stream.handle  # a CUstream (cuda.bindings) or a ctypes pointer
        raw = getattr(raw, "value", raw)
        handle = cu_stream(int(raw) if raw else 0)
        if len(_streams) < 64:  # CudaEnv keeps one numba stream per torch stream
            _streams[stream] = handle
    (err,) = cu_launch(packed.function, *_launch_dims(grid, block), 0, handle, slots.address, 0)
    if err != ok:
        raise RuntimeError(f"cuLaunchKernel failed: {err!r}")
    return True


def launcher() -> str:
    """Which launch path :func:`launch` takes after a kernel's first call."""
    mode = fast_launch_mode()
    if mode == "driver":
        return "cuLaunchKernel (cuda.core where cuda.bindings is missing)"
    return ("cuda.core (NEUROSPARSE_CUDA_FAST_LAUNCH=core)" if mode == "core"
            else "numba (NEUROSPARSE_CUDA_FAST_LAUNCH=0)")  # fmt: skip


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
