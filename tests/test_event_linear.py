"""EventLinear equals nn.Linear (forward and every gradient) on the CPU kernel and the
torch reference, at activity 0 / 1% / 10% / 100%, with and without bias, odd shapes.

Tolerance: float32 sums in another order differ from nn.Linear by a few ulps of the
largest value, so results must agree within 1e-5 × max(1, max|reference|).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import neurosparse as ns
from neurosparse.kernels import event_index as ei
from neurosparse.kernels import event_linear as kl
from neurosparse.layers.event_linear import EventLinear, event_linear
from neurosparse.ops import event_linear as ops

RATES = [0.0, 0.01, 0.1, 1.0]


def assert_f32_close(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape
    a, b = a.detach(), b.detach()
    tol = 1e-5 * max(1.0, float(b.abs().max()) if b.numel() else 1.0)
    err = float((a - b).abs().max()) if a.numel() else 0.0
    assert err <= tol, f"max error {err:.3g} > {tol:.3g}"


def spikes(shape, rate, graded, gen):
    mask = torch.rand(shape, generator=gen) < rate
    vals = torch.randn(shape, generator=gen) if graded else torch.ones(shape)
    return (mask * vals).float()


@pytest.fixture(params=["numba", "torch"])
def kernels(request, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", request.param)
    return request.param


def _compare(layer: torch.nn.Module, x: torch.Tensor, per_step: bool = False) -> None:
    """``layer`` (an event Linear or Conv2d) against its ``to_dense()`` twin: output and
    the gradients of input, weight and bias. ``per_step``: ``x`` is ``[T, B, ...]`` and
    the dense layer takes ``[B, ...]`` (nn.Conv2d), so it runs on the flattened steps."""
    ref = layer.to_dense()
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    y = layer(xa)
    y_ref = ref(xb.flatten(0, 1)).unflatten(0, x.shape[:2]) if per_step else ref(xb)
    assert_f32_close(y, y_ref)
    g = torch.randn_like(y_ref)
    params = [p for p in (layer.weight, layer.bias) if p is not None]
    params_ref = [p for p in (ref.weight, ref.bias) if p is not None]
    grads = torch.autograd.grad(y, [xa, *params], g)
    grads_ref = torch.autograd.grad(y_ref, [xb, *params_ref], g)
    for got, want in zip(grads, grads_ref):
        assert_f32_close(got, want)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("graded", [False, True])
def test_matches_nn_linear(kernels, rate, bias, graded):
    gen = torch.Generator().manual_seed(int(rate * 1000) + 7 * bias + 3 * graded)
    torch.manual_seed(11)
    layer = EventLinear(203, 37, bias=bias, mode="event")
    x = spikes((3, 4, 203), rate, graded, gen)
    _compare(layer, x)
    assert layer.last_path == "event"


@pytest.mark.parametrize("shape", [(1, 1), (17, 300), (300, 17), (5, 513)])
def test_odd_shapes_and_single_step(kernels, shape):
    n_in, n_out = shape
    torch.manual_seed(3)
    layer = EventLinear(n_in, n_out, mode="event")
    gen = torch.Generator().manual_seed(5)
    _compare(layer, spikes((7, n_in), 0.3, True, gen))  # [B, in]: one step
    _compare(layer, spikes((2, 3, n_in), 0.3, False, gen))


def test_wide_output_spans_several_tiles():
    # More output columns than one 256-wide tile, with a ragged last tile.
    torch.manual_seed(0)
    layer = EventLinear(64, 700, mode="event")
    _compare(layer, spikes((2, 9, 64), 0.2, True, torch.Generator().manual_seed(1)))


def test_float64_runs_the_reference():
    torch.manual_seed(0)
    layer = EventLinear(19, 23, mode="event", dtype=torch.float64)
    x = spikes((3, 2, 19), 0.3, True, torch.Generator().manual_seed(2)).double()
    y = layer(x)
    assert y.dtype == torch.float64
    torch.testing.assert_close(y, layer.to_dense()(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["dense", "auto"])
def test_other_modes_give_the_same_result(mode):
    torch.manual_seed(0)
    layer = EventLinear(50, 30, mode=mode)
    _compare(layer, spikes((4, 3, 50), 0.05, False, torch.Generator().manual_seed(4)))


def test_functional_form_and_from_dense_state_dict():
    torch.manual_seed(0)
    lin = nn.Linear(31, 12)
    ev = EventLinear.from_dense(lin)
    assert set(ev.state_dict()) == set(lin.state_dict())
    x = spikes((5, 2, 31), 0.2, False, torch.Generator().manual_seed(9))
    assert_f32_close(event_linear(x, lin.weight, lin.bias, mode="event"), lin(x))
    lin2 = nn.Linear(31, 12)
    lin2.load_state_dict(ev.state_dict())
    assert_f32_close(lin2(x), lin(x))
    assert ev.to_dense().weight.data_ptr() != ev.weight.data_ptr()


def test_weight_cache_follows_optimizer_updates():
    # The CPU kernel gathers from a cached packed copy of the weight: an optimizer
    # step (in-place, bumps the version counter) must be seen by the next call.
    torch.manual_seed(0)
    layer = EventLinear(40, 20, mode="event")
    x = spikes((3, 2, 40), 0.3, False, torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(layer.parameters(), lr=0.5)
    for _ in range(3):
        y = layer(x)
        assert_f32_close(y, layer.to_dense()(x))
        opt.zero_grad()
        y.square().sum().backward()
        opt.step()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(20, 40))
    assert_f32_close(layer(x), layer.to_dense()(x))


@pytest.mark.parametrize("write", ["data_inplace", "data_assign", "data_slice"])
def test_weight_writes_through_data_are_seen(write):
    # pruning / rewiring / loading code writes through .data, which bumps no version
    # counter: a packed copy keyed on (data_ptr, _version) used to go stale here
    from neurosparse.layers.event_linear_lif import event_linear_lif

    torch.manual_seed(0)
    layer = EventLinear(40, 20, mode="event")
    x = spikes((3, 2, 40), 0.3, False, torch.Generator().manual_seed(0))
    lif = ns.LIF(0.9)
    with torch.no_grad():
        layer(x)
        event_linear_lif(x, layer, lif)  # the fused CPU path reads the weight too
        new = torch.randn(20, 40) * 3
        if write == "data_inplace":
            layer.weight.data.copy_(new)
        elif write == "data_assign":
            layer.weight.data = new.clone()
        else:
            layer.weight.data[:, :20] = 0
            new = layer.weight.detach().clone()
        assert_f32_close(layer(x), torch.nn.functional.linear(x, new, layer.bias))
        z, _ = event_linear_lif(x, layer, lif)
        z_ref, _ = lif(torch.nn.functional.linear(x, new, layer.bias))
        assert torch.equal(z, z_ref)


def test_sequential_with_neuron_tuple_output():
    import neurosparse as ns

    if not hasattr(ns, "LIF"):
        pytest.skip("neurosparse.LIF is not exported in this checkout")
    torch.manual_seed(0)
    net = nn.Sequential(EventLinear(30, 20, mode="event"), ns.LIF(beta=0.9),
                        EventLinear(20, 5, mode="event"))  # fmt: skip
    x = spikes((6, 2, 30), 0.3, False, torch.Generator().manual_seed(1))
    out = net(x)
    hidden, _ = net[1](net[0].to_dense()(x))
    assert_f32_close(out, net[2].to_dense()(hidden))
    if hasattr(ns, "Sequential"):  # the example: out, _ = net(spikes)
        out2, _ = ns.Sequential(*net)(x)
        assert_f32_close(out2, out)


# -- kernel level -------------------------------------------------------------------------
def test_csr_builder_matches_numpy_nonzero():
    rng = np.random.default_rng(0)
    x = ((rng.random((13, 70)) < 0.2) * rng.standard_normal((13, 70))).astype(np.float32)
    counts, unit, graded, bad = ei.scan_rows(x.reshape(13, 1, 1, 70))
    assert bad == -1
    rowptr, idx, val = ei.csr_from_counts(x.reshape(13, 1, 1, 70), counts)
    rows, cols = np.nonzero(x)
    np.testing.assert_array_equal(np.diff(rowptr), np.bincount(rows, minlength=13))
    np.testing.assert_array_equal(idx, cols)
    np.testing.assert_array_equal(val, x[rows, cols])
    colptr, r_t, v_t = ei.csr_transpose(rowptr, idx, val, 70)
    rows_t, cols_t = np.nonzero(x.T)
    np.testing.assert_array_equal(r_t, cols_t)
    np.testing.assert_array_equal(v_t, x.T[rows_t, cols_t])
    np.testing.assert_array_equal(np.diff(colptr), np.bincount(rows_t, minlength=70))


def test_gather_kernel_transposed_output():
    rng = np.random.default_rng(1)
    x = ((rng.random((9, 40)) < 0.3) * rng.standard_normal((9, 40))).astype(np.float32)
    src = rng.standard_normal((40, 290)).astype(np.float32)
    counts = (x != 0).sum(1).astype(np.int32)
    rowptr, idx, val = ei.csr_from_counts(x.reshape(9, 1, 1, 40), counts)
    tiles = kl.pack_rows(src)
    out = np.empty((290, 9), np.float32)
    kl.gather_rows(rowptr, idx, val, tiles, tiles.shape[2], kl.padded_bias(None, tiles), out,
                   True)  # fmt: skip
    np.testing.assert_allclose(out, (x @ src).T, rtol=1e-5, atol=1e-5)


def test_reference_and_kernel_share_the_index_contract():
    x = spikes((4, 25), 0.3, True, torch.Generator().manual_seed(3))
    w = torch.randn(6, 25)
    scan = ops.scan_linear(x)
    assert scan.nnz == int((x != 0).sum()) and scan.unit == 0
    idx_k = ops.index_linear(x, scan)
    idx_t = ops.index_linear(x, ops.LinearScan(4, 25, scan.nnz, 0, "torch"))
    assert_f32_close(ops._forward(x, w, None, idx_k), ops.reference_forward(idx_t, w, None))


@pytest.mark.parametrize("n_out", [300, 4100])
def test_tiled_copy_of_the_weight_gives_the_in_place_result_bit_for_bit(monkeypatch, n_out):
    # the CPU gathers read a tiled copy of Wᵀ when each weight row is reused often
    # (ops.event_linear.PACK_REUSE); the sums run in the same order, so equal bits
    torch.manual_seed(3)
    layer = EventLinear(64, n_out, mode="event")
    x = (torch.rand(40, 64) < 0.4).float() * torch.randn(40, 64)
    with torch.no_grad():
        monkeypatch.setattr(ops, "PACK_REUSE", 10**9)
        in_place = layer(x)
        monkeypatch.setattr(ops, "PACK_REUSE", 0)
        tiled = layer(x)
    assert torch.equal(in_place, tiled)
    torch.testing.assert_close(tiled, nn.functional.linear(x, layer.weight, layer.bias),
                               rtol=1e-5, atol=1e-5)  # fmt: skip


def test_cuda_weight_words_only_where_a_view_can_read_them():
    # the wide CUDA gather reads Wᵀ as int64 words; _as_words must refuse (None) every
    # layout torch's view() would reject, not raise: a [N, 1] weight's transpose has
    # strides (1, 1) and counts as contiguous
    from neurosparse.ops.event_linear import _as_words

    assert _as_words(torch.randn(8, 1).t(), 2) is None
    wt = torch.randn(8, 6).t().contiguous()  # [6, 8], as EventLinear stores Wᵀ
    words = _as_words(wt, 2)
    assert words.shape == (6, 4) and torch.equal(words.view(torch.float32), wt)
    assert _as_words(torch.randn(6, 6), 4) is None  # width not a multiple of the word
    shifted = torch.randn(6 * 8 + 1)[1:].view(6, 8)  # storage offset of one element
    assert _as_words(shifted, 2) is None
    assert _as_words(torch.randn(8, 6).t(), 2) is None  # strided
    bits = torch.randn(6, 8).bfloat16().view(torch.int16)
    assert torch.equal(_as_words(bits, 4).view(torch.int16), bits)
