"""Active dendrites: the Numba segment kernel against its torch reference, and the layer
against the formula of Iyer et al. 2022 written out by hand."""

from __future__ import annotations

import pytest
import torch

from neurosparse.errors import DTypeError, InputValueError, ShapeError
from neurosparse.ops.sdr_dendrites import (
    _SegmentActivation,
    segment_activation,
    segment_activation_reference,
)
from neurosparse.sdr import DendriticLinear


def _context(m, d, density, gen, dtype=torch.float32):
    c = torch.randn(m, d, generator=gen, dtype=dtype)
    return c * (torch.rand(m, d, generator=gen) < density).to(dtype)


@pytest.mark.parametrize("select", ["absmax", "max"])
@pytest.mark.parametrize("density", [1.0, 0.1, 0.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_forward_and_gradients_match_reference(select, density, dtype):
    g = torch.Generator().manual_seed(int(density * 10) + (select == "max"))
    c = _context(9, 33, density, g, dtype).requires_grad_()
    w = torch.randn(7, 5, 33, generator=g, dtype=dtype).requires_grad_()
    v, i = _SegmentActivation.apply(c, w, select == "absmax")
    c2, w2 = c.detach().clone().requires_grad_(), w.detach().clone().requires_grad_()
    v_ref, i_ref = segment_activation_reference(c2, w2, select)
    if density > 0:  # all-zero context: every segment ties at 0 → index 0 in both
        assert torch.equal(i, i_ref)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert torch.allclose(v, v_ref, atol=tol)
    gv = torch.randn(9, 7, generator=g, dtype=dtype)
    (v * gv).sum().backward()
    (v_ref * gv).sum().backward()
    assert torch.allclose(c.grad, c2.grad, atol=tol)
    assert torch.allclose(w.grad, w2.grad, atol=tol)


def test_kernel_gradcheck_float64():
    g = torch.Generator().manual_seed(5)
    c = _context(4, 6, 0.5, g, torch.float64).requires_grad_()
    w = torch.randn(3, 4, 6, generator=g, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda c_, w_: _SegmentActivation.apply(c_, w_, True)[0], (c, w), eps=1e-6, atol=1e-6
    )


def _path(value):
    return "kernel" if "SegmentActivation" in type(value.grad_fn).__name__ else "torch"


@pytest.mark.parametrize(
    ("mode", "density", "expected"),
    [("auto", 0.1, "kernel"), ("auto", 1.0, "torch"), ("numba", 1.0, "kernel"),
     ("torch", 0.1, "torch")],
)  # fmt: skip
def test_dispatch_by_env_and_context_density(monkeypatch, mode, density, expected):
    g = torch.Generator().manual_seed(2)
    c = _context(6, 40, density, g)
    c[:, 0] = 1.0  # at least one non-zero per row
    w = torch.randn(4, 2, 40, generator=g, requires_grad=True)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", mode)
    v, _ = segment_activation(c, w)
    assert _path(v) == expected
    v_ref, _ = segment_activation_reference(c, w)
    assert torch.allclose(v, v_ref, atol=1e-5)


def test_hand_case_gate_absmax_picks_negative_segment():
    layer = DendriticLinear(2, 1, num_segments=2, context_dim=2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0]]))
        layer.segments.copy_(torch.tensor([[[0.5, 0.0], [-3.0, 0.0]]]))
    x = torch.tensor([[1.0, 1.0]])
    out = layer(x, torch.tensor([[1.0, 0.0]]))
    # y = 3; segments 0.5 and −3 → |−3| wins → 3·σ(−3)
    assert out.item() == pytest.approx(3.0 * torch.sigmoid(torch.tensor(-3.0)).item(), rel=1e-6)
    assert layer.last_segment_index.item() == 1
    biasing = DendriticLinear(2, 1, 2, 2, mode="bias", bias=False)
    with torch.no_grad():
        biasing.weight.copy_(layer.weight)
        biasing.segments.copy_(layer.segments)
    assert biasing(x, torch.tensor([[1.0, 0.0]])).item() == pytest.approx(3.5)  # 3 + max(0.5, −3)


