"""Temporal (delta) sparsity of the energy report does not depend on the layer class.

docs/energy.md: temporal sparsity = input elements unchanged since the previous step / all,
the first step compared with zero, over the inputs of all synaptic layers together.
A self-counting layer (``EventLinear``) used to add no temporal counts, so a model with
one as its first layer reported the hidden layers' figure only (user report: 96.5 % with
``EventLinear`` vs 88.3 % with ``nn.Linear``, same weights and input).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import neurosparse as ns
from neurosparse.energy import Meter

T, B, N_IN, N_HID, N_OUT = 10, 4, 64, 32, 16


def _spikes(*shape: int, p: float = 0.13, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(*shape, generator=g) < p).float()


def _changes(x: torch.Tensor) -> tuple[int, int]:
    """(elements changed since the previous step, first step against zero; elements) of a
    time-first [T, ...] tensor: the documented definition, by hand."""
    prev = torch.cat([torch.zeros_like(x[:1]), x[:-1]])
    return int((x != prev).sum()), x.numel()


def _first(kind: str) -> nn.Module:
    """The first layer, with the same weights whatever its class."""
    torch.manual_seed(1)
    ref = nn.Linear(N_IN, N_HID)
    layer = ref if kind == "nn.Linear" else ns.EventLinear(N_IN, N_HID)
    layer.load_state_dict(ref.state_dict())
    return layer


def _hidden_layer() -> nn.Linear:
    torch.manual_seed(2)
    return nn.Linear(N_HID, N_OUT)


class _Net(nn.Module):
    """first layer + LIF + Linear + LIF, the user's model; keeps the hidden spikes."""

    def __init__(self, first: nn.Module):
        super().__init__()
        self.fc1, self.lif1 = first, ns.LIF(beta=0.9)
        self.fc2, self.lif2 = _hidden_layer(), ns.LIF(beta=0.9)

    def forward(self, x):
        h, _ = self.lif1(self.fc1(x))
        self.hidden = h
        return self.lif2(self.fc2(h))[0]


@pytest.mark.parametrize("kind", ["nn.Linear", "EventLinear"])
def test_temporal_sparsity_same_for_event_and_torch_first_layer(kind):
    x = _spikes(T, B, N_IN)
    model = _Net(_first(kind))
    with torch.no_grad(), Meter(model) as m:
        model(x)
    report = m.report(hardware=["cpu-45nm"])
    ch_in, n_in = _changes(x)
    ch_hid, n_hid = _changes(model.hidden)
    assert n_hid == T * B * N_HID and ch_hid < n_hid  # the hidden layer is counted too
    first = report.layers[0]
    assert first.exact == (kind == "EventLinear")
    # the first layer's own figure is the input's, by hand
    assert first.temporal_sparsity == pytest.approx(1 - ch_in / n_in)
    # the header: over the inputs of both synaptic layers together
    assert report.temporal_sparsity == pytest.approx(1 - (ch_in + ch_hid) / (n_in + n_hid))
    assert report.to_dict()["sparsity"]["temporal"] == report.temporal_sparsity


def _temporal(model: nn.Module, run, **kw) -> tuple[float | None, list[float | None]]:
    with torch.no_grad(), Meter(model, **kw) as m:
        run(model)
    report = m.report(hardware=["cpu-45nm"])
    return report.temporal_sparsity, [c.temporal_sparsity for c in report.layers]


@pytest.mark.parametrize("layout", ["auto", "TB"])
def test_temporal_sparsity_event_layer_in_an_snntorch_step_loop(layout):
    """One call per step (the hook chains each step to the previous one), two batches:
    each batch's first step is compared with zero, not with the last batch's last step."""
    snn = pytest.importorskip("snntorch")

    class Loop(nn.Module):
        def __init__(self, fc: nn.Module):
            super().__init__()
            self.fc, self.lif = fc, snn.Leaky(beta=0.9)

        def forward(self, xs):
            mem = self.lif.init_leaky()
            out = []
            for t in range(xs.shape[0]):
                spk, mem = self.lif(self.fc(xs[t]), mem)
                out.append(spk)
            return torch.stack(out)

    xs = [_spikes(T, B, N_IN, seed=0), _spikes(T, B, N_IN, p=0.3, seed=3)]
    changed, total = map(sum, zip(*(_changes(x) for x in xs)))
    expected = 1 - changed / total

    def run(model):
        for x in xs:
            model(x)

    got = [_temporal(Loop(_first(kind)), run, layout=layout)
           for kind in ("nn.Linear", "EventLinear")]
    assert got[0] == got[1]
    assert got[1][0] == pytest.approx(expected)


def test_temporal_sparsity_of_a_sequence_fed_in_chunks():
    """A stream fed in two chunks with the neuron state passed on: each chunk's first step
    is compared with the step before it, for an nn.Linear (hooked) and an EventLinear."""

    class Stream(nn.Module):
        def __init__(self, fc: nn.Module):
            super().__init__()
            self.fc, self.lif = fc, ns.LIF(beta=0.9)

        def forward(self, x, state=None):
            return self.lif(self.fc(x), state)

    x = _spikes(T, B, N_IN)
    changed, total = _changes(x)

    def run(model):
        _, state = model(x[: T // 2])
        model(x[T // 2:], state)

    got = [_temporal(Stream(_first(kind)), run) for kind in ("nn.Linear", "EventLinear")]
    assert got[0] == got[1]
    assert got[1][0] == pytest.approx(1 - changed / total)


def test_temporal_false_leaves_event_layers_out_too():
    model = _Net(_first("EventLinear"))
    with torch.no_grad(), Meter(model, temporal=False) as m:
        model(_spikes(T, B, N_IN))
    assert m.report(hardware=["cpu-45nm"]).temporal_sparsity is None


def test_header_says_input_and_temporal_sparsity_cover_all_synaptic_layers():
    """The header figures are over all synaptic layers' inputs, not the first layer's:
    the label says so in the text and Markdown reports and the JSON definitions."""
    model = _Net(_first("EventLinear"))
    with torch.no_grad(), Meter(model) as m:
        model(_spikes(T, B, N_IN))
    report = m.report(hardware=["cpu-45nm"])
    # the case of the user report: the header differs from layer 1's input sparsity
    assert report.input_sparsity != pytest.approx(report.layers[0].input_sparsity)
    for text in (str(report), report.to_markdown()):
        assert "input sparsity (all synaptic layers)" in text
        assert "temporal sparsity (all synaptic layers)" in text
    defs = report.to_dict()["definitions"]
    assert "all synaptic layers together" in defs["input_sparsity"]
    assert "all synaptic layers together" in defs["temporal_sparsity"]
