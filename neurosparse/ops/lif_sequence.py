"""Sequence mode of the LIF family as one autograd op.

``neuron_sequence_op`` runs the fused Numba kernel (``kernels/lif_cpu.py``) for float32
CPU tensors, and the reference step loop (``neurons/functional.py``) everywhere else or
when ``NEUROSPARSE_KERNELS=torch``. Both give the same spikes and gradients (tests hold
them within 1e-5).
"""

from __future__ import annotations

import numpy as np
import torch

from ..neurons.functional import NeuronParams, NeuronSpec, NeuronState, neuron_sequence
from . import registry

OP = "lif_sequence"
registry.register(OP, "cpu")

_RESET_CODE = {"subtract": 0, "zero": 1, "none": 2}


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


class _LIFSequence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v0, i0, a0, c0, spec: NeuronSpec, n_feat: int, *params):  # type: ignore[override]
        from ..kernels import lif_cpu

        T, K = x.shape
        p = [_np(q) for q in params]
        adaptive, refr = spec.adaptive, spec.refractory
        z = np.empty((T, K), np.float32)
        h = np.empty((T, K), np.float32)
        th = np.empty((T, K) if adaptive else (1, 1), np.float32)
        rm = np.zeros((T, K) if refr > 0 else (1, 1), np.uint8)
        v, i, a, c = (np.empty(K, np.float32) for _ in range(4))
        lif_cpu.lif_forward(
            _np(x), _np(v0), _np(i0), _np(a0), _np(c0), *p,
            n_feat, _RESET_CODE[spec.reset], int(spec.reset_delay), int(spec.synaptic),
            int(spec.euler), int(adaptive), int(refr),
            z, h, th, rm, v, i, a, c,
        )  # fmt: skip
        z_t, h_t = torch.from_numpy(z), torch.from_numpy(h)
        th_t, rm_t = torch.from_numpy(th), torch.from_numpy(rm)
        ctx.save_for_backward(z_t, h_t, th_t, rm_t, v0, a0, *params)
        ctx.spec, ctx.n_feat = spec, n_feat
        a_t, c_t = torch.from_numpy(a), torch.from_numpy(c)
        ctx.mark_non_differentiable(a_t, c_t)
        return z_t, torch.from_numpy(v), torch.from_numpy(i), a_t, c_t

    @staticmethod
    def backward(ctx, gz, gv, gi, _ga, _gc):  # type: ignore[override]
        from ..kernels import lif_cpu

        z, h, th, rm, v0, a0, beta, gain, leak, theta, alpha, vreset, adapt, rho = (
            ctx.saved_tensors
        )
        spec: NeuronSpec = ctx.spec
        T, K = z.shape
        zeros = torch.zeros(K, dtype=torch.float32)
        gz = zeros.expand(T, K) if gz is None else gz
        gv = zeros if gv is None else gv
        gi = zeros if gi is None else gi
        gx = np.empty((T, K), np.float32)
        gv0, gi0, gbeta, gtheta = (np.empty(K, np.float32) for _ in range(4))
        lif_cpu.lif_backward(
            _np(gz), _np(gv), _np(gi), _np(z), _np(h), _np(th), _np(rm), _np(v0), _np(a0),
            _np(beta), _np(gain), _np(theta), _np(alpha), _np(vreset), _np(adapt),
            ctx.n_feat, _RESET_CODE[spec.reset], int(spec.reset_delay), int(spec.detach_reset),
            int(spec.synaptic), int(spec.euler), int(spec.adaptive), int(spec.refractory),
            spec.surrogate.kernel_id, np.float32(spec.surrogate.slope),
            gx, gv0, gi0, gbeta, gtheta,
        )  # fmt: skip
        n = ctx.n_feat
        g_beta = torch.from_numpy(gbeta).view(-1, n).sum(0) if ctx.needs_input_grad[7] else None
        g_theta = torch.from_numpy(gtheta).view(-1, n).sum(0) if ctx.needs_input_grad[10] else None
        return (
            torch.from_numpy(gx), torch.from_numpy(gv0), torch.from_numpy(gi0), None, None,
            None, None, g_beta, None, None, g_theta, None, None, None, None,
        )  # fmt: skip


def neuron_sequence_op(
    x: torch.Tensor, state: NeuronState, p: NeuronParams, spec: NeuronSpec
) -> tuple[torch.Tensor, NeuronState]:
    """Run ``x [T, B, ...]`` through the neuron; kernel or reference as the registry decides.

    ``p`` holds tensors broadcastable to the feature shape ``x.shape[2:]``.
    """
    kernel_ok = x.dtype == torch.float32 and x.device.type == "cpu" and x.shape[0] > 0
    if not (kernel_ok and registry.use_kernel(OP, x.device.type)):
        return neuron_sequence(x, state, p, spec)
    T, B = x.shape[:2]
    feat = x.shape[2:]
    n_feat = int(np.prod(feat)) if len(feat) else 1
    flat = [q.to(torch.float32).expand(feat).reshape(n_feat) for q in p]
    st = [s.expand(B, *feat).reshape(B * n_feat) for s in state]
    z, v, i, a, c = _LIFSequence.apply(
        x.reshape(T, B * n_feat), *st, spec, n_feat, *flat
    )
    shape = (B, *feat)
    return z.view(T, *shape), NeuronState(*(s.view(shape) for s in (v, i, a, c)))
