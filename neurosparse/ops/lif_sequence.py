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


class _Launcher:
    """Calls a kernel pair on CPU (numpy views) or CUDA (device views, torch's stream)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        if self.cuda:
            from numba import cuda

            from ..kernels import lif_cuda as mod

            self._cuda = cuda
            self.stream = cuda.external_stream(torch.cuda.current_stream(device).cuda_stream)
        else:
            from ..kernels import lif_cpu as mod
        self.mod = mod

    def view(self, t: torch.Tensor):
        t = t.detach().contiguous()
        return self._cuda.as_cuda_array(t) if self.cuda else t.numpy()

    def __call__(self, name: str, n_threads: int, *args) -> None:
        args = [self.view(a) if isinstance(a, torch.Tensor) else a for a in args]
        fn = getattr(self.mod, name)
        if self.cuda:
            threads = self.mod.THREADS
            fn[(n_threads + threads - 1) // threads, threads, self.stream](*args)
        else:
            fn(*args)


def _flags(spec: NeuronSpec) -> tuple[int, ...]:
    return (_RESET_CODE[spec.reset], int(spec.reset_delay), int(spec.synaptic), int(spec.euler),
            int(spec.adaptive), int(spec.refractory))  # fmt: skip


class _LIFSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v0, i0, a0, c0, spec: NeuronSpec, n_feat: int, *params):  # type: ignore[override]
        T, K = x.shape
        launch = _Launcher(x.device)
        f32 = {"dtype": torch.float32, "device": x.device}
        z, h = torch.empty(T, K, **f32), torch.empty(T, K, **f32)
        th = torch.empty((T, K) if spec.adaptive else (1, 1), **f32)
        rm = torch.zeros((T, K) if spec.refractory else (1, 1), dtype=torch.uint8,
                         device=x.device)  # fmt: skip
        v, i, a, c = (torch.empty(K, **f32) for _ in range(4))
        launch("lif_forward", K, x, v0, i0, a0, c0, *params, n_feat, *_flags(spec),
               z, h, th, rm, v, i, a, c)  # fmt: skip
        ctx.save_for_backward(z, h, th, rm, v0, a0, *params)
        ctx.spec, ctx.n_feat = spec, n_feat
        ctx.mark_non_differentiable(a, c)
        return z, v, i, a, c

    @staticmethod
    def backward(ctx, gz, gv, gi, _ga, _gc):  # type: ignore[override]
        z, h, th, rm, v0, a0, beta, gain, leak, theta, alpha, vreset, adapt, rho = (
            ctx.saved_tensors
        )
        spec: NeuronSpec = ctx.spec
        T, K = z.shape
        f32 = {"dtype": torch.float32, "device": z.device}
        gz = torch.zeros(T, K, **f32) if gz is None else gz
        gv = torch.zeros(K, **f32) if gv is None else gv
        gi = torch.zeros(K, **f32) if gi is None else gi
        gx = torch.empty(T, K, **f32)
        gv0, gi0, gbeta, gtheta = (torch.empty(K, **f32) for _ in range(4))
        reset, delay, synaptic, euler, adaptive, refr = _flags(spec)
        _Launcher(z.device)(
            "lif_backward", K, gz, gv, gi, z, h, th, rm, v0, a0,
            beta, gain, theta, alpha, vreset, adapt,
            ctx.n_feat, reset, delay, int(spec.detach_reset), synaptic, euler, adaptive, refr,
            spec.surrogate.kernel_id, np.float32(spec.surrogate.slope),
            gx, gv0, gi0, gbeta, gtheta,
        )  # fmt: skip
        n = ctx.n_feat
        g_beta = gbeta.view(-1, n).sum(0) if ctx.needs_input_grad[7] else None
        g_theta = gtheta.view(-1, n).sum(0) if ctx.needs_input_grad[10] else None
        return (gx, gv0, gi0, None, None, None, None, g_beta, None, None, g_theta,
                None, None, None, None)  # fmt: skip


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
    flat = [q.to(device=x.device, dtype=torch.float32).expand(feat).reshape(n_feat) for q in p]
    st = [s.expand(B, *feat).reshape(B * n_feat) for s in state]
    z, v, i, a, c = _LIFSequence.apply(x.reshape(T, B * n_feat), *st, spec, n_feat, *flat)
    shape = (B, *feat)
    return z.view(T, *shape), NeuronState(*(s.view(shape) for s in (v, i, a, c)))
