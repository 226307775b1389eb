"""Surrogate gradients: a Heaviside step forward, a smooth derivative backward.

Each surrogate is a small object holding its slope; calling it on ``x = v - threshold``
applies :class:`SpikeFunction`, an autograd Function whose forward is ``x > 0`` (strict,
as snnTorch and Norse fire) and whose backward multiplies by :meth:`Surrogate.grad`.
The fused Numba kernels evaluate the same derivatives, selected by ``kernel_id``
(see ``kernels/lif_step.py``), so both paths train identically.

A surrogate of your own -- a :class:`Surrogate` subclass, or a subclass of a built-in
one that overrides :meth:`~Surrogate.grad` -- trains on its own ``grad``: the kernels
cannot evaluate it, so :func:`kernel_id_of` returns None and the LIF op runs the torch
reference for it (a one-time warning; an error under ``NEUROSPARSE_KERNELS=numba``).

=================  ==========================================  =======================
class              derivative dS/dx                            origin / default slope
=================  ==========================================  =======================
``FastSigmoid``    1 / (k|x| + 1)^2                            snnTorch, k = 25
``SuperSpike``     1 / (k|x| + 1)^2 (same function)            Zenke & Ganguli 2018;
                                                               Norse, k = 100
``ATan``           (k/2) / (1 + (pi k x / 2)^2)                snnTorch default, k = 2
``Triangle``       k * max(0, 1 - k|x|)                        k = 1
``StraightThrough`` 1                                          (identity gradient)
``Sigmoid``        k s (1 - s), s = sigmoid(k x)               SpikingJelly, k = 4
=================  ==========================================  =======================
"""

from __future__ import annotations

import math

import torch

from .._checks import check_finite_range


class SpikeFunction(torch.autograd.Function):
    """Heaviside forward (``x > 0``), ``surrogate.grad(x)`` backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: Surrogate) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


class Surrogate:
    """Base class: ``kernel_id`` names the derivative for the Numba kernels."""

    kernel_id: int = -1
    default_slope: float = 1.0

    def __init__(self, slope: float | None = None) -> None:
        slope = self.default_slope if slope is None else float(slope)
        check_finite_range(f"{type(self).__name__} slope", slope, lo=0.0)
        self.slope = slope

    def grad(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return SpikeFunction.apply(x, self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.slope:g})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.slope == other.slope  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.slope))


class FastSigmoid(Surrogate):
    """``1 / (k|x| + 1)^2`` (snnTorch ``fast_sigmoid``; default k = 25)."""

    kernel_id = 0
    default_slope = 25.0

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 / (self.slope * x.abs() + 1.0) ** 2


class SuperSpike(FastSigmoid):
    """SuperSpike (Zenke & Ganguli 2018): the fast-sigmoid derivative, Norse's default k = 100."""

    default_slope = 100.0


class ATan(Surrogate):
    """``(k/2) / (1 + (pi k x / 2)^2)`` (snnTorch's default surrogate, k = 2)."""

    kernel_id = 1
    default_slope = 2.0

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return self.slope / 2 / (1 + (math.pi / 2 * self.slope * x) ** 2)


class Triangle(Surrogate):
    """``k * max(0, 1 - k|x|)``: a triangle of unit area and half-width 1/k."""

    kernel_id = 2
    default_slope = 1.0

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return self.slope * torch.clamp(1.0 - self.slope * x.abs(), min=0.0)


class StraightThrough(Surrogate):
    """Straight-through estimator: the gradient passes unchanged (slope unused)."""

    kernel_id = 3
    default_slope = 1.0

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x)


class Sigmoid(Surrogate):
    """``k s (1 - s)`` with ``s = sigmoid(k x)`` (SpikingJelly's default, k = 4)."""

    kernel_id = 4
    default_slope = 4.0

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.slope * x)
        return self.slope * s * (1 - s)


# the derivative each kernel id computes; a class reaches the kernel only with this grad
_KERNEL_GRADS = {
    FastSigmoid.kernel_id: FastSigmoid.grad,
    ATan.kernel_id: ATan.grad,
    Triangle.kernel_id: Triangle.grad,
    StraightThrough.kernel_id: StraightThrough.grad,
    Sigmoid.kernel_id: Sigmoid.grad,
}


def kernel_id_of(surrogate: Surrogate) -> int | None:
    """The id of ``surrogate``'s derivative in the Numba kernels, or None if they lack it.

    The id holds only while the surrogate's ``grad`` (and its Heaviside call) are the
    built-in ones that id stands for: a subclass overriding ``grad`` keeps its parent's
    ``kernel_id`` attribute but not its derivative, so it gets None and the reference.
    """
    cls = type(surrogate)
    kid = getattr(cls, "kernel_id", -1)
    if (
        _KERNEL_GRADS.get(kid) is not getattr(cls, "grad", None)
        or "grad" in vars(surrogate)
        or cls.__call__ is not Surrogate.__call__
    ):
        return None
    return kid


ALL = (FastSigmoid, SuperSpike, ATan, Triangle, StraightThrough, Sigmoid)

__all__ = [
    "SpikeFunction",
    "Surrogate",
    "FastSigmoid",
    "SuperSpike",
    "ATan",
    "Triangle",
    "StraightThrough",
    "Sigmoid",
    "kernel_id_of",
]
