"""The kept eager CUDA call of ``EventLinear`` (``layers/event_linear_plan.py``).

A plan is replayed only while every input of the decision it keeps is unchanged; these
tests change each one and hold the output and counters to ``nn.Linear`` and to the
general path. CPU tensors are routed to the CUDA code path (``kernel_device``), and the
kernels' launch is replaced by a stand-in with the kernels' contract: it reads the
weight and bias storage it was given (so a plan that missed a re-pointed weight would
read the old storage, as the kernels would) and adds the input's statistics to the
tally. The real kernels replay a plan in ``tests/cudasim/test_event_cases.py`` and on a
GPU in ``tests/test_gpu.py``.
"""

from __future__ import annotations

import copy
import importlib
import pickle

import pytest
import torch
import torch.nn.functional as F

import neurosparse as ns
from neurosparse.errors import InputValueError
from neurosparse.ops import event_linear as ops
from neurosparse.ops import registry

layer_mod = importlib.import_module("neurosparse.layers.event_linear")
plan_mod = importlib.import_module("neurosparse.layers.event_linear_plan")
KC = ops._cuda_kernels()


class StandIn:
    """``CudaLinearLaunch`` without a GPU: same arguments, same contract."""

    made = 0
    launched = 0

    def __init__(self, device, rows, weight, bias, tally, dtype):
        StandIn.made += 1
        self.kc = KC
        self.w = weight.detach()  # the storage of now, as the kernels' views
        self.b = None if bias is None else bias.detach()
        self.rows, self.dtype = rows, dtype
        self.tally = tally if tally is not None else torch.zeros(3, dtype=torch.int64)

    def launch(self, x):
        StandIn.launched += 1
        assert x.shape[0] == self.rows and x.dtype == self.dtype
        count(x, self.tally)
        return F.linear(x, self.w, self.b)


def count(x, tally):
    """``ops.count_cuda``'s contract: the input's statistics added to the tally."""
    tally += torch.stack([torch.count_nonzero(x), torch.count_nonzero(x.abs() == 1),
                          (~torch.isfinite(x)).any(1).sum()])  # fmt: skip


@pytest.fixture(autouse=True)
def routed(monkeypatch):
    monkeypatch.setattr(ops, "kernel_device", lambda t: "cuda")
    monkeypatch.setattr(ops, "CudaLinearLaunch", StandIn)
    monkeypatch.setattr(ops, "count_cuda", count)  # the dense path's counts
    monkeypatch.setattr(registry, "_CUDA_OK", [True])  # the stand-in launches anywhere
    monkeypatch.delenv("NEUROSPARSE_KERNELS", raising=False)
    monkeypatch.delenv("NEUROSPARSE_CHECK_FINITE_GPU", raising=False)
    StandIn.made = StandIn.launched = 0


GENERAL: list[int] = []


@pytest.fixture
def general(monkeypatch):
    """Counts the calls that took the general path."""
    real = layer_mod._event_linear

    def counted(*a, **k):
        GENERAL.append(1)
        return real(*a, **k)

    monkeypatch.setattr(layer_mod, "_event_linear", counted)
    GENERAL.clear()
    return GENERAL


def spikes(*shape, seed=0, rate=0.2):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < rate).float()


def layer(n_in=24, n_out=10, bias=True):
    torch.manual_seed(1)
    return ns.EventLinear(n_in, n_out, bias=bias, mode="event")


def expected(lin, x):
    return F.linear(x, lin.weight.detach(), None if lin.bias is None else lin.bias.detach())


