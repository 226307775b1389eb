"""Sequence mode of the LIF family as one autograd op.

``neuron_sequence_op`` runs the fused Numba kernel -- ``kernels/lif_cpu.py`` for CPU
tensors, ``kernels/lif_cuda.py`` for CUDA tensors (no host copies: the kernel reads
the torch tensors through ``__cuda_array_interface__`` on torch's stream) -- for
float32 inputs, and the reference step loop (``neurons/functional.py``) otherwise or
when ``NEUROSPARSE_KERNELS=torch``. Both give the same spikes and gradients.
"""

from __future__ import annotations

import numpy as np
import torch

from ..neurons.functional import NeuronParams, NeuronSpec, NeuronState, neuron_sequence
from . import registry

OP = "lif_sequence"
registry.register(OP, "cpu", "cuda")

_RESET_CODE = {"subtract": 0, "zero": 1, "none": 2}


def _kernels(spec: NeuronSpec, device: torch.device):
    """``(forward, backward)`` callables on torch tensors for ``spec`` on ``device``.

    Each takes the number of neurons (threads) first, then the kernel's arguments.
    """
    flags = (_RESET_CODE[spec.reset], int(spec.reset_delay), int(spec.detach_reset),
             int(spec.synaptic), int(spec.euler), int(spec.adaptive), int(spec.refractory),
             spec.surrogate.kernel_id)  # fmt: skip
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
            env = CudaEnv(device)
            args = [env.view(a) if isinstance(a, torch.Tensor) else a for a in args]
            blocks = (n_threads + lif_cuda.THREADS - 1) // lif_cuda.THREADS
            kernel[blocks, lif_cuda.THREADS, env.stream](*args)

        return run

    return tuple(on_gpu(k) for k in lif_cuda.get_kernels(*flags))


class _LIFSequence(torch.autograd.Function):
    """``x [T, K]``, ``state0 [4, K]`` (v, i, a, c), ``params [8, N]`` -> ``z [T, K]``, state."""

    @staticmethod
    def forward(ctx, x, state0, params, spec: NeuronSpec):  # type: ignore[override]
        T, K = x.shape
        f32 = {"dtype": torch.float32, "device": x.device}
        zh = torch.empty(2, T, K, **f32)
        th = torch.empty((T, K) if spec.adaptive else (1, 1), **f32)
        rm = torch.zeros((T, K) if spec.refractory else (1, 1), dtype=torch.uint8,
                         device=x.device)  # fmt: skip
        state = torch.empty(4, K, **f32)
        forward, _ = _kernels(spec, x.device)
        forward(K, x, state0, params, zh, th, rm, state)
        ctx.save_for_backward(zh, th, rm, state0, params)
        ctx.spec = spec
        return zh[0], state

    @staticmethod
    def backward(ctx, gz, gstate):  # type: ignore[override]
        zh, th, rm, state0, params = ctx.saved_tensors
        spec: NeuronSpec = ctx.spec
        T, K = zh.shape[1:]
        n_feat = params.shape[1]
        f32 = {"dtype": torch.float32, "device": zh.device}
        gz = torch.zeros(T, K, **f32) if gz is None else gz.contiguous()
        gstate = torch.zeros(2, K, **f32) if gstate is None else gstate[:2].contiguous()
        gx = torch.empty(T, K, **f32)
        gout = torch.empty(4, K, **f32)
        _, backward = _kernels(spec, zh.device)
        backward(K, gz, gstate, zh, th, rm, state0, params, np.float32(spec.surrogate.slope),
                 gx, gout)  # fmt: skip
        g_state0 = torch.zeros_like(state0)
        g_state0[:2] = gout[:2]
        g_params = None
        if ctx.needs_input_grad[2]:
            g_params = torch.zeros_like(params)
            g_params[0] = gout[2].view(-1, n_feat).sum(0)
            g_params[3] = gout[3].view(-1, n_feat).sum(0)
        return gx, g_state0, g_params, None


def neuron_sequence_op(
    x: torch.Tensor, state: NeuronState, p: NeuronParams, spec: NeuronSpec
) -> tuple[torch.Tensor, NeuronState]:
    """Run ``x [T, B, ...]`` through the neuron; kernel or reference as the registry decides.

    ``p`` holds tensors broadcastable to the feature shape ``x.shape[2:]``.
    """
    kernel_ok = x.dtype == torch.float32 and x.shape[0] > 0
    if not (kernel_ok and registry.use_kernel(OP, x.device.type)):
        return neuron_sequence(x, state, p, spec)
    T, B = x.shape[:2]
    feat = x.shape[2:]
    n_feat = int(np.prod(feat)) if len(feat) else 1
    params = torch.stack(
        [q.to(device=x.device, dtype=torch.float32).expand(feat).reshape(n_feat) for q in p]
    )
    state0 = torch.stack([s.expand(B, *feat).reshape(B * n_feat) for s in state])
    z, st = _LIFSequence.apply(x.reshape(T, B * n_feat).contiguous(), state0, params, spec)
    shape = (B, *feat)
    return z.view(T, *shape), NeuronState(*(s.view(shape) for s in st.unbind(0)))
