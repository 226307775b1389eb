"""The fused Numba sequence kernel equals the reference step loop: spikes, state, gradients."""

import itertools

import pytest
import torch

import neurosparse as ns
from neurosparse.neurons import surrogate as sg
from neurosparse.ops import registry

T, B, N = 40, 3, 37  # odd sizes: blocks do not divide evenly


def _make(kind: str, reset: str, surrogate, learn: bool):
    if kind == "lif":
        return ns.LIF(0.8, 0.7, reset, surrogate, learn_beta=learn, learn_threshold=learn)
    if kind == "lif_now":
        return ns.LIF(0.8, 0.7, reset, surrogate, learn_beta=learn, learn_threshold=learn,
                      reset_delay=False)
    if kind == "if":
        return ns.IF(1.2, reset, surrogate, learn_threshold=learn)
    if kind == "alif":
        return ns.ALIF(0.85, 0.6, reset, surrogate, adapt=0.3, rho=0.9,
                       learn_beta=learn, learn_threshold=learn)
    if kind == "alif_now":
        return ns.ALIF(0.85, 0.6, reset, surrogate, adapt=0.3, rho=0.9, reset_delay=False,
                       learn_beta=learn, learn_threshold=learn)
    if kind == "refractory":
        return ns.LIF(0.8, 0.5, reset, surrogate, refractory=2, learn_beta=learn,
                      learn_threshold=learn)
    if kind == "cuba":
        return ns.CubaLIF(surrogate=surrogate, v_reset=0.1 if reset == "zero" else 0.0,
                          learn_threshold=learn)
    raise AssertionError(kind)


def _run(neuron, x, v0, w, wv, mode, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", mode)
    x = x.clone().requires_grad_()
    v0 = v0.clone().requires_grad_()
    st = neuron.initial_state(x[0])._replace(v=v0)
    z, out = neuron(x, st)
    loss = (z * w).sum() + (out.v * wv).sum() + (out.i * wv).sum()
    params = [p for p in neuron.parameters()]
    grads = torch.autograd.grad(loss, [x, v0, *params])
    return z.detach(), out, grads


KINDS = ["lif", "lif_now", "if", "alif", "alif_now", "refractory"]
SURROGATES = [sg.FastSigmoid(5.0), sg.ATan(2.0), sg.Triangle(0.8), sg.StraightThrough(),
              sg.SuperSpike(10.0), sg.Sigmoid(4.0)]


@pytest.mark.parametrize(
    "kind,reset", list(itertools.product(KINDS, ["subtract", "zero", "none"]))
    + [("cuba", "zero")]
)
@pytest.mark.parametrize("surrogate", SURROGATES, ids=lambda s: repr(s))
def test_kernel_matches_reference(kind, reset, surrogate, monkeypatch):
    torch.manual_seed(sum(map(ord, kind + reset + repr(surrogate))))
    learn = True
    neuron = _make(kind, reset, surrogate, learn)
    scale = 6.0 if kind == "cuba" else 0.9
    x = torch.rand(T, B, N) * scale - 0.1 * scale
    w = torch.randn(T, B, N)
    wv = torch.randn(B, N)
    v0 = torch.rand(B, N) * 0.5
    z_k, s_k, g_k = _run(neuron, x, v0, w, wv, "numba", monkeypatch)
    z_r, s_r, g_r = _run(neuron, x, v0, w, wv, "torch", monkeypatch)
    assert 0 < z_r.sum() < z_r.numel()  # some spikes, not all
    assert torch.equal(z_k, z_r)
    for a, b in zip(s_k, s_r):
        assert torch.allclose(a, b, atol=1e-6)
    assert len(g_k) >= 3
    for a, b in zip(g_k, g_r):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5), (a - b).abs().max()


def test_registry_switch(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    assert registry.use_kernel("lif_sequence", "cpu")
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    assert not registry.use_kernel("lif_sequence", "cpu")
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    with pytest.raises(ns.errors.KernelUnavailableError, match="cuda"):
        registry.use_kernel("lif_sequence", "cuda")
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "fast")
    with pytest.raises(ns.errors.ParameterError, match="NEUROSPARSE_KERNELS"):
        registry.use_kernel("lif_sequence", "cpu")


def test_feature_maps_and_per_neuron_beta(monkeypatch):
    """[T, B, C, H, W] input with a per-channel beta broadcast over H, W."""
    torch.manual_seed(5)
    beta = torch.tensor([0.5, 0.9, 0.99]).view(3, 1, 1)
    neuron = ns.LIF(beta, 0.8)
    x = torch.rand(20, 2, 3, 4, 5)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    z_k, _ = neuron(x)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    z_r, _ = neuron(x)
    assert torch.equal(z_k, z_r)
    rates = z_r.mean(dim=(0, 1, 3, 4))
    assert rates[0] < rates[1] < rates[2]  # less leak, more spikes


def test_hand_computed_lif():
    """beta = 0.5, threshold 1, subtract, delayed reset (snnTorch convention)."""
    x = torch.tensor([0.6, 0.6, 0.6, 0.0, 0.0]).view(5, 1, 1)
    z, _ = ns.LIF(0.5, 1.0)(x)
    # U: 0.6, 0.9, 1.05 (spike), 0.525 - 1 = -0.475, -0.2375
    assert z.flatten().tolist() == [0.0, 0.0, 1.0, 0.0, 0.0]
    lif = ns.LIF(0.5, 1.0)
    vs = [lif.step(x[t])[1].v.item() for t in range(5)]
    assert vs == pytest.approx([0.6, 0.9, 1.05, -0.475, -0.2375], abs=1e-6)


def test_refractory_blocks_spikes():
    x = torch.full((10, 1, 1), 2.0)
    z, _ = ns.LIF(0.9, 1.0, "zero", refractory=2)(x)
    assert z.flatten().tolist() == [1, 0, 0, 1, 0, 0, 1, 0, 0, 1]


def test_alif_threshold_adapts():
    x = torch.full((200, 1, 1), 0.3)
    z_lif, _ = ns.LIF(0.9, 1.0)(x)
    z_alif, _ = ns.ALIF(0.9, 1.0, adapt=0.5, rho=0.95)(x)
    assert z_alif.sum() < z_lif.sum()
    assert z_alif.sum() > 0


def test_half_input_keeps_an_fp32_membrane(monkeypatch):
    # what autocast hands a neuron: the kernel integrates in fp32, spikes come back in
    # the input's dtype and equal the fp32 run's; a bf16 membrane (the reference loop
    # run in bf16) crosses the threshold at other steps, which is why none is offered
    torch.manual_seed(0)
    x = torch.rand(20, 4, 64).bfloat16()
    lif = ns.LIF(0.9)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    z, _ = lif(x)
    z32, _ = lif(x.float())
    assert z.dtype == torch.bfloat16
    assert torch.equal(z.float(), z32)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    z_bf16_membrane, _ = lif(x)
    assert not torch.equal(z_bf16_membrane.float(), z32)
