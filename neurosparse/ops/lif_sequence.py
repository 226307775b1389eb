"""Sequence mode of the LIF family as one autograd op.

``neuron_sequence_op`` runs the fused Numba kernel -- ``kernels/lif_cpu.py`` for CPU
tensors, ``kernels/lif_cuda.py`` for CUDA tensors (no host copies: the kernel reads
the torch tensors through ``__cuda_array_interface__`` on torch's stream) -- for
float32 inputs, and the reference step loop (``ops/lif_reference.py``) otherwise or
when ``NEUROSPARSE_KERNELS=torch``. Both give the same spikes and gradients.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._shared_tensors import shared_tensor
from ..errors import ParameterError
from ..neurons.surrogate import kernel_id_of
from . import registry
from .cuda_env import fast_launch_enabled
from .lif_reference import (
    NeuronParams,
    NeuronSpec,
    NeuronState,
    initial_state,
    neuron_sequence,
    neuron_step,
)

OP = "lif_sequence"
registry.register(OP, "cpu", "cuda", covers="float32/float16/bfloat16 input, built-in surrogates")

_RESET_CODE = {"subtract": 0, "zero": 1, "none": 2}
# where a single step runs the fused kernel (see ``neuron_step_op``)
STEP_KERNEL_DEVICES = ("cuda",)


def flags_of(spec: NeuronSpec) -> tuple[int, ...]:
    """The compile-time flags of ``kernels.lif_cpu/lif_cuda.get_kernels`` for ``spec``."""
    return (_RESET_CODE[spec.reset], int(spec.reset_delay), int(spec.detach_reset),
            int(spec.synaptic), int(spec.euler), int(spec.adaptive), int(spec.refractory),
            _surrogate_id(spec))  # fmt: skip


def _surrogate_id(spec: NeuronSpec) -> int:
    kid = kernel_id_of(spec.surrogate)
    return -1 if kid is None else kid  # -1: the kernels refuse it (kernels/lif_step.py)


def _unsupported(x: torch.Tensor, spec: NeuronSpec) -> str | None:
    """Why the kernel cannot run this call, or None."""
    if kernel_id_of(spec.surrogate) is None:
        return (f"surrogate {spec.surrogate!r} has no kernel (its grad is not a built-in "
                "one)")  # fmt: skip
    if x.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        return f"the LIF kernels take float32/float16/bfloat16 input, not {x.dtype}"
    return None


def _kernels(spec: NeuronSpec, device: torch.device):
    """``(forward, backward)`` callables on torch tensors for ``spec`` on ``device``, plus,
    on CUDA, the forward that takes the eight parameters as 0-d tensors.

    Each takes the number of neurons (threads) first, then the kernel's arguments.
    Kept per (spec, device): a streaming step calls this once per step, and building the
    closures anew was a measurable part of its host time.
    """
    # eager calls read the cache directly: entering a compiler-disabled function costs a
    # few µs of host time per step
    if not torch.compiler.is_compiling():
        return _lookup(spec, device)
    return _untraced_lookup()(spec, device)


def _lookup(spec: NeuronSpec, device: torch.device):
    key = (spec, device)
    runners = _RUNNERS.get(key)
    if runners is None:
        runners = _RUNNERS[key] = _make_runners(spec, device)
    return runners


def _untraced_lookup():
    """:func:`_lookup` hidden from torch.compile: Numba kernels are opaque to it anyway, and
    tracing into a cached factory of jitted functions only makes Dynamo warn about the
    cache it ignores. Made on first use, under compilation (``torch.compiler.disable``
    imports ``torch._dynamo``, ~1.1 s, which a decorator would add to every import)."""
    if not _UNTRACED:
        _UNTRACED.append(torch.compiler.disable(_lookup))
    return _UNTRACED[0]


_RUNNERS: dict = {}
_UNTRACED: list = []


def _make_runners(spec: NeuronSpec, device: torch.device):
    flags = flags_of(spec)
    if device.type != "cuda":
        from ..kernels import lif_cpu

        def on_cpu(kernel):
            def run(n_threads, *args):
                kernel(*[a.detach().numpy() if isinstance(a, torch.Tensor) else a for a in args])

            return run

        return tuple(on_cpu(k) for k in lif_cpu.get_kernels(*flags))

    from ..kernels import lif_cuda
    from .cuda_env import CudaEnv

    def on_gpu(kernel):
        def run(n_threads, *args):
            blocks = (n_threads + lif_cuda.THREADS - 1) // lif_cuda.THREADS
            CudaEnv(device).launch(kernel, blocks, lif_cuda.THREADS, *args)

        return run

    kernels = (*lif_cuda.get_kernels(*flags), lif_cuda.get_scalar_forward(*flags))
    return tuple(on_gpu(k) for k in kernels)


def _empty(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """An uninitialised float32 buffer for the kernels; on the CPU allocated by NumPy, which asks
    for transparent huge pages (a fresh multi-MB ``torch.empty`` is faulted in 4 KiB at a
    time: ``ops.event_linear.empty_cpu``)."""
    if device.type == "cpu":
        return torch.from_numpy(np.empty(shape, np.float32))
    return torch.empty(shape, dtype=torch.float32, device=device)


def _unused(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """A ``(1, 1)`` placeholder for a trace the neuron's kernel neither writes nor reads
    (compiled out by its flags): one per device and dtype instead of two allocations per
    call (``_shared_tensors.py`` says when one is not kept)."""
    return shared_tensor(("unused trace", device, dtype),
                         lambda: torch.empty((1, 1), dtype=dtype, device=device))


def _forward(x, state0, params, spec: NeuronSpec, out=None):
    """The forward kernel on fresh outputs: ``(z, state, h, th, rm)``. ``params``: the
    ``[8, P]`` block, or (on CUDA, nothing to differentiate) eight 0-d tensors."""
    T, K = x.shape
    dev = x.device
    z = _empty((T, K), dev)
    # the membrane each spike was tested on: all the backward keeps (it recomputes the
    # spikes), so the spikes themselves are freed as soon as the caller drops them
    h = _empty((T, K), dev)
    th = _empty((T, K), dev) if spec.adaptive else _unused(dev, torch.float32)
    # the uint8 trace is read only where the neuron has a refractory period
    rm = (torch.zeros((T, K), dtype=torch.uint8, device=dev) if spec.refractory
          else _unused(dev, torch.uint8))  # fmt: skip
    # ``out``: a caller's [4, K] buffer (step mode's ``out=``, never under autograd); the
    # kernels read a neuron's state0 before they write its state, so it may be state0
    state = _empty((4, K), dev) if out is None else out
    runners = _kernels(spec, x.device)
    if isinstance(params, tuple):
        runners[2](K, x, state0, *params, z, h, th, rm, state)
    else:
        runners[0](K, x, state0, params, z, h, th, rm, state)
    return z, state, h, th, rm


class _LIFSequence(torch.autograd.Function):
    """``x [T, K]``, ``state0 [4, K]`` (v, i, a, c), ``params [8, P]`` -> ``z [T, K]``, state.

    ``P`` is the number of features, or 1 on CUDA when every parameter is a scalar (the
    CUDA kernel reads ``params[:, k % P]``).
    """

    @staticmethod
    def forward(ctx, x, state0, params, spec: NeuronSpec, out=None):  # type: ignore[override]
        z, state, h, th, rm = _forward(x, state0, params, spec, out)
        ctx.save_for_backward(h, th, rm, state0, params)
        ctx.spec = spec
        return z, state

    @staticmethod
    def backward(ctx, gz, gstate):  # type: ignore[override]
        h, th, rm, state0, params = ctx.saved_tensors
        spec: NeuronSpec = ctx.spec
        T, K = h.shape
        n_par = params.shape[1]
        f32 = {"dtype": torch.float32, "device": h.device}
        gz = torch.zeros(T, K, **f32) if gz is None else gz.contiguous()
        gstate = torch.zeros(2, K, **f32) if gstate is None else gstate[:2].contiguous()
        gx = _empty((T, K), h.device)
        gout = _empty((4, K), h.device)
        backward = _kernels(spec, h.device)[1]
        backward(K, gz, gstate, h, th, rm, state0, params, np.float32(spec.surrogate.slope),
                 gx, gout)  # fmt: skip
        g_state0 = None
        if ctx.needs_input_grad[1]:
            g_state0 = torch.zeros_like(state0)
            g_state0[:2] = gout[:2]
        g_params = None
        if ctx.needs_input_grad[2]:
            g_params = torch.zeros_like(params)
            g_params[0] = gout[2].view(-1, n_par).sum(0)
            g_params[3] = gout[3].view(-1, n_par).sum(0)
        return gx, g_state0, g_params, None, None


def _pack_params(p: NeuronParams, feat: tuple[int, ...], n_feat: int, x: torch.Tensor,
                 tracked: bool):  # fmt: skip
    # Stacked anew on every call, never kept between calls: a kept block can be checked
    # against the tensors' identities and version counters, but not against an edit
    # through ``param.data`` (its own version counter), and a CUDA graph must re-read the
    # parameters on each replay. (Keeping it saved a launch per step; see RESULTS.md.)
    dev, f32 = x.device, torch.float32
    qs = [q if q.dtype is f32 and q.device == dev else q.to(device=dev, dtype=f32) for q in p]
    # scalars on CUDA: host time per call is what a GPU step is short of (the CPU kernel
    # blocks work by feature and wants the full width)
    if x.is_cuda and all(q.dim() == 0 for q in qs):
        # on the fast launch paths, which pack them as plain fields; numba's own launch
        # (``0``, the simulator) types every array argument anew, so it keeps the block
        if not tracked and fast_launch_enabled():
            # the kernel reads the eight tensors themselves: no stack launch (a 1 x 4096
            # step on an H100: 3.6 instead of 5.2 µs in a CUDA graph, 111 instead of 123
            # µs of host time eager; RESULTS.md "GPU tests and eager host time"); a
            # tracked call keeps the block, which the backward reads
            return tuple(qs)
        return torch.stack(qs).view(8, 1)  # one small copy instead of eight expanded ones
    return torch.stack([q.expand(feat).reshape(n_feat) for q in qs])


def _one_buffer(state: NeuronState, k: int) -> torch.Tensor | None:
    """The ``[4, k]`` fp32 buffer whose consecutive rows the four fields already are, or None.

    The state a kernel call returns is such a buffer, so a step loop that hands it back
    (or keeps its static state as ``buf.unbind(0)``) skips the stack: one kernel fewer
    per step. Only for a state that autograd does not track (a view reaching past ``v``
    would route gradients into the wrong fields).
    """
    v = state.v
    if v.dtype != torch.float32 or v.numel() != k or not v.is_contiguous():
        return None
    ptr, size, where = v.data_ptr(), 4 * k, v.untyped_storage().data_ptr()
    for j, s in enumerate(state):
        if (s.requires_grad or s.dtype != torch.float32 or s.numel() != k
                or not s.is_contiguous() or s.data_ptr() != ptr + j * size
                or s.untyped_storage().data_ptr() != where):  # fmt: skip
            return None
    return v.as_strided((4, k), (k, 1))


def _pack_state(state: NeuronState | None, v_init, B: int, feat, n_feat: int, x,
                tracked: bool):  # fmt: skip
    if state is not None:
        # a tracked call saves ``state0`` for the backward: a view of the caller's buffer
        # would fail there if the caller wrote into it in between
        whole = None if tracked else _one_buffer(state, B * n_feat)
        if whole is not None:
            return whole
        # the kernels hold an fp32 state: a half-precision state (a step loop under
        # autocast hands one back) is widened here, not handed to a float32 kernel
        return torch.stack([s.expand(B, *feat).reshape(B * n_feat) for s in state]).float()
    state0 = x.new_zeros(4, B * n_feat)
    if not (isinstance(v_init, (int, float)) and v_init == 0):
        state0[0] = (
            torch.as_tensor(v_init, dtype=x.dtype, device=x.device).expand(B, *feat).reshape(-1)
        )
    return state0


def neuron_sequence_op(
    x: torch.Tensor,
    state: NeuronState | None,
    p: NeuronParams,
    spec: NeuronSpec,
    v_init: torch.Tensor | float = 0.0,
) -> tuple[torch.Tensor, NeuronState]:
    """Run ``x [T, B, ...]`` through the neuron; kernel or reference as the registry decides.

    ``p`` holds tensors broadcastable to the feature shape ``x.shape[2:]``. ``state``
    None starts from rest (membrane ``v_init``, everything else 0). Half-precision
    input (bf16/fp16, e.g. under autocast) runs the kernel with an fp32 membrane and
    returns spikes in the input's dtype.
    """
    if x.shape[0] == 0 or not registry.use_kernel(OP, x.device.type, _unsupported(x, spec)):
        if state is None:
            state = initial_state(x[0], v_init)
        return neuron_sequence(x, state, p, spec)
    return _sequence_kernel(x, state, p, spec, v_init)


def neuron_step_op(
    x: torch.Tensor,
    state: NeuronState | None,
    p: NeuronParams,
    spec: NeuronSpec,
    v_init: torch.Tensor | float = 0.0,
    out: NeuronState | None = None,
) -> tuple[torch.Tensor, NeuronState]:
    """One time step ``x [B, ...]`` -> spikes ``[B, ...]`` and the new state.

    ``out``: write the new state into these tensors (shaped like ``x``; they may be the
    ``state`` passed in) and return them, for a CUDA graph that replays a recurrence on
    static buffers. Inference only: under autograd it raises, since the buffers would
    be overwritten while the backward still needs them. Four rows of one fp32 buffer
    (``NeuronState(*torch.zeros(4, *x.shape).unbind(0))``) are written by the kernel
    itself; any other tensors get a copy per field.

    On CUDA the fused kernel runs the step (``T = 1``): a streaming step is bound by
    launches, and the reference step is ~16 elementwise kernels (a 1 x 4096 step in a
    CUDA graph on an H100: 23.6 µs, through the kernel 3.6 µs). Elsewhere the reference step
    runs: on the CPU its torch ops are the faster choice for a step (no-grad step loops on
    the 2-core VM, per step: 1 x 256 76 µs against 166 through the kernel, 1 x 4096 112
    against 437, 32 x 1024 a tie; with gradients the reference wins at all three).
    Adaptive neurons keep the reference step while autograd records: the kernel returns
    no gradient for the adaptation state, which a chain of steps needs.
    With half-precision input the membrane is fp32 (the returned state too) and the
    spikes are in the input's dtype, on every device, as in sequence mode (unless
    ``NEUROSPARSE_KERNELS=torch``, whose reference runs in the input's precision).
    """
    if out is not None and torch.is_grad_enabled() and (
            x.requires_grad or any(q.requires_grad for q in (*p, *(state or ())))):  # fmt: skip
        raise ParameterError(
            "step(..., out=...) writes the new state into buffers the backward would still "
            "need; call it under torch.no_grad() / inference_mode(), or drop out= and use "
            "the returned state"
        )
    if (x.device.type in STEP_KERNEL_DEVICES and not (spec.adaptive and torch.is_grad_enabled())
            and registry.use_kernel(OP, x.device.type, _unsupported(x, spec))):  # fmt: skip
        z, st = _sequence_kernel(x.unsqueeze(0), state, p, spec, v_init, out)
        return z[0], st
    if state is None:
        state = initial_state(x, v_init)
    if x.dtype in (torch.bfloat16, torch.float16) and registry.kernel_mode() != "torch":
        # what the kernels do (sequence mode, CUDA steps): an fp32 membrane and spikes in
        # the input's dtype, so a step loop and a sequence give the same spikes on every
        # device; NEUROSPARSE_KERNELS=torch keeps the pure reference in half precision
        z, st = neuron_step(x.float(), NeuronState(*(s.float() for s in state)), p, spec)
        z = z.to(x.dtype)
    else:
        z, st = neuron_step(x, state, p, spec)
    return z, st if out is None else _write(out, st)


def _write(out: NeuronState, st: NeuronState) -> NeuronState:
    for o, s in zip(out, st):
        if o is not s:
            o.copy_(s)
    return out


def _sequence_kernel(x, state, p, spec, v_init, out=None) -> tuple[torch.Tensor, NeuronState]:
    if x.dtype in (torch.bfloat16, torch.float16):
        # under autocast a conv/linear hands over half precision; the kernel keeps an fp32
        # membrane, and spikes (0/1) are exact in any float type
        z, st = _sequence_kernel(x.float(), state, p, spec, v_init, out)
        return z.to(x.dtype), st
    T, B = x.shape[:2]
    feat = x.shape[2:]
    n_feat = math.prod(feat)
    tracked = torch.is_grad_enabled() and (
        x.requires_grad or any(q.requires_grad for q in p)
        or (state is not None and any(s.requires_grad for s in state)))  # fmt: skip
    params = _pack_params(p, feat, n_feat, x, tracked)
    state0 = _pack_state(state, v_init, B, feat, n_feat, x, tracked)
    if out is None:
        buf = None
    elif out is state and not tracked:  # ``step(x, st, out=st)``: already checked
        buf = state0 if state0.data_ptr() == out.v.data_ptr() else None
    else:
        buf = _one_buffer(out, B * n_feat)
    x2 = x.reshape(T, B * n_feat).contiguous()
    if tracked:
        z, st = _LIFSequence.apply(x2, state0, params, spec, buf)
    else:  # nothing to differentiate: the Function's bookkeeping is host time per step
        z, st = _forward(x2, state0, params, spec, buf)[:2]
    shape = (B, *feat)
    if out is not None and buf is not None:
        return z.view(T, *shape), out
    new = NeuronState(*(s.view(shape) for s in st.unbind(0)))
    return z.view(T, *shape), new if out is None else _write(out, new)
