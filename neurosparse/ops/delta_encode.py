"""Delta encoding as an autograd op, with a straight-through gradient.

Forward (Neil et al. 2017): every unit keeps a reference ``ref``; at step ``t`` it sends
``Δ_t = x_t − ref`` and sets ``ref ← x_t`` where ``|x_t − ref| > θ``, and sends 0
otherwise. Writing ``x̂_t`` for the reference after step ``t`` (the *reference-quantised*
input, ``x̂_{−1} = ref0``), ``Δ_t = x̂_t − x̂_{t−1}`` exactly, so a layer that sums
``W·Δ`` over time computes ``W·x̂_t``.

Backward: the quantisation ``x ↦ x̂`` is piecewise constant, so it gets the
straight-through estimate ``∂x̂_t/∂x_t = 1``; the differences ``Δ_t = x̂_t − x̂_{t−1}``
are differentiated exactly. Hence ``g_x_t = g_Δ_t − g_Δ_{t+1}`` (plus the gradient of the
final reference at the last step) and ``g_ref0 = −g_Δ_0``. A learnable threshold gets a
surrogate gradient through the send decision ``m = H(|d| − θ)`` with ``d = x_t − ref``:
``x̂_t = ref + m·d``, and ``∂m/∂θ`` is replaced by ``−s(|d| − θ)`` with the triangle
``s(u) = max(0, 1 − |u|/w)/w`` of half-width ``w``, so ``∂x̂_t/∂θ = −d·s(|d| − θ)``:
raising θ stops the near-threshold sends (fewer, smaller deltas, which the L1 penalty
rewards) at the price of a larger quantisation error (which the task loss charges).

:func:`reference_encode` is the same op written in plain torch (a loop over time with the
estimator expressed through ``detach``); tests hold the op's values and gradients to it.
Implementations: the Numba CPU kernel (``kernels/delta_encode.py``), the CUDA kernel
(``kernels/delta_encode_cuda.py``) for float32, else the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.autograd.function import once_differentiable

from .._checks import finite_checks_on_gpu
from ..errors import InputValueError
from . import event_linear as _el
from . import registry

OP = "delta_encode"
registry.register(OP, "cpu", "cuda", covers="float32")


def implementation(x: torch.Tensor) -> str:
    """``"numba"`` or ``"torch"`` for an input (the kernels run float32)."""
    why = None if x.dtype == torch.float32 else f"the kernels take float32, not {x.dtype}"
    return "numba" if registry.use_kernel(OP, x.device.type, why) else "torch"


@dataclass
class EncodeStats:
    """Counts of one encoding call: deltas sent, of them those of magnitude 1 (exact
    Python ints, or int64 device tensors on CUDA: see :func:`delta_counts`), and units
    compared (an int)."""

    nnz: int | torch.Tensor = 0
    unit: int | torch.Tensor = 0
    total: int = 0


def delta_counts(delta: torch.Tensor) -> tuple[int | torch.Tensor, int | torch.Tensor]:
    """``(deltas sent, of them those of magnitude 1)``: ints, or on CUDA int64 device
    tensors (reading them to the host would synchronise with the GPU on every call;
    ``OpCounter`` sums them on the device)."""
    d = delta.detach()
    nnz, unit = torch.count_nonzero(d), torch.count_nonzero(d.abs() == 1)
    return (nnz, unit) if on_gpu(d) else (int(nnz), int(unit))


def on_gpu(x: torch.Tensor) -> bool:
    """Whether ``x`` is GPU memory, so that reading it on the host would synchronise (the
    simulator tests route CPU tensors here through ``event_linear.kernel_device``)."""
    return _el.kernel_device(x) == "cuda"


def surrogate(u: torch.Tensor, width: float) -> torch.Tensor:
    """Triangle ``max(0, 1 − |u|/w)/w`` (unit area): the stand-in for ``δ(u)``."""
    return torch.clamp(1.0 - u.abs() / width, min=0.0) / width


def _raise_bad() -> None:
    raise InputValueError(
        "input contains NaN or infinite values; a delta encoder would never send them "
        "(|NaN − ref| > θ is false): clean the input first"
    )


# -- the pure-torch reference ------------------------------------------------------------
def reference_encode(
    x: torch.Tensor, ref0: torch.Tensor, thr: torch.Tensor, width: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Delta encoding in plain torch, differentiable by autograd (the test oracle).

    Parameters
    ----------
    x : ``[T, B, ...]``; ref0 : ``[B, ...]``; thr : broadcastable to ``x[0]``, ``≥ 0``.
    width : half-width of the threshold's surrogate.

    Returns
    -------
    delta : ``[T, B, ...]``
    ref : ``[B, ...]``, the references after the last step (``x̂_{T−1}``).
    """
    prev = ref0  # x̂_{t−1}, carrying the estimator's graph
    ref = ref0.detach()  # the value the comparisons use
    th = thr.detach()
    deltas = []
    for t in range(x.shape[0]):
        xt = x[t]
        d = xt.detach() - ref
        send = d.abs() > th
        q = torch.where(send, xt.detach(), ref)
        # value q exactly (both correction terms are exact zeros); gradients: 1 to x_t,
        # −d·s(|d|−θ) to θ
        coef = (-d * surrogate(d.abs() - th, width)).detach()
        xh = q + (xt - xt.detach()) + (thr - th) * coef
        deltas.append(xh - prev)
        prev, ref = xh, q
    return torch.stack(deltas), prev


