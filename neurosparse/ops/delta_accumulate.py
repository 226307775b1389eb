"""Running sum over time as an autograd op: ``z_t = z0 + Σ_{s≤t} inc_s``.

This is the accumulation step of every delta layer (``z_t = z_{t−1} + W·Δ_t``). The sums
run in float64 and are rounded once per stored value, so a float32 delta layer stays
within float32 rounding of the dense layer on the quantised input over long sequences
(``kernels/delta_accumulate.py`` says why). Backward: ``g_inc_t = Σ_{s≥t} g_z_s`` (the
running sum from the end) and ``g_z0 = Σ_t g_z_t``.

Implementations: Numba CPU (``kernels/delta_accumulate.py``), Numba CUDA
(``kernels/delta_accumulate_cuda.py``), and the reference ``cumsum`` in float64.
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from . import registry
from .delta_encode import on_gpu

OP = "delta_accumulate"
registry.register(OP, "cpu", "cuda", covers="float32")


def implementation(x: torch.Tensor) -> str:
    """``"numba"`` or ``"torch"`` for an input (the kernels run float32)."""
    why = None if x.dtype == torch.float32 else f"the kernels take float32, not {x.dtype}"
    return "numba" if registry.use_kernel(OP, x.device.type, why) else "torch"


def reference_accumulate(
    inc: torch.Tensor, z0: torch.Tensor, reverse: bool = False
) -> torch.Tensor:
    """``z0 + cumsum(inc, 0)`` (or from the end) summed in float64, in inc's dtype."""
    a = inc.double()
    s = a.flip(0).cumsum(0).flip(0) if reverse else a.cumsum(0)
    return (s + z0.double()).to(inc.dtype)


def _run(inc2: torch.Tensor, z0: torch.Tensor, reverse: bool, inplace: bool = False):
    """``inc2 [T, R]``, ``z0 [R]`` (contiguous) through the implementation for inc2;
    ``inplace`` overwrites ``inc2`` with the result (kernels only)."""
    if implementation(inc2) == "torch":
        return reference_accumulate(inc2, z0, reverse)
    out = inc2 if inplace else torch.empty_like(inc2)
    if on_gpu(inc2):
        from ..kernels import delta_accumulate_cuda as kc
        from .cuda_env import CudaEnv

        env = CudaEnv(inc2.device)
        kc.launch_running_sum(env.view(inc2), env.view(z0), env.view(out), reverse, env.stream)
        return out
    from ..kernels import delta_accumulate as ka

    ka.sum_into(inc2.numpy(), z0.numpy(), out.numpy(), reverse)
    return out


class _AccumulateFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, inc, z0):  # type: ignore[override]
        n_t = inc.shape[0]
        inc2 = inc.detach().reshape(n_t, -1).contiguous()
        z = _run(inc2, z0.detach().reshape(-1).contiguous(), False)
        return z.reshape(inc.shape)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):  # type: ignore[override]
        n_t = g.shape[0]
        g2 = g.reshape(n_t, -1).contiguous()
        g_inc = _run(g2, torch.zeros_like(g2[0]), True).reshape(g.shape)
        g_z0 = g_inc[0] if ctx.needs_input_grad[1] else None
        return g_inc, g_z0


def accumulate(inc: torch.Tensor, z0: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """``z [T, ...]`` with ``z_t = z0 + Σ_{s≤t} inc_s``; ``inc [T, ...]``, ``z0 [...]``.

    ``z0`` must have the shape of one step of ``inc`` (expand it first), the same dtype
    and device. ``inplace=True`` lets the sums overwrite ``inc`` (a temporary of the
    delta layers: one big allocation less) when no gradient is needed and it is
    contiguous.
    """
    if inplace and not (torch.is_grad_enabled() and (inc.requires_grad or z0.requires_grad)):
        if inc.is_contiguous():
            n_t = inc.shape[0]
            z0c = z0.reshape(-1).contiguous()
            return _run(inc.view(n_t, -1), z0c, False, inplace=True).view(inc.shape)
    return _AccumulateFn.apply(inc, z0)