@pytest.mark.parametrize("shape", [(1, 24), (3, 24), (2, 3, 24)])
@pytest.mark.parametrize("bias", [True, False])
def test_replays_equal_nn_linear_and_count_like_the_general_path(general, shape, bias):
    lin = layer(bias=bias)
    with torch.no_grad():
        outs = [lin(spikes(*shape, seed=s)) for s in range(4)]
    assert len(general) == 1  # the first call; the next three replayed the plan
    assert StandIn.launched == 4
    for s, y in enumerate(outs):
        assert y.shape == (*shape[:-1], 10)
        torch.testing.assert_close(y, expected(lin, spikes(*shape, seed=s)), rtol=0, atol=0)
    counts = lin.op_counts()
    # the same four calls, each through the general path, count the same
    lin2 = layer(bias=bias)
    for s in range(4):
        lin2.__dict__.pop("_ns_plan", None)
        with torch.no_grad():
            lin2(spikes(*shape, seed=s))
    assert lin2.op_counts() == counts
    events = sum(int(spikes(*shape, seed=s).count_nonzero()) for s in range(4))
    assert counts["events_in"] == events and counts["synops"] == events * 10
    assert counts["inputs_in"] == 4 * 24 * (shape[0] * (shape[1] if len(shape) == 3 else 1))
    assert lin.last_path == "event"


def test_in_place_weight_writes_are_read_by_the_replay(general):
    lin, x = layer(), spikes(2, 24)
    with torch.no_grad():
        lin(x)
        lin.weight.mul_(2.0)
        lin.bias.fill_(0.5)
        lin.load_state_dict({"weight": torch.ones(10, 24), "bias": torch.zeros(10)})
        y = lin(x)
    assert len(general) == 1
    torch.testing.assert_close(y, x.sum(1, keepdim=True).expand(2, 10), rtol=0, atol=0)


def _replace_data(lin):
    lin.weight.data = torch.randn(10, 24)


def _replace_parameter(lin):
    lin.weight = torch.nn.Parameter(torch.randn(10, 24))


def _replace_bias(lin):
    lin.bias = torch.nn.Parameter(torch.randn(10))


def _bias_as_plain_attribute(lin):
    del lin.bias
    lin.bias = torch.randn(10)


def _slice_weight(lin):
    # same pointer and strides, another shape: the plan must not read it as before
    lin.weight.data = lin.weight.data[:, :24]
    lin.weight.data = torch.randn(24, 10).t()


def _reset_counters(lin):
    lin.reset_counters()


def _mode_dense(lin):
    lin.mode = "dense"


def _design_constant(lin):
    KC.SPLIT_ROWS = 1  # restored by the test


def _kernel_switch(lin):
    import os

    os.environ["NEUROSPARSE_KERNELS"] = "torch"  # removed by the fixture


@pytest.mark.parametrize("change", [_replace_data, _replace_parameter, _replace_bias,
                                    _bias_as_plain_attribute, _slice_weight, _reset_counters,
                                    _mode_dense, _design_constant, _kernel_switch])  # fmt: skip
def test_a_change_of_what_the_plan_kept_takes_the_general_path(general, monkeypatch, change):
    monkeypatch.setattr(KC, "SPLIT_ROWS", KC.SPLIT_ROWS)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "auto")
    lin, x = layer(), spikes(2, 24)
    with torch.no_grad():
        lin(x)
        lin(x)
        assert len(general) == 1
        change(lin)
        y = lin(x)
    assert len(general) == 2
    torch.testing.assert_close(y, expected(lin, x))
    if change is _reset_counters:
        assert lin.op_counts()["inputs_in"] == 48
        assert lin.op_counts()["events_in"] == int(x.count_nonzero())


@pytest.mark.parametrize("other", [spikes(3, 24), spikes(2, 24).double(), spikes(2, 48)[:, ::2],
                                   spikes(1, 2, 24), (spikes(2, 24), None)])  # fmt: skip
def test_another_input_takes_the_general_path(general, other):
    lin = layer()
    with torch.no_grad():
        lin(spikes(2, 24))
        if isinstance(other, torch.Tensor) and other.dtype == torch.float64:
            lin = lin.double()
        y = lin(other)
    assert len(general) == 2
    x = other[0] if isinstance(other, tuple) else other
    torch.testing.assert_close(y, expected(lin, x))


def test_another_stream_takes_the_general_path(general, monkeypatch):
    # torch's current stream is read per call (a raw pointer on the GPU): a call on
    # another stream must not launch on the kept one
    streams = iter([7, 7, 8, 8, 8])
    monkeypatch.setattr(plan_mod, "_stream", lambda dev: next(streams))
    lin, x = layer(), spikes(2, 24)
    with torch.no_grad():
        lin(x)  # kept on stream 7
        lin(x)  # replayed
        lin(x)  # stream 8: general path, kept on 8
        lin(x)  # replayed
    assert len(general) == 2 and StandIn.launched == 4


