"""The meter's cheap paths count exactly what its plain paths count, and never sync per call.

* Shared work: while a finished sequence is counted, tensors read by several layers (a
  neuron's spikes are the next layer's input) are stacked and checked once, and the
  per-step slices of a time-first input are stacked without a copy. Counts with that
  sharing must equal counts computed with every stack copied and every check redone.
* No host sync in hooks: on a GPU a ``.item()`` / ``.tolist()`` / ``float(t)`` in a hook
  stalls every call. On CPU we make those raise when called from the meter's code during
  the forward pass; the counts are read back (once per sequence) after it.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import neurosparse.energy._tensors as tt
from neurosparse import LIF, EventLinear
from neurosparse.energy import Meter

snn = pytest.importorskip("snntorch")

T, B = 12, 3
ENERGY_DIR = str(Path(tt.__file__).parent)


class MixedLoop(nn.Module):
    """snnTorch step loop (Linear, Conv, Leaky, pooling) with one of our sequence-mode
    layers on the recorded spikes: foreign hooks, shared tensors and self-counting layers."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.lif0 = snn.Leaky(beta=0.9)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(4 * 4 * 4, 32)
        self.lif1 = snn.Leaky(beta=0.9)
        self.fc2 = nn.Linear(32, 10)
        self.lif2 = snn.Leaky(beta=0.9)
        self.ours = EventLinear(32, 8)
        self.lif3 = LIF(beta=0.9)

    def forward(self, x):  # x: [T, B, 2, 8, 8]
        m0, m1, m2 = self.lif0.init_leaky(), self.lif1.init_leaky(), self.lif2.init_leaky()
        rec = []
        for t in range(x.shape[0]):
            s0, m0 = self.lif0(self.conv(x[t]), m0)
            h = self.pool(s0).flatten(1)
            s1, m1 = self.lif1(self.fc1(h), m1)
            s2, m2 = self.lif2(self.fc2(s1), m2)
            rec.append(s1)
        out, _ = self.lif3(self.ours(torch.stack(rec)))
        return out


def _inputs(graded: bool = False):
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(T, B, 2, 8, 8, generator=gen) < 0.3).float()
    if graded:
        x = x * torch.rand(x.shape, generator=gen) * 2
    return x


def _count(model, x):
    with torch.no_grad(), Meter(model) as m:
        model(x)
    return m.samples, m.time_steps, [r.to_dict() for r in m.counts()]


@contextlib.contextmanager
def _no_sharing():
    """The plain path: every stack copied, every check recomputed by torch reductions
    (no one-pass kernel)."""
    view, shared, kernel = tt._consecutive_view, tt.shared_work, tt._kernel_takes
    tt._consecutive_view = lambda ts: None
    tt.shared_work = contextlib.nullcontext
    tt._kernel_takes = lambda x: False
    try:
        yield
    finally:
        tt._consecutive_view, tt.shared_work, tt._kernel_takes = view, shared, kernel


@pytest.mark.parametrize("graded", [False, True])
def test_shared_work_counts_equal_plain_path(graded):
    model = MixedLoop().eval()
    x = _inputs(graded)
    fast = _count(model, x)
    with _no_sharing():
        plain = _count(model, x)
    assert fast[:2] == plain[:2] == (B, T)
    assert fast[2] == plain[2]
    # and the shared path really counted something for every hooked layer
    names = {r["name"] for r in fast[2]}
    assert {"conv", "lif0", "pool", "fc1", "lif1", "fc2", "lif2", "ours", "lif3"} <= names
    fc2 = next(r for r in fast[2] if r["name"] == "fc2")
    lif1 = next(r for r in fast[2] if r["name"] == "lif1")
    assert fc2["totals"]["events_in"] == lif1["totals"]["spikes"] > 0