def test_layer_matches_explicit_formula_with_time_first_broadcast_context():
    torch.manual_seed(0)
    layer = DendriticLinear(12, 6, num_segments=4, context_dim=10, dendrite_sparsity=0.5)
    x = torch.randn(3, 2, 12, requires_grad=True)  # [T, B, in]
    ctx = torch.randn(2, 10)  # one context per batch element, shared over time
    out = layer(x, ctx)
    segs = layer.segments * layer.segment_mask
    d = torch.einsum("bd,usd->bus", ctx, segs)  # [B, U, S]
    best = d.gather(-1, d.abs().argmax(-1, keepdim=True)).squeeze(-1)
    ref = (x @ layer.weight.t() + layer.bias) * torch.sigmoid(best)  # broadcast over T
    assert torch.allclose(out, ref, atol=1e-5)
    assert layer.last_segment_index.shape == (3, 2, 6)


def test_sparsity_mask_survives_training_and_segments_learn():
    torch.manual_seed(1)
    layer = DendriticLinear(5, 4, 3, 8, dendrite_sparsity=0.75)
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    x, ctx = torch.randn(16, 5), torch.randn(16, 8)
    before = layer.segments.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        layer(x, ctx).pow(2).sum().backward()
        opt.step()
    eff = layer.effective_segments().detach()
    assert torch.all(eff[layer.segment_mask == 0] == 0)
    assert not torch.allclose(eff, before * layer.segment_mask)


def test_op_counts_are_exact():
    layer = DendriticLinear(4, 3, num_segments=2, context_dim=5)
    ctx = torch.tensor([[1.0, 0, 0, 0, 2.0]])  # 2 non-zeros, shared by 6 samples
    layer(torch.ones(6, 4), ctx.expand(6, 5))
    c = layer.op_counts()
    assert c["macs"] == 6 * 4 * 3 + 6 * 2 * 3 * 2
    assert c["dense_macs"] == 6 * 3 * (4 + 2 * 5)
    assert c["events_in"] == 24


def test_op_counts_skip_the_fixed_sparse_segment_weights():
    """With dendrite_sparsity, a context entry meets only the segment weights the mask
    keeps: one MAC per (non-zero context entry, non-zero segment weight in its column)."""
    torch.manual_seed(0)
    layer = DendriticLinear(4, 3, num_segments=2, context_dim=5, dendrite_sparsity=0.6)
    ctx = torch.tensor([[1.0, 0, 0, 0, 2.0], [0, 3.0, 0, 0, 0]])
    layer(torch.ones(2, 4), ctx)
    kept = layer.segment_mask  # [U, S, D]
    assert 0 < kept.sum() < kept.numel()
    per_column = kept.sum(dim=(0, 1))
    want = 2 * 4 * 3 + int(per_column[0] + per_column[4] + per_column[1])
    assert layer.op_counts()["macs"] == want


def test_errors_name_the_argument():
    layer = DendriticLinear(4, 3, 2, 5)
    with pytest.raises(ShapeError, match="context"):
        layer(torch.ones(2, 4), torch.ones(2, 6))
    with pytest.raises(DTypeError, match="context"):
        segment_activation(torch.ones(2, 5), torch.ones(3, 2, 5, dtype=torch.float64))


@pytest.mark.parametrize("select", ["absmax", "max"])
def test_kernel_mode_follows_argmax_on_nan_activations(select, monkeypatch):
    # torch.argmax counts NaN as the largest value (first one wins); the kernel's plain
    # ">" skips NaN, so a unit whose segments were all NaN got segment 0 with the value
    # 0 (a gate of sigmoid(0) = 0.5, silently) while the reference gave NaN: the op
    # hands NaN inputs to the reference, also where the kernel is asked for
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    gen = torch.Generator().manual_seed(5)
    weights = torch.randn(3, 4, 6, generator=gen)
    context = _context(5, 6, 0.6, gen)
    context[1, 0] = float("nan")  # NaN · w is NaN for every w, 0 included: all of row 1
    v_k, i_k = segment_activation(context, weights, select)
    v_r, i_r = segment_activation_reference(context, weights, select)
    assert torch.equal(i_k, i_r)
    assert torch.allclose(v_k, v_r, atol=1e-6, equal_nan=True)
    assert i_k[1].tolist() == [0, 0, 0] and bool(v_k[1].isnan().all())
    assert not bool(v_k[[0, 2, 3, 4]].isnan().any())


def test_layer_refuses_a_nan_context():
    layer = DendriticLinear(3, 2, num_segments=2, context_dim=2)
    with pytest.raises(InputValueError, match="context"):
        layer(torch.randn(1, 3), torch.tensor([[float("nan"), 0.0]]))