def test_autograd_takes_the_general_path_and_gets_gradients(general):
    lin, x = layer(), spikes(2, 24)
    with torch.no_grad():
        lin(x)
    y = lin(x)  # grad mode, parameters require grad
    assert len(general) == 2 and y.requires_grad
    y.sum().backward()
    torch.testing.assert_close(lin.weight.grad, torch.ones(10, 2) @ x)
    lin.requires_grad_(False)
    lin(x)  # nothing to differentiate: kept again, then replayed
    lin(x)
    assert len(general) == 3


def test_errors_still_come_from_the_general_path(general, monkeypatch):
    lin = layer()
    with torch.no_grad():
        lin(spikes(2, 24))
        with pytest.raises(ns.errors.ShapeError):
            lin(spikes(2, 23))
        monkeypatch.setenv("NEUROSPARSE_CHECK_FINITE_GPU", "1")
        bad = spikes(2, 24)
        bad[1, 3] = float("nan")
        with pytest.raises(InputValueError):
            lin(bad)
        lin(spikes(2, 24))
        assert lin.__dict__["_ns_plan"] is None  # the finite check is never skipped
        monkeypatch.delenv("NEUROSPARSE_CHECK_FINITE_GPU")


def test_the_plan_is_not_copied_pickled_or_moved(general):
    lin = layer()
    with torch.no_grad():
        lin(spikes(2, 24))
    assert lin.__dict__["_ns_plan"] is not None
    for other in (copy.deepcopy(lin), pickle.loads(pickle.dumps(lin))):
        assert "_ns_plan" not in other.__dict__
        with torch.no_grad():
            torch.testing.assert_close(other(spikes(2, 24, seed=3)),
                                       expected(other, spikes(2, 24, seed=3)))  # fmt: skip
    lin.to(torch.float64)
    assert "_ns_plan" not in lin.__dict__


def test_cpu_calls_keep_no_plan(monkeypatch):
    monkeypatch.setattr(ops, "kernel_device", lambda t: t.device.type)
    lin = layer()
    with torch.no_grad():
        lin(spikes(2, 24))
    assert lin.__dict__["_ns_plan"] is None and StandIn.made == 0


def test_keep_calls_off_stops_replays_at_once(general, monkeypatch):
    lin, x = layer(), spikes(2, 24)
    with torch.no_grad():
        lin(x)
        monkeypatch.setattr(plan_mod, "KEEP_CALLS", False)
        lin(x)
        lin(x)
    assert len(general) == 3


class MaskedLinear(ns.EventLinear):
    """A subclass that hands the general path a masked weight through ``__getattr__``."""

    def __getattr__(self, name):
        w = super().__getattr__(name)
        mask = self._buffers.get("mask")
        return w * mask if name == "weight" and mask is not None else w


def test_a_weight_supplied_another_way_is_read_as_the_general_path_reads_it(general):
    torch.manual_seed(1)
    lin = MaskedLinear(24, 10, mode="event")
    lin.register_buffer("mask", (torch.rand(10, 24) < 0.5).float())
    x = spikes(2, 24)
    with torch.no_grad():
        ys = [lin(x) for _ in range(3)]
    want = F.linear(x, lin._parameters["weight"] * lin.mask, lin.bias)
    for y in ys:
        torch.testing.assert_close(y, want)


def test_keeping_records_no_extra_kernel_fallbacks(monkeypatch):
    # a call the kernels do not take (float64 on the CPU) is recorded once per call by
    # the general path, not a second time by the plan's checks
    monkeypatch.setattr(ops, "kernel_device", lambda t: t.device.type)
    lin = layer().double()
    recorded = []
    for keep in (False, True):
        monkeypatch.setattr(plan_mod, "KEEP_CALLS", keep)
        before = sum(registry._OPS[ops.OP].fallbacks.values())
        with torch.no_grad():
            for _ in range(4):
                lin(spikes(2, 24).double())
        recorded.append(sum(registry._OPS[ops.OP].fallbacks.values()) - before)
    assert recorded[1] == recorded[0] > 0