# -- kernels -----------------------------------------------------------------------------
def _encode_cpu(x3, ref0, thr, stats):
    from ..kernels import delta_encode as kd

    delta, ref, rows, units, bad = kd.encode(x3.numpy(), ref0.numpy(), thr.numpy())
    if bad:
        _raise_bad()
    stats.nnz, stats.unit = int(rows.sum()), int(units.sum())
    return torch.from_numpy(delta), torch.from_numpy(ref)


def _encode_cuda(x3, ref0, thr, stats):
    from ..kernels import delta_encode_cuda as kc
    from .cuda_env import CudaEnv

    env = CudaEnv(x3.device)
    delta, ref = torch.empty_like(x3), torch.empty_like(ref0)
    bad = torch.zeros(1, dtype=torch.int32, device=x3.device)
    kc.launch_encode(env.view(x3), env.view(ref0), env.view(thr), env.view(delta),
                     env.view(ref), env.view(bad), env.stream)  # fmt: skip
    if finite_checks_on_gpu() and int(bad.item()):  # opt-in: reading it synchronises
        _raise_bad()
    stats.nnz, stats.unit = delta_counts(delta)
    return delta, ref


def _encode_torch(x3, ref0, thr, stats):
    if (not on_gpu(x3) or finite_checks_on_gpu()) and not bool(torch.isfinite(x3).all()):
        _raise_bad()
    with torch.no_grad():
        delta, ref = reference_encode(x3, ref0, thr, 1.0)
    stats.nnz, stats.unit = delta_counts(delta)
    return delta, ref


def _last_refs(x3, delta, ref0):
    # the reference each comparison used: x at the last send before t, else ref0
    n_t = x3.shape[0]
    steps = torch.arange(n_t, device=x3.device).view(n_t, 1, 1).expand_as(x3)
    last = torch.where(delta != 0, steps, torch.full_like(steps, -1)).cummax(0).values
    after = torch.cat([torch.full_like(last[:1], -1), last[:-1]])  # last send before t
    seen = x3.gather(0, after.clamp(min=0))
    return torch.where(after >= 0, seen, ref0.expand_as(x3))


class _DeltaEncodeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x3, ref0, thr, width, impl, stats):  # type: ignore[override]
        x3c, r0 = x3.detach().contiguous(), ref0.detach().contiguous()
        th = thr.detach().contiguous()
        if impl == "torch":
            delta, ref = _encode_torch(x3c, r0, th, stats)
        elif on_gpu(x3):
            delta, ref = _encode_cuda(x3c, r0, th, stats)
        else:
            delta, ref = _encode_cpu(x3c, r0, th, stats)
        ctx.width = width
        ctx.save_for_backward(x3, ref0, thr, delta)
        return delta, ref

    @staticmethod
    @once_differentiable
    def backward(ctx, g_delta, g_ref):  # type: ignore[override]
        x3, ref0, thr, delta = ctx.saved_tensors
        if g_delta is None:
            g_delta = torch.zeros_like(delta)
        g_xhat = g_delta.clone()
        g_xhat[:-1] -= g_delta[1:]
        if g_ref is not None:
            g_xhat[-1] += g_ref
        g_x = g_xhat if ctx.needs_input_grad[0] else None
        g_ref0 = -g_delta[0] if ctx.needs_input_grad[1] else None
        g_thr = None
        if ctx.needs_input_grad[2]:
            d = x3 - _last_refs(x3, delta, ref0)
            coef = -d * surrogate(d.abs() - thr, ctx.width)
            g_thr = (g_xhat * coef).sum((0, 1))
        return g_x, g_ref0, g_thr, None, None, None


def delta_encode_op(
    x3: torch.Tensor, ref0: torch.Tensor, thr: torch.Tensor, width: float
) -> tuple[torch.Tensor, torch.Tensor, EncodeStats]:
    """Encode ``x3 [T, B, U]`` from references ``ref0 [B, U]`` with thresholds ``thr [U]``.

    Arguments are assumed checked (``neurosparse/layers/delta_encoder.py``); ``thr`` is
    non-negative and of x's dtype and device. Returns ``(delta [T, B, U], ref [B, U],
    stats)``; gradients reach ``x3``, ``ref0`` and ``thr`` (see the module docstring).
    """
    stats = EncodeStats(total=x3.numel())
    delta, ref = _DeltaEncodeFn.apply(x3, ref0, thr, float(width), implementation(x3), stats)
    return delta, ref, stats
