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


def _chunks(net, x, size):
    """``net`` over ``x`` in chunks of ``size`` steps, every state passed back."""
    states, outs = None, []
    for t in range(0, x.shape[0], size):
        y, states = net(x[t : t + size], states)
        outs.append(y)
    return torch.cat(outs), states


@pytest.mark.parametrize("size", [1, 2, 4])
def test_sequential_in_chunks_continues_every_module_as_calling_them_by_hand(size):
    # the delta layers return their state only when asked: Sequential used to drop it
    # (states[k] None) and restart them from rest in every chunk (the encoder's output
    # then differed by up to 1.0 from the one-call run), and it never passed a returned
    # state (nn.GRU's) back
    torch.manual_seed(0)
    enc, dl, lif, gru = (ns.DeltaEncoder(0.1), ns.DeltaLinear(F, OUT, threshold=0.1),
                         ns.LIF(0.8, 0.2), nn.GRU(OUT, OUT))  # fmt: skip
    net = ns.Sequential(enc, dl, lif, gru)
    x = torch.rand(T, B, F) * 1.5
    with torch.no_grad():
        got, states = _chunks(net, x, size)
        # the reference: each module called by hand, its state passed to the next chunk
        s_enc = s_dl = s_lif = s_gru = None
        ref = []
        for t in range(0, T, size):
            e, s_enc = enc(x[t : t + size], s_enc, return_state=True)
            d, s_dl = dl(e, s_dl, return_state=True)
            z, s_lif = lif(d, s_lif)
            h, s_gru = gru(z, s_gru)
            ref.append(h)
        whole, _ = net(x)
    assert torch.equal(got, torch.cat(ref))
    for mine, theirs in zip(states, (s_enc, s_dl, s_lif, (s_gru,))):
        mine = mine if isinstance(mine, tuple) else (mine,)
        assert all(torch.equal(u, v) for u, v in zip(mine, theirs, strict=True))
    # and a chunked stream is the one-call run (to rounding: DeltaLinear sums its
    # deltas per call)
    torch.testing.assert_close(got, whole, rtol=0, atol=1e-6)


def test_a_state_for_a_module_without_one_is_refused():
    net = ns.Sequential(nn.Linear(F, OUT), ns.LIF(0.8, 0.5))
    with pytest.raises(ns.errors.ParameterError, match=r"states\[0\].*Linear"):
        net(torch.rand(T, B, F), [torch.zeros(B, OUT), None])


def _bn(bn):
    """A batch norm in eval mode with statistics and affine parameters far from 0 / 1."""
    with torch.no_grad():
        n = bn.num_features
        bn.running_mean.copy_(torch.linspace(-1, 1, n))
        bn.running_var.copy_(torch.linspace(0.5, 2, n))
        bn.weight.copy_(torch.linspace(0.5, 1.5, n))
        bn.bias.copy_(torch.linspace(-0.3, 0.3, n))
    return bn.eval()


def test_torch_per_sample_layers_equal_a_loop_over_time():
    # Conv2d, pooling and batch norm read [N, C, ...]; over [T, B, ...] they used to fail
    # or, for BatchNorm1d(F) on [T, B, F] with B == F, normalise over the batch axis
    torch.manual_seed(0)
    conv, bn2, pool = nn.Conv2d(2, 4, 3, padding=1), _bn(nn.BatchNorm2d(4)), nn.MaxPool2d(2)
    lin, bn1, up = nn.Linear(4 * 2 * 2, B), _bn(nn.BatchNorm1d(B)), nn.Upsample(scale_factor=2)
    lif = ns.LIF(0.8, 0.3)
    net = ns.Sequential(conv, bn2, nn.ReLU(), pool, up, nn.AdaptiveAvgPool2d(2), nn.Flatten(2),
                        lin, bn1, lif)  # fmt: skip
    x = torch.rand(T, B, 2, 8, 8)
    with torch.no_grad():
        z, states = net(x)
        # as a loop over time writes it, then the neuron over the whole sequence
        cur = torch.stack(
            [
                bn1(
                    lin(
                        nn.functional.adaptive_avg_pool2d(
                            up(pool(bn2(conv(x[t])).relu())), 2
                        ).flatten(1)
                    )
                )
                for t in range(T)
            ]
        )
        # as SpikingJelly's SeqToANNContainer runs it: [T*B, ...], reshaped back
        flat = x.flatten(0, 1)
        sj = bn1(lin(nn.functional.adaptive_avg_pool2d(up(pool(bn2(conv(flat)).relu())), 2)
                     .flatten(1))).unflatten(0, (T, B))  # fmt: skip
        ref, ref_state = lif(sj)
    torch.testing.assert_close(sj, cur, rtol=1e-6, atol=1e-6)  # loop: other batch size
    assert torch.equal(z, ref) and torch.equal(states[-1].v, ref_state.v)
    assert 0 < z.sum() < z.numel()


def test_batch_norm_in_training_takes_statistics_over_time_and_batch():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(2, momentum=1.0)  # running stats = the last call's
    x = torch.rand(T, B, 2, 4, 4) * torch.tensor([1.0, 3.0]).view(2, 1, 1)
    y, _ = ns.Sequential(bn)(x)
    assert torch.allclose(bn.running_mean, x.mean((0, 1, 3, 4)))
    mean = x.mean((0, 1, 3, 4)).view(2, 1, 1)
    var = x.var((0, 1, 3, 4), unbiased=False).view(2, 1, 1)
    torch.testing.assert_close(y, (x - mean) / torch.sqrt(var + bn.eps))


@pytest.mark.parametrize("flatten", [nn.Flatten(), nn.Flatten(0, 1), nn.Flatten(-4)])
def test_flatten_over_batch_or_time_is_refused(flatten):
    # nn.Flatten() silently gave [T, B*C*H*W]: each step's samples merged into one vector
    with pytest.raises(ns.errors.ShapeError, match=r"nn.Flatten\(2\)"):
        ns.Sequential(flatten)(torch.rand(T, B, 2, 4, 4))
    z, _ = ns.Sequential(nn.Flatten(2))(torch.rand(T, B, 2, 4, 4))
    assert z.shape == (T, B, 32)


def test_a_metered_module_does_not_change_how_its_class_takes_state():
    """The meter wraps some modules' forward as ``(*args, **kwargs)`` on the instance;
    reading that signature made every later nn.Linear look like it takes a state."""
    from neurosparse.energy import Meter
    from neurosparse.sequential import _STATE_CALLS

    _STATE_CALLS.clear()
    net = ns.Sequential(nn.Linear(F, OUT), ns.LIF(0.8, 0.5))
    with Meter(net):
        net(torch.rand(T, B, F))
    with pytest.raises(ns.errors.ParameterError, match=r"states\[0\].*Linear"):
        net(torch.rand(T, B, F), [torch.zeros(B, OUT), None])
