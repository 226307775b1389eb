"""A surrogate of the user's own trains on its own derivative on every path.

The fused kernels know five derivatives by id; any other surrogate (a ``Surrogate``
subclass, or a built-in one whose ``grad`` is overridden) must run the torch reference,
so its gradient equals a hand-written autograd of the same step loop.
"""

import math
import warnings

import pytest
import torch

import neurosparse as ns
from neurosparse.neurons import surrogate as sg
from neurosparse.ops import registry


class Gaussian(sg.Surrogate):
    """A derivative none of the kernels evaluate."""

    default_slope = 2.0

    def grad(self, x):
        return self.slope / math.sqrt(math.pi) * torch.exp(-((self.slope * x) ** 2))


class SteeperFastSigmoid(sg.FastSigmoid):
    """Inherits kernel_id 0 from FastSigmoid but overrides its derivative."""

    def grad(self, x):
        return 3.0 * super().grad(x)


def _manual_grad(x, w, beta, th, surrogate):
    """Gradient of sum(z * w) for a subtract-reset, delayed-reset LIF, by hand-built autograd
    (the per-step spike made differentiable through ``surrogate.grad`` only)."""
    x = x.clone().requires_grad_()
    v = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        r = (v - th > 0).float()
        v = beta * v + x[t] - r * th
        h = v - th
        hard = (h > 0).float()
        g = surrogate.grad(h.detach())
        out.append(hard + (h - h.detach()) * g)  # value: the spike; derivative: g
    z = torch.stack(out)
    (gx,) = torch.autograd.grad((z * w).sum(), [x])
    return z.detach(), gx


@pytest.mark.parametrize("surrogate", [Gaussian(), SteeperFastSigmoid(5.0)], ids=repr)
@pytest.mark.parametrize("mode", ["auto", "torch"])
def test_custom_surrogate_gets_its_own_gradient(surrogate, mode, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", mode)
    torch.manual_seed(0)
    x = torch.rand(30, 4, 17) * 0.8
    w = torch.randn(30, 4, 17)
    neuron = ns.LIF(0.8, 0.7, surrogate=surrogate)
    xg = x.clone().requires_grad_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the one-time fallback notice
        z, _ = neuron(xg)
    (gx,) = torch.autograd.grad((z * w).sum(), [xg])
    z_ref, gx_ref = _manual_grad(x, w, 0.8, 0.7, surrogate)
    assert torch.equal(z.detach(), z_ref)
    assert 0 < z_ref.sum() < z_ref.numel()
    torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=1e-6)


def test_builtin_surrogates_keep_their_kernel():
    for cls in sg.ALL:
        assert sg.kernel_id_of(cls()) == cls.kernel_id
    assert sg.kernel_id_of(Gaussian()) is None
    assert sg.kernel_id_of(SteeperFastSigmoid()) is None
    patched = sg.ATan()
    patched.grad = lambda x: torch.ones_like(x)
    assert sg.kernel_id_of(patched) is None


def test_custom_surrogate_fallback_is_said(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "auto")
    neuron = ns.LIF(surrogate=Gaussian(1.5))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        neuron(torch.rand(3, 2, 4))
    reasons = registry.fallbacks()["lif_sequence"]
    assert any("Gaussian(1.5)" in k and k.startswith("cpu:") for k in reasons)
    impl = {(op, dev): impl for op, dev, impl in registry.table()}[("lif_sequence", "cpu")]
    assert "built-in surrogates" in impl and "Gaussian(1.5)" in impl


def test_custom_surrogate_strict_mode_refuses(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    with pytest.raises(ns.errors.KernelUnavailableError, match="surrogate Gaussian"):
        ns.LIF(surrogate=Gaussian())(torch.rand(3, 2, 4))


def test_kernels_refuse_unknown_surrogate_ids():
    from neurosparse.kernels import lif_cpu

    with pytest.raises(ValueError, match="surrogate id -1"):
        lif_cpu.get_kernels(0, 1, 1, 0, 0, 0, 0, -1)
