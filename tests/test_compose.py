"""Every layer composes after every neuron, in neurosparse.Sequential and nn.Sequential.

A neuron returns ``(spikes, state)``; every layer (and every neuron) takes such a tuple
as its input through the one ``unwrap`` helper, so plain ``nn.Sequential`` chains work
without adapters, and give what calling the modules one by one gives.
"""

import itertools

import pytest
import torch
from torch import nn

import neurosparse as ns
from neurosparse.sdr import DendriticLinear, KWinners

T, B, F, OUT = 6, 3, 8, 5

NEURONS = {
    "LIF": lambda: ns.LIF(0.8, 0.5),
    "IF": lambda: ns.IF(0.7),
    "ALIF": lambda: ns.ALIF(0.8, 0.5),
    "CubaLIF": lambda: ns.CubaLIF(v_th=0.1),
}
# (factory, conv input?)
LAYERS = {
    "EventLinear": (lambda: ns.EventLinear(F, OUT), False),
    "SparseEventLinear": (lambda: ns.SparseEventLinear(F, OUT, density=0.5), False),
    "EventConv2d": (lambda: ns.EventConv2d(2, 3, 3, padding=1), True),
    "DeltaEncoder": (lambda: ns.DeltaEncoder(0.1), False),
    "DeltaLinear": (lambda: ns.DeltaLinear(F, OUT, threshold=0.1), False),
    "DeltaConv2d": (lambda: ns.DeltaConv2d(2, 3, 3, padding=1, threshold=0.1), True),
    "DeltaGRU": (lambda: ns.DeltaGRU(F, OUT, threshold=0.1), False),
    "DeltaLSTM": (lambda: ns.DeltaLSTM(F, OUT, threshold=0.1), False),
    "KWinners": (lambda: KWinners(F, k=3), False),
}


def _first(y):
    return y[0] if isinstance(y, tuple) else y


@pytest.mark.parametrize("neuron,layer", list(itertools.product(NEURONS, LAYERS)))
def test_every_layer_after_every_neuron(neuron, layer):
    torch.manual_seed(0)
    make, conv = LAYERS[layer]
    x = torch.rand((T, B, 2, 4, 4) if conv else (T, B, F)) * 1.5
    n1, mod, n2 = NEURONS[neuron](), make(), NEURONS[neuron]()
    for m in (n1, mod, n2):
        m.eval()  # k-winners' duty cycles would otherwise change between the runs
    # one by one: what the chains must equal
    s1, st1 = n1(x)
    y = _first(mod(s1))
    s2, st2 = n2(y)
    assert 0 < s1.sum() < s1.numel()
    plain = nn.Sequential(n1, mod, n2)
    z_plain, _ = plain(x)
    assert torch.equal(z_plain, s2)
    for fuse in (True, False):
        z_ns, states = ns.Sequential(n1, mod, n2, fuse=fuse)(x)
        assert torch.equal(z_ns, s2)
        assert torch.equal(states[0].v, st1.v) and torch.equal(states[2].v, st2.v)


def test_dendritic_linear_takes_a_neuron_tuple():
    torch.manual_seed(0)
    lif = ns.LIF(0.8, 0.5)
    d = DendriticLinear(F, OUT, num_segments=2, context_dim=4)
    x, ctx = torch.rand(T, B, F) * 1.5, torch.rand(T, B, 4)
    out = d(lif(x), ctx)
    assert torch.equal(out, d(lif(x)[0], ctx))
