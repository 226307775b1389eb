"""``GraphStream`` on the CPU: its eager steps against a hand-written step loop, its
refusals, and the counter bookkeeping it does around a CUDA-graph capture (the capture
and replay themselves: ``tests/test_gpu.py``)."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch
from _hand_steps import hand_steps  # tests/, beside this
from torch import nn

import neurosparse as ns
from neurosparse._counters import OpCounter
from neurosparse.errors import DeviceError, DTypeError, ParameterError, ShapeError
from neurosparse.streaming import _Counts


def _net():
    torch.manual_seed(0)
    net = ns.Sequential(
        ns.EventLinear(64, 48, mode="event"), ns.LIF(0.9),
        nn.Linear(48, 32), ns.ALIF(0.85),
        ns.EventLinear(32, 16), ns.CubaLIF(),
    )  # fmt: skip
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[2].weight.mul_(4)
        net[4].weight.mul_(6)
    net[5].v_init = 0.1  # a resting membrane off zero (what interop sets for some peers)
    return net


def _inputs(n=8, shape=(3, 64)):
    g = torch.Generator().manual_seed(1)
    return [(torch.rand(shape, generator=g) < 0.3).float() for _ in range(n)]


def test_eager_stream_equals_a_hand_written_stephand_steps():
    net, xs = _net(), _inputs()
    ref = hand_steps(copy.deepcopy(net), xs)
    stream = ns.GraphStream(net, xs[0], graph=False)
    got = [stream.step(x) for x in xs]
    assert sum(float(r.sum()) for r in ref) > 0  # the last layer spikes
    for a, b in zip(got, ref):
        assert torch.equal(a, b)


def test_reset_starts_the_stream_from_rest_again():
    net, xs = _net(), _inputs()
    stream = ns.GraphStream(net, xs[0], graph=False)
    first = [stream.step(x) for x in xs]
    stream.reset()
    assert float(stream.states[5].v.sub(0.1).abs().max()) == 0  # CubaLIF's v_init
    again = [stream.step(x) for x in xs]
    for a, b in zip(first, again):
        assert torch.equal(a, b)


def test_eager_stream_keeps_hooks_and_counters_per_step():
    net, xs = _net(), _inputs(5)
    seen = []
    # a neuron's forward hook sees its forward, which a stream does not call (it steps
    # the neuron); the energy meter wraps step() itself (the metering test below)
    net[1].register_forward_hook(lambda m, i, o: seen.append(1))
    net[2].register_forward_hook(lambda m, i, o: seen.append(2))
    stream = ns.GraphStream(net, xs[0], graph=False)
    for x in xs:
        stream.step(x)
    assert seen == [2] * 5
    events = sum(int(torch.count_nonzero(x)) for x in xs)
    assert net[0].op_counts()["events_in"] == events
    stream.reset_counters()
    assert net[0].op_counts()["events_in"] == 0


def test_a_delta_layer_is_refused():
    with pytest.raises(ParameterError, match="DeltaLinear may keep a state .*it keeps"):
        ns.GraphStream(ns.Sequential(nn.Linear(8, 8), ns.DeltaLinear(8, 8, threshold=0.1)),
                       torch.zeros(2, 8), graph=False)  # fmt: skip


def test_nested_sequentials_are_flattened():
    torch.manual_seed(3)
    inner = nn.Sequential(nn.Linear(8, 8), ns.LIF(0.9))
    net = ns.Sequential(inner, nn.Linear(8, 8), ns.LIF(0.8))
    with torch.no_grad():
        for m in (inner[0], net[1]):
            m.weight.mul_(5)
    xs = [torch.rand(2, 8) for _ in range(6)]
    flat = nn.Sequential(inner[0], inner[1], net[1], net[2])
    ref = hand_steps(copy.deepcopy(flat), xs)
    stream = ns.GraphStream(net, xs[0], graph=False)
    assert [type(m) for m in stream.modules] == [type(m) for m in flat]
    got = [stream.step(x) for x in xs]
    assert sum(float(r.sum()) for r in ref) > 0
    for a, b in zip(got, ref):
        assert torch.equal(a, b)


def test_a_neuron_hidden_in_a_composite_module_is_refused():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(8, 8), ns.LIF(0.9)

        def forward(self, x):
            return self.lif.step(self.fc(x))[0]  # keeps the LIF's state in the module

    with pytest.raises(ParameterError, match="Block may keep a state .*holds a LIF"):
        ns.GraphStream(Block(), torch.zeros(2, 8), graph=False)


def test_snntorch_and_norse_neurons_are_refused():
    snn = pytest.importorskip("snntorch", reason="snnTorch is a dev dependency")
    norse = pytest.importorskip("norse.torch", reason="Norse is a dev dependency")
    for neuron, fix in ((snn.Leaky(beta=0.9), "from_snntorch"), (norse.LIFCell(), "from_norse")):
        with pytest.raises(ParameterError, match=f"may keep a state .*ns.interop.{fix}"):
            ns.GraphStream([nn.Linear(8, 8), neuron], torch.zeros(2, 8), graph=False)


@pytest.mark.parametrize("module", [nn.GRUCell(8, 8), nn.LSTM(8, 8)])
def test_recurrent_layers_are_refused(module):
    with pytest.raises(ParameterError, match="a recurrent layer"):
        ns.GraphStream([nn.Linear(8, 8), module], torch.zeros(2, 8), graph=False)


def test_a_second_argument_that_is_no_state_is_accepted():
    class Masked(nn.Module):  # forward(x, mask=None): an input, not a state
        def forward(self, x, mask=None):
            return x if mask is None else x * mask

    class Cell(nn.Module):  # forward(x, h=None): a state, by its name
        def forward(self, x, h=None):
            return x

    lif = ns.LIF(0.9)
    xs = [torch.rand(2, 8) * 2 for _ in range(5)]
    stream = ns.GraphStream([Masked(), lif], xs[0], graph=False)
    got = [stream.step(x) for x in xs]
    for a, b in zip(got, hand_steps(copy.deepcopy(nn.Sequential(lif)), xs)):
        assert torch.equal(a, b)
    with pytest.raises(ParameterError, match="Cell may keep a state .*as an argument"):
        ns.GraphStream([Cell(), lif], xs[0], graph=False)


def test_bad_inputs_get_clear_errors():
    net = _net()
    with pytest.raises(DeviceError, match="CUDA device"):
        ns.GraphStream(net, torch.zeros(3, 64), graph=True)
    with pytest.raises(DTypeError, match="torch.Tensor"):
        ns.GraphStream(net, [0.0] * 64)
    with pytest.raises(ParameterError, match="no modules"):
        ns.GraphStream(ns.Sequential(), torch.zeros(3, 64))
    stream = ns.GraphStream(net, torch.zeros(3, 64))
    assert not stream.graphed  # a CPU example: eager steps
    with pytest.raises(ShapeError, match="made for \\(3, 64\\); the batch size"):
        stream.step(torch.zeros(2, 64))
    with pytest.raises(ShapeError, match="one time step .*loop over the first axis"):
        stream.step(torch.zeros(5, 3, 64))  # a whole sequence
    with pytest.raises(ShapeError, match="shaped like the example"):
        stream.step(torch.zeros(3, 65))
    with pytest.raises(DTypeError, match="float64"):
        stream.step(torch.zeros(3, 64, dtype=torch.float64))

    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(ParameterError, match="Pair returned a tuple"):
        ns.GraphStream([Pair()], torch.zeros(3, 64)).step(torch.zeros(3, 64))


class _Counting(OpCounter):
    pass


def test_counter_bookkeeping_around_a_capture():
    from neurosparse.layers import dispatch

    m = _Counting()
    c = m._counts()
    tally = torch.tensor([5, 7], dtype=torch.int64)
    live = dispatch.LiveCount(tally, 0, 3)
    c.update({"inputs_in": 10, "dense_macs": 100, "synops": live, "spikes": torch.tensor(4)})
    counts = _Counts([m])
    before = counts.snapshot()
    # what a captured call does on the host: its plain ints added once; the device
    # entries are the same objects (the graph sums into them on every replay)
    c["inputs_in"] += 64
    c["dense_macs"] += 640
    counts.capture_done(*before)
    # counting starts at zero, in place: the graph keeps writing the same tensors
    assert c["inputs_in"] == 0 and c["synops"] is live and int(tally.sum()) == 0
    assert live.offset == 0 and int(c["spikes"]) == 0
    for _ in range(3):
        counts.check()
        counts.replayed()
    assert c["inputs_in"] == 3 * 64 and c["dense_macs"] == 3 * 640
    m.reset_counters()  # by hand: drops the device entries the graph writes
    with pytest.raises(ParameterError, match="reset_counters"):
        counts.check()


def test_a_counter_made_during_the_capture_is_refused():
    m = _Counting()
    c = m._counts()
    c["inputs_in"] = 10
    counts = _Counts([m])
    before = counts.snapshot()
    c["spikes"] = torch.tensor(3)  # a device count first made inside the capture
    with pytest.raises(ParameterError, match="changed kind during the CUDA-graph capture"):
        counts.capture_done(*before)
    assert isinstance(c, Counter)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_input_keeps_an_fp32_state_as_step_does(dtype):
    lif = ns.LIF(0.99)
    g = torch.Generator().manual_seed(2)
    xs = [(torch.rand(2, 64, generator=g) * 0.3).to(dtype) for _ in range(200)]
    ref = hand_steps(copy.deepcopy(nn.Sequential(lif)), xs)
    stream = ns.GraphStream(ns.Sequential(lif), xs[0], graph=False)
    got = [stream.step(x) for x in xs]
    assert stream.states[0].v.dtype == torch.float32
    assert sum(float(r.float().sum()) for r in ref) > 50
    for a, b in zip(got, ref):
        assert a.dtype == dtype and torch.equal(a, b)


def test_an_eager_stream_meters_like_a_hand_writtenhand_steps():
    from neurosparse.energy import Meter

    xs = _inputs(4)
    net_a, net_b = _net(), _net()
    stream = ns.GraphStream(net_a, xs[0], graph=False)
    with Meter(net_a, layout="B") as ma:
        for x in xs:
            stream.step(x)
    with Meter(net_b, layout="B") as mb:
        hand_steps(net_b, xs)
    a = [(c.name, dict(c.totals)) for c in ma.counts()]
    b = [(c.name, dict(c.totals)) for c in mb.counts()]
    assert a == b and any(t.get("spikes", 0) > 0 for _, t in a)


def test_counting_layers_are_found_once_wherever_they_sit():
    shared = ns.EventLinear(16, 16)

    class Block(nn.Module):  # a stateless block around a counting layer
        def __init__(self):
            super().__init__()
            self.inner = ns.EventLinear(16, 16)

        def forward(self, x):
            return self.inner(x)

    block = Block()
    stream = ns.GraphStream(nn.ModuleList([shared, ns.LIF(0.9), shared, block]),
                            torch.zeros(2, 16), graph=False)  # fmt: skip
    assert len(stream.modules) == 4  # a ModuleList is flattened like a Sequential
    assert stream._counts.counters == [shared, block.inner]


@pytest.mark.parametrize("net", ["a string", {"fc": nn.Linear(2, 2)}, 3])
def test_what_is_not_a_net_is_refused(net):
    with pytest.raises(ParameterError, match="takes a Sequential"):
        ns.GraphStream(net, torch.zeros(2, 2), graph=False)


def test_what_a_capture_bakes_in_is_watched():
    from neurosparse.streaming import _frozen

    net = _net().eval()
    mods = list(net.modules())
    frozen = _frozen(mods)
    net[0].load_state_dict(net[0].state_dict())  # in place: the graph replays it
    assert _frozen(mods) == frozen
    net[2].weight = nn.Parameter(net[2].weight.detach().clone())  # a new tensor
    assert _frozen(mods) != frozen
    frozen = _frozen(mods)
    net.train()
    assert _frozen(mods) != frozen


def test_a_capture_refuses_finite_checks_that_read_back(monkeypatch):
    stream = ns.GraphStream(_net(), torch.zeros(3, 64), graph=False)
    monkeypatch.setenv("NEUROSPARSE_CHECK_FINITE_GPU", "1")
    with pytest.raises(ParameterError, match="NEUROSPARSE_CHECK_FINITE_GPU"):
        stream._capture(1)  # refused before anything touches a GPU