def test_consecutive_slices_stack_without_copy():
    x = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)
    view = tt._consecutive_view([x[0], x[1]])
    assert view is not None and view.data_ptr() == x.data_ptr()
    assert torch.equal(view, torch.stack([x[0], x[1]]))
    # not back to back, reversed, or from two storages: no view (a copy is made)
    assert tt._consecutive_view([x[1], x[0]]) is None
    assert tt._consecutive_view([x[0, :2], x[1, :2]]) is None
    assert tt._consecutive_view([x[0], x[1].clone()]) is None
    assert torch.equal(tt.stack([x[1], x[0]]), torch.stack([x[1], x[0]]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("values", ["binary", "graded", "signed", "nan"])
def test_step_stats_kernel_matches_torch_reference(values, dtype):
    from neurosparse.kernels import step_stats

    gen = torch.Generator().manual_seed(3)
    x = (torch.rand(7, 5, 33, generator=gen) < 0.3).to(dtype)
    if values == "graded":
        x = x * torch.rand(x.shape, generator=gen, dtype=dtype)
    elif values == "signed":
        x = -x
    elif values == "nan":
        x[2, 1, 4] = float("nan")
    nnz = np.empty((7, 5), dtype=np.int64)
    changed = np.empty((7, 5), dtype=np.int64)
    binary = step_stats.step_row_stats(x.numpy(), nnz, changed)
    prev = torch.cat([torch.zeros_like(x[:1]), x[:-1]])
    assert np.array_equal(nnz, (x != 0).sum(-1).numpy())
    assert np.array_equal(changed, (x != prev).sum(-1).numpy())
    assert binary == bool(((x == 0) | (x == 1)).all()) == (values == "binary")


@contextlib.contextmanager
def _no_sync_from_meter():
    """Make host reads of tensor values raise when the meter's code asks for them."""
    names = ("item", "tolist", "__float__", "__int__", "__bool__")
    saved = {n: getattr(torch.Tensor, n) for n in names}

    def guard(name):
        original = saved[name]

        def call(self, *a, **k):
            caller = sys._getframe(1).f_code.co_filename
            if caller.startswith(ENERGY_DIR):
                raise AssertionError(f"Meter read a tensor value (Tensor.{name}) in a hook")
            return original(self, *a, **k)

        return call

    for n in names:
        setattr(torch.Tensor, n, guard(n))
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.Tensor, n, f)


def test_meter_hooks_read_no_tensor_values_during_forward():
    model = MixedLoop().eval()
    x = _inputs()
    expected = _count(model, x)
    with torch.no_grad():
        meter = Meter(model)
        meter.__enter__()
        try:
            with _no_sync_from_meter():
                model(x)
        finally:
            meter.__exit__(None, None, None)  # counts are read back here, once
    assert (meter.samples, meter.time_steps) == expected[:2]
    assert [r.to_dict() for r in meter.counts()] == expected[2]


def test_guard_catches_a_sync_from_meter_code():
    """The guard is not vacuous: the meter's own reduction code does read values."""
    with _no_sync_from_meter(), pytest.raises(AssertionError, match="Tensor.__float__"):
        tt.is_ternary(torch.ones(4, 3))
    with _no_sync_from_meter(), pytest.raises(AssertionError, match="Tensor.tolist"):
        tt._binary_rows(torch.ones(4, 3), 1)


def test_wrapped_forwards_are_removed_and_a_users_own_forward_restored():
    model = MixedLoop().eval()
    calls = []
    user_forward = model.fc2.forward  # a user's instance-level wrapper, kept as found

    def traced(x):
        calls.append(1)
        return user_forward(x)

    model.fc2.forward = traced
    x = _inputs()
    with torch.no_grad(), Meter(model) as m:
        assert "forward" in model.fc1.__dict__  # counted through a wrapper, not a hook
        assert not model.fc1._forward_hooks and not model.lif1._forward_pre_hooks
        model(x)
    assert "forward" not in model.fc1.__dict__ and "forward" not in model.lif1.__dict__
    assert model.fc2.__dict__["forward"] is traced
    assert len(calls) == T  # the user's wrapper ran inside the meter's, once per step
    fc2 = next(r for r in m.counts() if r.name == "fc2")
    assert fc2.calls == T and fc2.totals["dense_macs"] == T * B * 32 * 10


def test_kernels_switch_torch_keeps_the_meter_on_torch_reductions(monkeypatch):
    x = torch.ones(4, 3)
    assert tt._kernel_takes(x)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    assert not tt._kernel_takes(x)
    assert tt.binary_rows(x, 1).tolist() == [3.0] * 4


@pytest.mark.parametrize("values", ["binary", "graded", "nan"])
def test_step_changes_kernel_equals_torch_compare_and_sum(values, monkeypatch):
    """The self-counting layers' temporal counts: the one-pass kernel gives the changes
    between steps and the first step's non-zeros exactly as torch's ``!=`` and sum."""
    gen = torch.Generator().manual_seed(3)
    rows = (torch.rand(7, 50, generator=gen) < 0.3).float()
    if values != "binary":
        rows = rows * torch.randn(7, 50, generator=gen)
    if values == "nan":
        rows[2, 5] = rows[3, 5] = float("nan")  # NaN != NaN: counted as a change, as torch
    rest, first = tt.step_changes(rows)
    assert isinstance(rest, int)  # the kernel ran
    want_rest = int((rows[1:] != rows[:-1]).sum())
    assert (rest, first) == (want_rest, int((rows[0] != 0).sum()))
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    t_rest, t_first = tt.step_changes(rows)
    assert (int(t_rest), int(t_first)) == (want_rest, first)
    assert tt.step_changes(rows[:1])[0] == 0  # one step: nothing to compare


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_column_nonzeros_kernel_equals_count_nonzero(dtype, monkeypatch):
    """The fan-out map's non-zero weights per input column: the row-major kernel equals
    ``torch.count_nonzero(w, dim=0)`` with pruned columns, NaN (non-zero) and -0.0 (zero);
    a transposed (non-contiguous) weight and NEUROSPARSE_KERNELS=torch take torch."""
    from neurosparse.energy.fanout import _column_nonzeros, linear_fanout

    gen = torch.Generator().manual_seed(5)
    w = torch.randn(37, 53, generator=gen, dtype=dtype)
    w[:, :7] = 0
    w[torch.rand(37, 53, generator=gen) < 0.3] = 0
    w[3, 9], w[4, 10] = float("nan"), -0.0
    want = torch.count_nonzero(w, dim=0)
    assert torch.equal(_column_nonzeros(w), want)
    assert torch.equal(_column_nonzeros(w.t().contiguous().t()), want)  # torch's path
    fan, uniform = linear_fanout(w)
    assert fan.dtype == torch.float64 and fan.tolist() == want.double().tolist()
    assert not uniform
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    assert torch.equal(_column_nonzeros(w), want)
