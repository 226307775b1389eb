"""SparseEventLinear: Numba kernel, torch reference and the masked nn.Linear agree.

Forward and every gradient (input, existing synapses' values, bias) within 1e-5, at
several input rates (0 and 5% take the kernel's event walk, 30% and 100% its ELL row
walk), binary and graded events; synops against a hand count.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurosparse.errors import InputValueError, ParameterError, ShapeError
from neurosparse.layers.sparse_event_linear import SparseEventLinear, dense_weight

N_IN, N_OUT = 37, 23


def _events(shape, rate, graded, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=g) < rate).float()
    if graded:
        x = x * torch.randn(shape, generator=g)
    return x


def _run(layer, x, gy, kernels, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", kernels)
    layer.zero_grad()
    x = x.clone().requires_grad_(True)
    y = layer(x)
    y.backward(gy)
    return y.detach(), x.grad, layer.values.grad.clone(), layer.bias.grad.clone()


def _dense(layer, x, gy):
    lin = layer.to_dense()
    x = x.clone().requires_grad_(True)
    y = lin(x)
    y.backward(gy)
    # gradient of the existing synapses = the dense gradient read at their positions
    gv = lin.weight.grad.gather(1, layer.indices.long())
    return y.detach(), x.grad, gv, lin.bias.grad


@pytest.mark.parametrize("rate", [0.0, 0.05, 0.3, 1.0])
@pytest.mark.parametrize("graded", [False, True])
def test_kernel_reference_dense_agree(rate, graded, monkeypatch):
    layer = SparseEventLinear(N_IN, N_OUT, density=0.2, seed=1)
    x = _events((3, 4, N_IN), rate, graded, seed=2)
    gy = torch.randn(3, 4, N_OUT, generator=torch.Generator().manual_seed(3))
    want = _dense(layer, x, gy)
    for kernels in ("numba", "torch"):
        got = _run(layer, x, gy, kernels, monkeypatch)
        for a, b in zip(got, want, strict=True):
            assert a.shape == b.shape
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_constant_fan_in_layout():
    layer = SparseEventLinear(50, 8, density=0.1)
    assert layer.indices.shape == (8, 5) and layer.indices.dtype == torch.int32
    assert layer.values.shape == (8, 5)
    for row in layer.indices:
        assert len(set(row.tolist())) == 5
    # the dense equivalent has exactly k non-zeros per row (weights are almost surely != 0)
    assert (dense_weight(layer.indices, layer.values, 50) != 0).sum(1).tolist() == [5] * 8


def test_gradients_only_for_existing_synapses(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    layer = SparseEventLinear(N_IN, N_OUT, density=0.2)
    layer(_events((5, N_IN), 0.5, False, 0)).sum().backward()
    assert layer.values.grad.shape == layer.values.shape
    assert [n for n, p in layer.named_parameters()] == ["values", "bias"]


def test_synops_hand_count(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    layer = SparseEventLinear(4, 3, density=0.5, bias=False)
    with torch.no_grad():
        layer.indices.copy_(torch.tensor([[0, 1], [0, 2], [0, 3]], dtype=torch.int32))
    # fan-out: input 0 feeds 3 outputs, inputs 1, 2, 3 feed 1 each
    x = torch.tensor([[1.0, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]])
    layer(x)
    c = layer.op_counts()
    assert c["synops"] == (3 + 1) + (1 + 1) + (3 + 1)
    assert c["macs"] == 0
    assert c["events_in"] == 6 and c["inputs_in"] == 12
    assert c["dense_macs"] == 3 * 4 * 3
    layer.reset_counters()
    layer(torch.tensor([[0.5, 0, 2.0, 1.0]]))  # graded 0.5, 2.0; one spike
    c = layer.op_counts()
    assert (c["synops"], c["macs"]) == (1, 3 + 1)


def test_time_first_and_one_step_shapes(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    layer = SparseEventLinear(N_IN, N_OUT, density=0.3)
    x = _events((2, 3, N_IN), 0.4, False, 5)
    torch.testing.assert_close(layer(x)[1], layer(x[1]), atol=1e-6, rtol=0)


def test_bad_input_and_parameters():
    layer = SparseEventLinear(N_IN, N_OUT)
    with pytest.raises(ShapeError, match="in_features=37"):
        layer(torch.zeros(2, 5))
    with pytest.raises(InputValueError, match="NaN"):
        layer(torch.full((2, N_IN), float("nan")))
    with pytest.raises(ParameterError, match="density"):
        SparseEventLinear(4, 4, density=0.0)
    with pytest.raises(ParameterError, match="fan_in"):
        SparseEventLinear(4, 4, fan_in="erk")
    with torch.no_grad():
        layer.indices[0, 0] = N_IN
    with pytest.raises(InputValueError, match="indices"):
        layer(torch.zeros(2, N_IN))


def test_matches_nn_linear_in_training_step(monkeypatch):
    """One SGD step on the sparse layer equals one on the dense copy, read at the synapses."""
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    layer = SparseEventLinear(N_IN, N_OUT, density=0.25, seed=4)
    lin = layer.to_dense()
    x = _events((6, N_IN), 0.2, False, 6)
    for m in (layer, lin):
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        nn.functional.mse_loss(m(x), torch.ones(6, N_OUT)).backward()
        opt.step()
    torch.testing.assert_close(layer.values.detach(),
                               lin.weight.detach().gather(1, layer.indices.long()),
                               atol=1e-6, rtol=1e-5)  # fmt: skip


def test_numba_mode_runs_the_kernel_paths(monkeypatch):
    """Sparse inputs take the event walk, dense-ish ones the ELL row walk
    (both held to the reference by test_kernel_reference_dense_agree's rates)."""
    from neurosparse.kernels import sparse_event_linear as k
    from neurosparse.layers.sparse_event_linear import GATHER_RATE

    calls = []
    for name in ("forward", "forward_rows", "forward_csc"):
        real = getattr(k, name)
        monkeypatch.setattr(k, name, lambda *a, _f=real, _n=name: calls.append(_n) or _f(*a))
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    layer = SparseEventLinear(N_IN, N_OUT).eval()  # the per-input copy: eval mode only
    layer(torch.ones(2, N_IN))
    x = torch.zeros(2, N_IN)
    x[0, : int(GATHER_RATE * 2 * N_IN)] = 1  # rate just at the threshold: events
    layer(x)
    # the second event call on the same weights builds and uses the per-input copy
    layer(x)
    assert calls == ["forward_rows", "forward", "forward_csc"]


# -- group-to-group (G2GNet) initial connectivity ----------------------------------------
def test_random_connectivity_is_the_previous_draw():
    """The default draw is unchanged: k smallest of one uniform [out, in] matrix."""
    layer = SparseEventLinear(N_IN, N_OUT, density=0.2, seed=4)
    g = torch.Generator().manual_seed(4)
    want = torch.rand(N_OUT, N_IN, generator=g).argsort(1)[:, :7].sort(1).values
    assert layer.indices.tolist() == want.tolist()


@pytest.mark.parametrize(("n_in", "n_out", "groups", "density"),
                         [(40, 12, 4, 0.2), (37, 23, 5, 0.1), (64, 256, 4, 0.05)])  # fmt: skip
def test_group_connectivity_stays_in_the_group(n_in, n_out, groups, density):
    layer = SparseEventLinear(n_in, n_out, density=density, seed=1, connectivity="groups",
                              groups=groups)  # fmt: skip
    k = round(density * n_in)
    assert layer.indices.shape == (n_out, k) and layer.indices.dtype == torch.int32
    for o, row in enumerate(layer.indices.tolist()):
        g = o * groups // n_out  # contiguous groups: unit i of n in floor(i · G / n)
        lo, hi = -(-g * n_in // groups), -(-(g + 1) * n_in // groups)  # input group g
        assert k <= hi - lo
        assert row == sorted(set(row)) and len(row) == k  # sorted, distinct
        assert all(lo <= i < hi for i in row), (o, row, lo, hi)
    # the draw inside a group is random: not every output of a group reads the same inputs
    assert len({tuple(r) for r in layer.indices.tolist()}) > groups


def test_group_connectivity_spills_to_ring_neighbours():
    """k = 12 > group width 10 (40 inputs, 4 groups): the whole own group, then 2 of
    the next group forward on the ring (g + 1 mod 4)."""
    layer = SparseEventLinear(40, 8, density=0.3, seed=2, connectivity="groups", groups=4)
    for o, row in enumerate(layer.indices.tolist()):
        g = o // 2
        own = set(range(10 * g, 10 * g + 10))
        nxt = set(range(10 * ((g + 1) % 4), 10 * ((g + 1) % 4) + 10))
        assert own <= set(row) and len(set(row) & nxt) == 2 and len(set(row)) == 12


def test_group_connectivity_errors():
    with pytest.raises(ParameterError, match="connectivity"):
        SparseEventLinear(8, 8, connectivity="modular")
    with pytest.raises(ParameterError, match="groups"):
        SparseEventLinear(8, 8, connectivity="groups")
    with pytest.raises(ParameterError, match="groups"):
        SparseEventLinear(8, 4, connectivity="groups", groups=5)  # more groups than outputs
    with pytest.raises(ParameterError, match="groups"):
        SparseEventLinear(8, 4, connectivity="groups", groups=0)
    with pytest.raises(ParameterError, match="only used with connectivity='groups'"):
        SparseEventLinear(8, 4, groups=2)


# -- fast CPU paths (issue 13): vectorised row walk, uint16 indices, per-input weights ----
@pytest.mark.parametrize("rows", [1, 3, 11, 12, 16, 17, 40])
def test_fast_row_walk_equals_reference(rows):
    """forward_rows / forward_rows_parallel with int32 and uint16 indices, every row-block
    split (single rows, padded block, full blocks + leftovers) against F.linear."""
    import numpy as np

    from neurosparse.kernels import sparse_event_linear as k

    layer = SparseEventLinear(70, 45, density=0.3, seed=rows)
    x = _events((rows, 70), 0.6, True, rows)
    want = layer.to_dense()(x).detach().numpy()
    idx = layer.indices.numpy()
    idx16 = np.empty(idx.shape, np.uint16)
    k.compact_indices(idx, idx16)
    assert (idx16 == idx).all()
    v, b = layer.values.detach().numpy(), layer.bias.detach().numpy()
    for fn in (k.forward_rows, k.forward_rows_parallel):
        for ind in (idx, idx16):
            y = np.full((rows, 45), np.nan, np.float32)
            fn(x.numpy(), ind, v, b, y, *([2] if fn is k.forward_rows_parallel else []))
            np.testing.assert_allclose(y, want, atol=1e-5, rtol=1e-5)


def test_fast_event_walk_and_caches_follow_edits(monkeypatch):
    """Inference calls (no grad) reuse the cached uint16 indices and per-input weights;
    in-place edits of values or indices rebuild them (the version counter moves)."""
    from neurosparse.ops import sparse_event_linear as fast

    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    layer = SparseEventLinear(N_IN, N_OUT, density=0.3, seed=2).eval()
    x = _events((4, N_IN), 0.05, True, 8)
    with torch.no_grad():
        for step in range(3):
            for _ in range(2):  # the second call builds / uses the per-input copy
                torch.testing.assert_close(layer(x), layer.to_dense()(x), atol=1e-5, rtol=1e-5)
            assert layer._index_cache["compact"][1][0].dtype.name == "uint16"
            assert "csc_values" in layer._index_cache
            if step == 0:
                layer.values.mul_(-2.0)
            else:
                layer.indices.copy_(layer.indices.flip(1))  # same synapses, other slots
                layer.indices[0, 0] = (layer.indices[0, 0] + 1) % N_IN
        # the reference agrees after every edit, so stale copies would have failed
    from neurosparse.layers.sparse_event_linear import ell_index

    index = ell_index(layer.indices, N_IN)
    y = fast.cpu_forward(x, layer.values, None, layer.indices, index, None, 0.1)  # no cache
    torch.testing.assert_close(y, layer.to_dense()(x).detach() - layer.bias.detach(),
                               atol=1e-5, rtol=1e-5)  # fmt: skip


def test_weight_writes_the_version_counter_misses_are_seen(monkeypatch):
    """A fused optimizer step and an edit through ``values.data`` do not move the
    version counter; a per-input weight copy kept across them gave stale outputs (0.6
    to 1.2 off the dense layer). Train mode keeps no copy; eval() drops it."""
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    layer = SparseEventLinear(N_IN, N_OUT, density=0.2, seed=3)
    x = _events((1, N_IN), 0.2, True, 9)
    assert 0 < int((x != 0).sum()) <= 0.5 * N_IN  # events, at a rate the event walk takes
    opt = torch.optim.Adam(layer.parameters(), lr=0.1, fused=True)
    for _ in range(3):
        with torch.no_grad():
            layer(x)
            torch.testing.assert_close(layer(x), layer.to_dense()(x), atol=1e-5, rtol=1e-5)
        layer(x).square().sum().backward()
        opt.step()
        opt.zero_grad()
    with torch.no_grad():
        layer.values.data.mul_(2)
        torch.testing.assert_close(layer(x), layer.to_dense()(x), atol=1e-5, rtol=1e-5)
        layer.eval()
        for _ in range(2):  # the second call builds and uses the copy
            torch.testing.assert_close(layer(x), layer.to_dense()(x), atol=1e-5, rtol=1e-5)
        assert "csc_values" in layer._index_cache
        layer.values.data.mul_(-1)
        layer.eval()  # what the forward's docstring asks for after a .data edit
        for _ in range(2):
            torch.testing.assert_close(layer(x), layer.to_dense()(x), atol=1e-5, rtol=1e-5)
