"""``GraphStream`` on the CPU: its eager steps against a hand-written step loop, its
refusals, and the counter bookkeeping it does around a CUDA-graph capture (the capture
and replay themselves: ``tests/test_gpu.py``)."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch
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


def _loop(net, xs):
    """What a user writes by hand: each neuron's state passed from step to step."""
    mods, states, outs = list(net), {}, []
    with torch.no_grad():
        for x in xs:
            h = x
            for k, m in enumerate(mods):
                if isinstance(m, ns.SpikingNeuron):
                    h, states[k] = m.step(h, states.get(k))
                else:
                    h = m(h)
            outs.append(h)
    return outs


def _inputs(n=8, shape=(3, 64)):
    g = torch.Generator().manual_seed(1)
    return [(torch.rand(shape, generator=g) < 0.3).float() for _ in range(n)]


def test_eager_stream_equals_a_hand_written_step_loop():
    net, xs = _net(), _inputs()
    ref = _loop(copy.deepcopy(net), xs)
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
    net[1].register_forward_hook(lambda m, i, o: seen.append(1))  # not called by step()
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
    with pytest.raises(ParameterError, match="DeltaLinear keeps a state between time steps"):
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
    ref = _loop(copy.deepcopy(flat), xs)
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

    with pytest.raises(ParameterError, match="Block keeps a state .*LIF"):
        ns.GraphStream(Block(), torch.zeros(2, 8), graph=False)


def test_snntorch_and_norse_neurons_are_refused():
    snn = pytest.importorskip("snntorch", reason="snnTorch is a dev dependency")
    norse = pytest.importorskip("norse.torch", reason="Norse is a dev dependency")
    for neuron in (snn.Leaky(beta=0.9), norse.LIFCell()):
        with pytest.raises(ParameterError, match="keeps a state between time steps"):
            ns.GraphStream([nn.Linear(8, 8), neuron], torch.zeros(2, 8), graph=False)


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
    with pytest.raises(ShapeError, match="made for \\(3, 64\\)"):
        stream.step(torch.zeros(2, 64))
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
