"""A kept eager CUDA call of an ``EventLinear``: one call's checks, done once.

An eager ``EventLinear(mode="event")`` call at batch 1 cost 65-77 µs of host time on an
H100's host, of which the kernel launch is ~15 µs and the output's allocation ~5
(RESULTS.md, "GPU tests and eager host time"): the rest is the general path's checks and
dispatch -- argument types, dtypes, devices and layouts, the kernel registry, the
switches in the environment, the counter's device tally, the autograd op, the launch
arguments -- redone on every call, although a streaming loop makes the same call every
step. After a call has passed them and taken the CUDA event kernels with nothing to
differentiate, the layer keeps a :class:`LinearPlan` of it: the input's shape, dtype,
device and layout; the weight and bias objects and their storage (pointer, dtype, shape,
strides); the mode; the switches that chose the kernels; the current stream; the
counter's tally; and the kernels' arguments (:class:`~neurosparse.ops.event_linear.
CudaLinearLaunch`). A later call that matches every one of them allocates the output,
adds its counts and launches; any difference -- a new shape, a replaced or re-pointed
weight (``.data =``, ``.to()``), a parametrization, something to differentiate, another
stream, a changed switch, reset counters -- takes the general path, which raises its
errors and keeps a new plan. In-place writes to the weight need nothing: the kernels read
it in place. The weight and bias are read as the general path reads them
(``layer.weight``), so a subclass or hook that supplies them its own way is followed.

Measured on an H100 (2026-12-07, RESULTS.md "Kept eager calls and the fused gather"):
a kept call's host time is 33.8 µs against the general path's 76.8 (``F.linear``: 15.5),
and ``tests/test_gpu.py`` holds its outputs and counts to the general path's.
"""

from __future__ import annotations

import torch

from .._checks import finite_checks_on_gpu
from .._env import getenv
from ..ops import event_linear as ops
from .dispatch import add_host_counts

KEEP_CALLS = True  # False: every call takes the general path (benchmarks compare the two)


def _needs_grad(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> bool:
    # apply_event_op's rule: autograd only where something is differentiated
    return torch.is_grad_enabled() and (
        x.requires_grad or w.requires_grad or (b is not None and b.requires_grad)
    )


def _storage(t: torch.Tensor | None) -> tuple | None:
    return None if t is None else (t.data_ptr(), t.dtype, t.shape, t.stride())


def _switches(kc) -> tuple:
    """What else picked the kernels: the kernel switch, the GPU finite check, and the
    gather design constants (benchmarks and tests set them)."""
    return (getenv("NEUROSPARSE_KERNELS"), getenv("NEUROSPARSE_CHECK_FINITE_GPU"),
            kc.SPLIT_ROWS, kc.FUSED, kc.FUSED_FROM, kc.LISTS_FROM, kc.WIDE)  # fmt: skip


def _stream(dev: int) -> int | None:
    # torch's current stream (raw pointer); None for the simulator tests' CPU tensors
    return torch._C._cuda_getCurrentRawStream(dev) if dev >= 0 else None


class LinearPlan:
    """The kept call (module docstring); :meth:`run` replays it or returns None."""

    __slots__ = ("call", "shape", "dtype", "dev", "weight", "bias", "storage", "switches",
                 "stream", "held", "rows", "n_in", "out_shape", "inputs", "dense")  # fmt: skip

    def __init__(self, x: torch.Tensor, w: torch.Tensor, b, held) -> None:
        n_out, n_in = w.shape
        self.shape, self.dtype, self.dev = x.shape, x.dtype, x.get_device()
        self.weight, self.bias, self.held = w, b, held
        self.storage = (_storage(w), _storage(b))
        self.rows, self.n_in = x.numel() // n_in, n_in
        self.out_shape = None if x.dim() == 2 else (*x.shape[:-1], n_out)
        self.inputs, self.dense = self.rows * n_in, self.rows * n_in * n_out
        self.call = ops.CudaLinearLaunch(x.device, self.rows, w, b, held[1], x.dtype)
        self.switches = _switches(self.call.kc)
        self.stream = _stream(self.dev)

    def run(self, layer, x: object) -> torch.Tensor | None:
        """The output of ``layer(x)`` if the call matches the plan, else None (nothing
        done: the caller takes the general path)."""
        if (not KEEP_CALLS or type(x) is not torch.Tensor or x.shape != self.shape
                or x.dtype is not self.dtype or x.get_device() != self.dev
                or not x.is_contiguous()):  # fmt: skip
            return None
        w, b = layer.weight, layer.bias  # as the general path reads them
        if w is not self.weight or b is not self.bias or layer.mode != "event":
            return None
        if _needs_grad(x, w, b) or (_storage(w), _storage(b)) != self.storage:
            return None
        if _switches(self.call.kc) != self.switches:
            return None
        if _stream(self.dev) != self.stream:
            return None
        if self.dev < 0 and ops.kernel_device(x) != "cuda":  # the simulator tests' routing
            return None
        d = layer.__dict__
        c, held = d.get("_op_counter"), d.get("_ns_tally")
        if held is not self.held or c is None or c.get("events_in") is not held[2]:
            return None  # counters reset or moved: device_tally makes new live views
        add_host_counts(c, self.inputs, self.dense)
        y = self.call.launch(x if self.out_shape is None else x.view(self.rows, self.n_in))
        return y if self.out_shape is None else y.view(self.out_shape)


def make_plan(layer, x: object, path: str) -> LinearPlan | None:
    """The plan of a call of ``layer`` on ``x`` that just took ``path`` on the general
    path, or None where such a call is not kept (not the CUDA event kernels, something
    to differentiate, a non-contiguous input, the GPU finite check switched on)."""
    if not KEEP_CALLS or path != "event" or type(x) is not torch.Tensor or layer.mode != "event":
        return None
    if ops.kernel_device(x) != "cuda":  # before backend(): it records CPU fallbacks
        return None
    w, b = layer.weight, layer.bias
    if _needs_grad(x, w, b) or not x.is_contiguous() or x.dim() not in (2, 3):
        return None
    if ops.backend(x) != "cuda" or finite_checks_on_gpu():
        return None  # (the finite check reads the input back: the general path does it)
    held = layer.__dict__.get("_ns_tally")
    if held is None or held[1].get_device() != x.get_device():
        return None
    return LinearPlan(x, w, b, held)
