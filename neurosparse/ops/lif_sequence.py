"""Sequence mode of the LIF family as one autograd op.

``neuron_sequence_op`` runs the fused Numba kernel -- ``kernels/lif_cpu.py`` for CPU
tensors, ``kernels/lif_cuda.py`` for CUDA tensors (no host copies: the kernel reads
the torch tensors through ``__cuda_array_interface__`` on torch's stream) -- for
float32 inputs, and the reference step loop (``ops/lif_reference.py``) otherwise or
when ``NEUROSPARSE_KERNELS=torch``. Both give the same spikes and gradients.
"""

from __future__ import annotations

import numpy as np
import torch

from ..neurons.surrogate import kernel_id_of
from . import registry
from .lif_reference import (
    NeuronParams,
    NeuronSpec,
    NeuronState,
    initial_state,
    neuron_sequence,
)

OP = "lif_sequence"
registry.register(OP, "cpu", "cuda", covers="float32/float16/bfloat16 input, built-in surrogates")

_RESET_CODE = {"subtract": 0, "zero": 1, "none": 2}


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


# Numba kernels are opaque to torch.compile anyway; tracing into this lookup (a cached
# factory of jitted functions) would only make Dynamo warn about the cache it ignores.
@torch.compiler.disable
def _kernels(spec: NeuronSpec, device: torch.device):
    """``(forward, backward)`` callables on torch tensors for ``spec`` on ``device``.

    Each takes the number of neurons (threads) first, then the kernel's arguments.
    """
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

    return tuple(on_gpu(k) for k in lif_cuda.get_kernels(*flags))


def _empty(shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """An uninitialised float32 buffer for the kernels; on the CPU allocated by NumPy, which asks
    for transparent huge pages (a fresh multi-MB ``torch.empty`` is faulted in 4 KiB at a
    time: ``ops.event_linear.empty_cpu``)."""
    if device.type == "cpu":
        return torch.from_numpy(np.empty(shape, np.float32))
    return torch.empty(shape, dtype=torch.float32, device=device)


class _LIFSequence(torch.autograd.Function):
    """``x [T, K]``, ``state0 [4, K]`` (v, i, a, c), ``params [8, P]`` -> ``z [T, K]``, state.

    ``P`` is the number of features, or 1 on CUDA when every parameter is a scalar (the
    CUDA kernel reads ``params[:, k % P]``).
    """

    @staticmethod
    def forward(ctx, x, state0, params, spec: NeuronSpec):  # type: ignore[override]
        T, K = x.shape
        dev = x.device
        z = _empty((T, K), dev)
        # the membrane each spike was tested on: all the backward keeps (it recomputes
        # the spikes), so the spikes themselves are freed as soon as the caller drops them
        h = _empty((T, K), dev)
        th = _empty((T, K) if spec.adaptive else (1, 1), dev)
        # the uint8 trace is read only where the neuron has a refractory period
        rm = (torch.zeros if spec.refractory else torch.empty)(
            (T, K) if spec.refractory else (1, 1), dtype=torch.uint8, device=dev
        )
        state = _empty((4, K), dev)
        forward, _ = _kernels(spec, x.device)
        forward(K, x, state0, params, z, h, th, rm, state)
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
        _, backward = _kernels(spec, h.device)
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
        return gx, g_state0, g_params, None


def _pack_params(p: NeuronParams, feat: tuple[int, ...], n_feat: int, x: torch.Tensor):
    qs = [q.to(device=x.device, dtype=torch.float32) for q in p]
    # scalars stay one column on CUDA: one small copy instead of eight expanded ones
    # (host time per call is what a GPU sequence op is short of; the CPU kernel blocks
    # work by feature and wants the full width)
    if x.is_cuda and all(q.dim() == 0 for q in qs):
        return torch.stack(qs).view(8, 1)
    return torch.stack([q.expand(feat).reshape(n_feat) for q in qs])


def _pack_state(state: NeuronState | None, v_init, B: int, feat, n_feat: int, x):
    if state is not None:
        return torch.stack([s.expand(B, *feat).reshape(B * n_feat) for s in state])
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
    if x.dtype in (torch.bfloat16, torch.float16):
        # under autocast a conv/linear hands over half precision; the kernel keeps an fp32
        # membrane, and spikes (0/1) are exact in any float type
        z, st = neuron_sequence_op(x.float(), state, p, spec, v_init)
        return z.to(x.dtype), st
    T, B = x.shape[:2]
    feat = x.shape[2:]
    n_feat = int(np.prod(feat)) if len(feat) else 1
    params = _pack_params(p, feat, n_feat, x)
    state0 = _pack_state(state, v_init, B, feat, n_feat, x)
    z, st = _LIFSequence.apply(x.reshape(T, B * n_feat).contiguous(), state0, params, spec)
    shape = (B, *feat)
    return z.view(T, *shape), NeuronState(*(s.view(shape) for s in st.unbind(0)))
