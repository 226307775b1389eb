"""Rewiring: the REFERENCES §6 invariants, a hand-made Hebbian case, RigL's scores,
optimizer-state reset, and a small training run that still learns with rewiring."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurosparse.errors import ParameterError
from neurosparse.layers.sparse_event_linear import SparseEventLinear
from neurosparse.plasticity import Rewiring


def _net(seed=0):
    return nn.Sequential(
        SparseEventLinear(20, 32, density=0.25, seed=seed),
        nn.ReLU(),
        SparseEventLinear(32, 4, density=0.5, seed=seed + 1),
    )


def _task(n, seed):
    """4 classes, each a fixed random prototype in 20 dims plus noise."""
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(4, 20, generator=torch.Generator().manual_seed(99)) * 1.5
    y = torch.randint(0, 4, (n,), generator=g)
    return protos[y] + torch.randn(n, 20, generator=g), y


def _train_step(net, opt, x, y):
    opt.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()
    opt.step()


@pytest.mark.parametrize("grow", ["random", "hebbian", "gradient"])
def test_invariants(grow):
    net = _net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    rw = Rewiring(net, every=3, fraction=0.3, grow=grow, init=0.0, seed=1, optimizer=opt)
    x, y = _task(16, 0)
    for step in range(1, 4):
        before = [(m.indices.clone(), m.values.detach().clone()) for m in rw.layers]
        _train_step(net, opt, x, y)
        after_opt = [m.values.detach().clone() for m in rw.layers]
        cost = rw.step()
        if step < 3:
            assert cost is None
            continue
        total = 0
        for m, (idx0, _), w in zip(rw.layers, before, after_opt, strict=True):
            n_out, k = m.indices.shape
            n = round(0.3 * k)
            idx = m.indices
            assert idx.shape == idx0.shape  # nnz per row conserved exactly
            changed = idx != idx0
            assert changed.sum(1).tolist() == [n] * n_out
            total += n_out * n
            for r in range(n_out):
                row = idx[r].tolist()
                assert len(set(row)) == k  # no duplicates
                # the pruned synapses were the n smallest |w| and are gone from the row
                pruned = set(idx0[r][changed[r]].tolist())
                assert not pruned & set(row)
                kept_abs = w[r][~changed[r]].abs()
                assert w[r][changed[r]].abs().max() <= kept_abs.min()
                # grown ones are new inputs, at the documented value
                assert not set(idx[r][changed[r]].tolist()) & set(idx0[r].tolist())
            assert (m.values.detach()[changed] == 0.0).all()
            assert (m.values.detach()[~changed] == w[~changed]).all()
            # Adam's moments of the rewired slots are reset
            st = opt.state[m.values]
            assert (st["exp_avg"][changed] == 0).all() and (st["exp_avg_sq"][changed] == 0).all()
            assert (st["exp_avg_sq"][~changed] != 0).any()
            # forward still equals the dense equivalent
            xin = torch.randn(5, m.in_features)
            torch.testing.assert_close(m(xin), m.to_dense()(xin), atol=1e-5, rtol=1e-5)
        assert cost.pruned == cost.grown == cost.synapse_writes == total
        assert rw.total_cost.synapse_writes == total


def test_hebbian_picks_most_coactive_pairs_hand_example():
    layer = SparseEventLinear(6, 2, density=2 / 6, bias=False)
    with torch.no_grad():
        layer.indices.copy_(torch.tensor([[0, 1], [2, 3]], dtype=torch.int32))
        layer.values.copy_(torch.tensor([[1.0, 0.5], [0.25, 1.0]]))
    rw = Rewiring([layer], every=1, fraction=0.5, grow="hebbian", init=0.125)
    x = torch.tensor([
        [1.0, 0, 0, 0, 1, 0],  # drive y = (1, 0)
        [0, 0, 0, 1, 0, 1],    # y = (0, 1)
        [1, 1, 0, 1, 0, 1],    # y = (1.5, 1)
        [0, 0, 1, 0, 1, 0],    # y = (0, 0.25)
        [1, 0, 0, 0, 0, 1],    # y = (1, 0)
    ])  # fmt: skip
    layer(x)
    # Σ pre·post with the unconnected inputs, by hand:
    #   row 0 (i2..i5): i2 0, i3 1.5, i4 1, i5 1.5 + 1 = 2.5  -> grow i5, prune w=0.5 (slot 1)
    #   row 1 (i0, i1, i4, i5): i0 1, i1 1, i4 0.25, i5 1 + 1 = 2 -> grow i5, prune w=0.25
    rw.step()
    assert layer.indices.tolist() == [[0, 5], [5, 3]]  # weakest slot replaced in each row
    assert layer.values.detach().tolist() == [[1.0, 0.125], [0.125, 1.0]]
    assert rw.last_cost.synapse_writes == 2


@pytest.mark.parametrize("shape", [(7, 12), (3, 2, 12)])
def test_gradient_growth_uses_dense_gradient(shape):
    """RigL: the grown input of each row is the unconnected one of largest |dL/dW|,
    with dL/dW taken from the masked nn.Linear (time-first input too)."""
    layer = SparseEventLinear(12, 5, density=0.25, seed=3)
    rw = Rewiring([layer], every=1, fraction=0.34, grow="gradient")
    g = torch.Generator().manual_seed(0)
    # graded events: binary ones can give inputs identical gradients (ties)
    x = (torch.rand(shape, generator=g) < 0.5).float() * torch.randn(shape, generator=g)
    target = torch.ones(*shape[:-1], 5)
    lin = layer.to_dense()
    nn.functional.mse_loss(lin(x), target).backward()
    nn.functional.mse_loss(layer(x), target).backward()
    idx0 = layer.indices.clone()
    score = lin.weight.grad.abs().scatter(1, idx0.long(), -1.0)
    rw.step()
    for r in range(5):
        grown = set(layer.indices[r].tolist()) - set(idx0[r].tolist())
        assert grown == {int(score[r].argmax())}


def test_errors():
    with pytest.raises(ParameterError, match="no SparseEventLinear"):
        Rewiring(nn.Linear(3, 3))
    with pytest.raises(ParameterError, match="grow"):
        Rewiring(_net(), grow="momentum")
    rw = Rewiring(_net(), every=1, grow="hebbian")
    with pytest.raises(ParameterError, match="forward"):
        rw.step()


def _needle_task(n, seed):
    """4 classes read from 4 of 100 inputs (7, 42, 13, 77); the rest is noise. A
    3%-dense first layer (3 inputs per hidden unit) rarely starts on the right inputs."""
    x = torch.randn(n, 100, generator=torch.Generator().manual_seed(seed))
    y = (x[:, 7] + x[:, 42] > 0).long() * 2 + (x[:, 13] - x[:, 77] > 0).long()
    return x, y


def _needle_accuracy(grow):
    torch.manual_seed(0)
    net = nn.Sequential(SparseEventLinear(100, 16, density=0.03, seed=0), nn.ReLU(),
                        SparseEventLinear(16, 4, density=0.5, seed=10))  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=2e-2)
    rw = None
    if grow != "static":
        rw = Rewiring(net, every=20, fraction=0.34, grow=grow, seed=0, optimizer=opt)
    x, y = _needle_task(1024, 0)
    for i in range(300):
        s = slice((i % 16) * 64, (i % 16 + 1) * 64)
        _train_step(net, opt, x[s], y[s])
        if rw is not None:
            rw.step()
    xt, yt = _needle_task(1000, 100)
    with torch.no_grad():
        return (net(xt).argmax(1) == yt).float().mean().item()


@pytest.fixture(scope="module")
def static_accuracy():
    return _needle_accuracy("static")


# Measured (seeds 0, 1, 2 of this setup): static 0.34 / 0.34 / 0.31, random 0.71 / 0.71 /
# 0.91, hebbian 0.66 / 0.95 / 0.53, gradient 0.97 / 0.98 / 0.97; the test runs seed 0.
@pytest.mark.parametrize(("grow", "bound"), [("random", 0.6), ("hebbian", 0.55),
                                             ("gradient", 0.9)])  # fmt: skip
def test_training_with_rewiring_learns_what_static_sparse_cannot(grow, bound, static_accuracy):
    acc = _needle_accuracy(grow)
    assert static_accuracy < 0.45  # chance is 0.25: the static layer misses the inputs
    assert acc > bound and acc > static_accuracy + 0.2, (acc, static_accuracy)
