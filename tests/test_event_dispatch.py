"""mode="auto" takes the event path below the measured crossover and dense above it."""

from __future__ import annotations

import pytest
import torch

from neurosparse.layers import dispatch
from neurosparse.layers.event_conv2d import EventConv2d
from neurosparse.layers.event_linear import EventLinear


def test_nearest_measured_shape_supplies_the_crossover(monkeypatch):
    monkeypatch.setattr(dispatch, "LINEAR_CPU", [((100, 10, 10), 0.2), ((10**4, 1000, 1000), 0.05)])
    monkeypatch.setitem(dispatch._TABLES, ("linear", "cpu"), dispatch.LINEAR_CPU)
    assert dispatch.crossover("linear", "cpu", (64, 12, 9)) == 0.2
    assert dispatch.crossover("linear", "cpu", (3200, 4096, 4096)) == 0.05
    # a device without a table falls back to the CPU table
    assert dispatch.crossover("linear", "mps", (64, 12, 9)) == 0.2


def test_measured_tables_are_rates():
    for table in dispatch._TABLES.values():
        assert table, "every table holds at least one measurement"
        for shape, rate in table:
            assert all(isinstance(d, int) and d > 0 for d in shape)
            assert 0.0 <= rate <= 1.0  # 0: dense always won, 1: event always won


@pytest.mark.parametrize("rate,path", [(0.02, "event"), (0.5, "dense")])
def test_auto_follows_the_activity(monkeypatch, rate, path):
    monkeypatch.setattr(dispatch, "crossover", lambda op, device, shape: 0.1)
    torch.manual_seed(0)
    lin = EventLinear(200, 10)
    conv = EventConv2d(2, 3, 3, padding=1)
    x = (torch.rand(4, 200) < rate).float()
    xc = (torch.rand(2, 2, 10, 10) < rate).float()
    assert torch.allclose(lin(x), lin.to_dense()(x), atol=1e-5)
    assert torch.allclose(conv(xc), conv.to_dense()(xc), atol=1e-5)
    assert lin.last_path == path and conv.last_path == path


@pytest.mark.parametrize("mode", ["event", "dense"])
def test_forced_modes_ignore_the_activity(mode):
    lin = EventLinear(50, 5, mode=mode)
    for rate in (0.0, 1.0):
        lin((torch.rand(3, 50) < rate).float())
        assert lin.last_path == mode
