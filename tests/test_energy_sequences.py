"""Where the meter (``layout="auto"``) starts a new sequence: docs/energy.md, "Time steps
and batch". A neuron call with a fresh state (``state=None``, ``init_leaky()``, ``reset()``)
starts one, so batches add samples, not steps; a call given the state the previous call
returned continues it, whatever the length of each chunk.

Regressions: our neurons' whole-sequence ``forward`` with ``state=None`` was taken as a
continuation (the neuron's step-kept state, None in sequence mode, matched the incoming
None), so two batches were counted as one sequence of 2T steps and B samples; and a
chunked call's batch was read from dim 0, which is time there, so a stream fed in chunks
of unequal length was split where the length changed.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neurosparse as ns
from neurosparse.energy import Meter

T, B, N_IN, N_OUT = 10, 4, 24, 7


def _spikes(seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, N_IN, generator=g) < 0.2).float()


class _Plain(nn.Module):
    """A plain module: first layer + our LIF on the whole sequence [T, B, ...]."""

    def __init__(self, fc: nn.Module):
        super().__init__()
        self.fc, self.lif = fc, ns.LIF(beta=0.9)

    def forward(self, x, state=None):
        return self.lif(self.fc(x), state)


def _first(kind: str) -> nn.Module:
    torch.manual_seed(3)
    ref = nn.Linear(N_IN, N_OUT)
    if kind == "nn.Linear":
        return ref
    layer = ns.EventLinear(N_IN, N_OUT)
    layer.load_state_dict(ref.state_dict())
    return layer


def _model(kind: str, wrapper: str) -> nn.Module:
    fc = _first(kind)
    if wrapper == "Sequential":
        return ns.Sequential(fc, ns.LIF(beta=0.9))
    return _Plain(fc)


def _fc(m: Meter):
    return next(c for c in m.counts() if c.name in ("0", "fc"))


def _counts(m: Meter) -> dict:
    return {c.name: (c.totals, c.per_step) for c in m.counts()}


MODELS = [(k, w) for k in ("nn.Linear", "EventLinear") for w in ("Sequential", "plain")]


@pytest.mark.parametrize("kind,wrapper", MODELS)
def test_two_whole_sequence_batches_are_two_sequences(kind, wrapper):
    x = _spikes(0)
    fan_out_synops = float(x.sum()) * N_OUT  # every weight non-zero: events x fan-out
    runs = {}
    for n_batches in (1, 2):
        model = _model(kind, wrapper)
        with torch.no_grad(), Meter(model) as m:
            for _ in range(n_batches):
                model(x)  # state=None: from rest, a new sequence each call
        runs[n_batches] = m
    one, two = runs[1], runs[2]
    assert (one.samples, one.time_steps) == (B, T)
    assert (two.samples, two.time_steps) == (2 * B, T)
    assert _fc(two).totals["synops"] == 2 * fan_out_synops
    # per-step counts line up step by step: step 0 of both batches is step 0
    assert _fc(two).per_step["synops"][0] == 2 * float(x[0].sum()) * N_OUT
    rep_one = one.report(hardware=["cpu-45nm"])
    rep_two = two.report(hardware=["cpu-45nm"])
    assert rep_two.totals["synops"] == rep_one.totals["synops"] == fan_out_synops / B
    # batch 2's first step is compared with zero, not with batch 1's last step
    assert rep_two.temporal_sparsity == pytest.approx(rep_one.temporal_sparsity)


@pytest.mark.parametrize("kind,wrapper", MODELS)
def test_stream_in_chunks_of_unequal_length_is_one_sequence(kind, wrapper):
    x = _spikes(1)
    model = _model(kind, wrapper)
    with torch.no_grad(), Meter(model) as whole:
        y_whole, _ = model(x)
    model = _model(kind, wrapper)
    ys = []
    with torch.no_grad(), Meter(model) as chunked:
        state = None
        for a, b in ((0, 4), (4, 7), (7, 10)):  # state passed on: one stream
            y, state = model(x[a:b], state)
            ys.append(y)
    assert torch.equal(torch.cat(ys), y_whole)
    assert (chunked.samples, chunked.time_steps) == (whole.samples, whole.time_steps) == (B, T)
    assert _fc(chunked).totals["synops"] == float(x.sum()) * N_OUT
    got, want = _counts(chunked), _counts(whole)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name][0] == pytest.approx(want[name][0]), name
        for key, steps in want[name][1].items():
            assert got[name][1][key] == pytest.approx(steps), (name, key)
    rep_c, rep_w = (r.report(hardware=["cpu-45nm"]) for r in (chunked, whole))
    assert rep_c.totals == pytest.approx(rep_w.totals)
    assert rep_c.temporal_sparsity == pytest.approx(rep_w.temporal_sparsity)


def test_whole_sequence_then_state_passed_on_continues():
    """The same stream fed as two full chunks: T doubles, samples do not."""
    x = _spikes(2)
    model = _model("nn.Linear", "plain")
    with torch.no_grad(), Meter(model) as m:
        _, state = model(x)
        model(x, state)
        m.next_sequence()  # documented: an explicit cut
        model(x)
    assert (m.samples, m.time_steps) == (2 * B, 2 * T)


def test_our_step_loop_with_explicit_state_per_batch():
    """``state = None`` at each batch, then the returned state passed to every step."""
    fc, lif = _first("nn.Linear"), ns.LIF(beta=0.9)
    net = nn.ModuleDict({"fc": fc, "lif": lif})
    xs = [_spikes(3), _spikes(4)]
    with torch.no_grad(), Meter(net) as m:
        for x in xs:
            state = None
            for t in range(T):
                _, state = lif.step(fc(x[t]), state)
    assert (m.samples, m.time_steps) == (2 * B, T)
    assert _fc(m).totals["synops"] == sum(float(x.sum()) for x in xs) * N_OUT


def test_snntorch_step_loop_init_leaky_per_batch():
    snn = pytest.importorskip("snntorch")

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = _first("nn.Linear"), snn.Leaky(beta=0.9)

    net = Net()
    xs = [_spikes(5), _spikes(6)]
    with torch.no_grad(), Meter(net) as m:
        for x in xs:
            mem = net.lif.init_leaky()  # what snnTorch users do per batch
            for t in range(T):
                _, mem = net.lif(net.fc(x[t]), mem)
    assert (m.samples, m.time_steps) == (2 * B, T)
    assert _fc(m).totals["synops"] == sum(float(x.sum()) for x in xs) * N_OUT
    assert m.counts()[1].totals["neuron_updates"] == 2 * T * B * N_OUT


def test_snntorch_loop_detaching_the_membrane_is_one_sequence_per_batch():
    """Truncated BPTT: ``mem = mem.detach()`` each step makes a new object that views the
    returned membrane. It used to start a new sequence every step: T x B samples of one
    step, every per-inference figure divided by T."""
    snn = pytest.importorskip("snntorch")
    fc, lif = _first("nn.Linear"), snn.Leaky(beta=0.9)
    xs = [_spikes(7), _spikes(8)]
    with Meter(nn.ModuleDict({"fc": fc, "lif": lif})) as m:
        for x in xs:
            mem = lif.init_leaky()
            for t in range(T):
                _, mem = lif(fc(x[t]), mem)
                mem = mem.detach()
    assert (m.samples, m.time_steps) == (2 * B, T)
    rep = m.report()
    synops = sum(float(x.sum()) for x in xs) * N_OUT
    assert rep.per_inference(_fc(m))["synops"] == pytest.approx(synops / (2 * B))


def test_norse_state_rebuilt_from_detached_fields_continues():
    norse = pytest.importorskip("norse.torch")
    from norse.torch.functional.lif import LIFFeedForwardState

    net = norse.SequentialState(_first("nn.Linear"), norse.LIFCell())
    x = _spikes(9)
    with torch.no_grad(), Meter(net) as m:
        s = None
        for t in range(T):
            _, s = net(x[t], s)
            s = [None if st is None else LIFFeedForwardState(st.v.detach(), st.i.detach())
                 for st in s]
        net(x[0], None)  # a fresh state still starts a new sequence (one more sample)
    assert (m.samples, m.time_steps) == (B + B, T)
