"""Continual learning: active dendrites with task context forget less than a plain MLP.

Generated permuted tasks (Iyer et al. 2022's permuted-MNIST setting, made small): the
same 4 Gaussian classes seen through a different input permutation per task, one
shared output head, tasks trained one after the other. After the last task, the
dendritic network (DendriticLinear gated by a one-hot task context, then k-winners)
keeps clearly more of the earlier tasks than an MLP of the same width.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from neurosparse.sdr import DendriticLinear, KWinners

TASKS, DIM, CLASSES, HIDDEN = 4, 32, 4, 128


def _tasks(seed):
    g = torch.Generator().manual_seed(seed)
    protos = torch.randn(CLASSES, DIM, generator=g)
    out = []
    for _ in range(TASKS):
        perm = torch.randperm(DIM, generator=g)
        y = torch.randint(0, CLASSES, (400,), generator=g)
        x = protos[y] + 0.8 * torch.randn(400, DIM, generator=g)
        out.append((x[:, perm], y))
    return out


class _MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(DIM, HIDDEN), nn.Linear(HIDDEN, CLASSES)

    def forward(self, x, context):
        return self.l2(F.relu(self.l1(x)))


class _Dendritic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1 = DendriticLinear(DIM, HIDDEN, num_segments=TASKS, context_dim=TASKS)
        self.kw = KWinners(HIDDEN, k=12, boost_strength=0.0, k_inference_factor=1.0)
        self.l2 = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x, context):
        return self.l2(self.kw(self.l1(x, context)))


def _train_sequentially(model, tasks, seed):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for t, (x, y) in enumerate(tasks):
        ctx = F.one_hot(torch.full((len(y),), t), TASKS).float()
        for _ in range(10):
            order = torch.randperm(len(y))
            for i in range(0, len(y), 32):
                b = order[i : i + 32]
                opt.zero_grad()
                F.cross_entropy(model(x[b], ctx[b]), y[b]).backward()
                opt.step()
    model.eval()
    with torch.no_grad():
        acc = []
        for t, (x, y) in enumerate(tasks):
            ctx = F.one_hot(torch.full((len(y),), t), TASKS).float()
            acc.append((model(x, ctx).argmax(1) == y).float().mean().item())
    return acc


@pytest.fixture
def one_thread():
    # tiny matmuls: one thread is fastest, and spinning OpenMP workers on a busy 2-core
    # box slow these 2,000 small steps down tenfold
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("seed", [1, 2])
def test_dendritic_gating_forgets_less_than_plain_mlp(seed, one_thread):
    tasks = _tasks(seed)
    torch.manual_seed(seed)
    mlp = _train_sequentially(_MLP(), tasks, seed)
    torch.manual_seed(seed)
    dend = _train_sequentially(_Dendritic(), tasks, seed)
    # both learn the last task; the dendritic net keeps much more of the earlier ones
    assert mlp[-1] > 0.95 and dend[-1] > 0.95
    old_mlp = sum(mlp[:-1]) / (TASKS - 1)
    old_dend = sum(dend[:-1]) / (TASKS - 1)
    assert old_dend > old_mlp + 0.1, (mlp, dend)
