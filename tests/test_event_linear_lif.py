"""The fused event Linear + LIF inference pass equals EventLinear then the neuron, exactly."""

from __future__ import annotations

import pytest
import torch

import neurosparse as ns
from neurosparse import sequential as seq_mod
from neurosparse.errors import InputValueError, ShapeError
from neurosparse.kernels import event_linear_lif as kel
from neurosparse.layers.event_linear_lif import event_linear_lif


def count_calls(monkeypatch, owner, name: str) -> list:
    """Wraps ``owner.name`` so that each call appends 1 to the returned list."""
    calls = []
    real = getattr(owner, name)

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(owner, name, counting)
    return calls


@pytest.fixture
def kernel_calls(monkeypatch):
    """Counts calls of the CPU fused kernel."""
    return count_calls(monkeypatch, kel, "gather_lif")


def spikes(shape, rate, seed, graded=False):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(shape, generator=gen) < rate
    vals = torch.randn(shape, generator=gen) if graded else torch.ones(shape)
    return (mask * vals).float()


def layer(n_in, n_out, bias=True, seed=0, gain=3.0):
    torch.manual_seed(seed)
    lin = ns.EventLinear(n_in, n_out, bias=bias, mode="event")
    with torch.no_grad():
        lin.weight.mul_(gain)  # currents of order the threshold: plenty of spikes
    return lin


def neuron(kind: str, n_out: int):
    per = torch.linspace(0.5, 0.95, n_out)
    return {
        "lif": lambda: ns.LIF(beta=0.9, threshold=0.5),
        "lif_zero": lambda: ns.LIF(beta=0.8, threshold=0.5, reset="zero"),
        "lif_none": lambda: ns.LIF(beta=0.8, threshold=0.5, reset="none"),
        "lif_immediate": lambda: ns.LIF(beta=0.9, threshold=0.5, reset_delay=False),
        "lif_refractory": lambda: ns.LIF(beta=0.9, threshold=0.4, refractory=2),
        "lif_per_neuron_beta": lambda: ns.LIF(beta=per, threshold=torch.full((n_out,), 0.6)),
        "lif_learnable": lambda: ns.LIF(
            beta=0.9, threshold=0.5, learn_beta=True, learn_threshold=True
        ),  # fmt: skip
        "synaptic": lambda: ns.LIF.snntorch_synaptic(alpha=0.7, beta=0.8, threshold=0.5),
        "if": lambda: ns.IF(threshold=0.8),
        "alif": lambda: ns.ALIF(beta=0.9, threshold=0.4, adapt=0.3, rho=0.9),
        "cuba": lambda: ns.CubaLIF(v_leak=0.1, v_th=0.3, tau_mem_inv=300.0),
    }[kind]()


NEURONS = ["lif", "lif_zero", "lif_none", "lif_immediate", "lif_refractory",
           "lif_per_neuron_beta", "lif_learnable", "synaptic", "if", "alif", "cuba"]  # fmt: skip


def assert_same(a, b):
    (za, sa), (zb, sb) = a, b
    assert za.shape == zb.shape and za.dtype == zb.dtype
    assert torch.equal(za, zb), f"{int((za != zb).sum())} spikes differ"
    for name, x, y in zip(ns.NeuronState._fields, sa, sb):
        assert torch.equal(x, y), f"state.{name} differs by {float((x - y).abs().max())}"


def run_both(x, lin, nrn, state=None):
    with torch.no_grad():
        ref = nrn(lin(x), state)
        fused = event_linear_lif(x, lin, nrn, state)
    return fused, ref


@pytest.mark.parametrize("kind", NEURONS)
def test_fused_equals_unfused_per_neuron_type(kind, kernel_calls):
    T, B, n_in, n_out = 12, 3, 70, 300  # 300 outputs: one full and one ragged tile
    lin = layer(n_in, n_out)
    nrn = neuron(kind, n_out)
    x = spikes((T, B, n_in), 0.3, seed=1)
    fused, ref = run_both(x, lin, nrn)
    assert kernel_calls == [1]
    assert_same(fused, ref)
    rate = float(ref[0].mean())
    assert 0.01 < rate < 0.99, f"test drives too few/many spikes: {rate}"


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.3, 1.0])
@pytest.mark.parametrize("shape", [(7, 1, 33, 17), (5, 4, 130, 259), (3, 2, 600, 513)],
                         ids=str)  # fmt: skip
def test_fused_equals_unfused_rates_and_shapes(rate, shape, kernel_calls):
    T, B, n_in, n_out = shape
    lin = layer(n_in, n_out, gain=1.0 if rate == 1.0 else 3.0)
    nrn = ns.LIF(beta=0.9, threshold=0.5)
    x = spikes((T, B, n_in), rate, seed=int(rate * 100))
    assert_same(*run_both(x, lin, nrn))
    assert kernel_calls == [1]


@pytest.mark.parametrize("bias", [True, False])
def test_graded_input_and_no_bias(bias, kernel_calls):
    lin = layer(40, 50, bias=bias)
    nrn = ns.LIF(beta=0.9, threshold=0.5)
    x = spikes((6, 2, 40), 0.4, seed=3, graded=True)
    assert_same(*run_both(x, lin, nrn))
    assert kernel_calls == [1]


@pytest.mark.parametrize("kind", ["lif", "synaptic", "alif", "lif_refractory", "cuba"])
def test_explicit_state_and_v_init(kind, kernel_calls):
    T, B, n_in, n_out = 8, 2, 50, 90
    lin = layer(n_in, n_out)
    nrn = neuron(kind, n_out)
    gen = torch.Generator().manual_seed(5)
    state = ns.NeuronState(
        torch.rand(B, n_out, generator=gen) * 0.6, torch.rand(B, n_out, generator=gen) * 0.2,
        torch.rand(B, n_out, generator=gen), torch.randint(0, 3, (B, n_out), generator=gen).float(),
    )  # fmt: skip
    x = spikes((T, B, n_in), 0.2, seed=6)
    assert_same(*run_both(x, lin, nrn, state))
    # continuing from the returned state: two halves equal the whole
    with torch.no_grad():
        z1, s1 = event_linear_lif(x[:4], lin, nrn, state)
        z2, s2 = event_linear_lif(x[4:], lin, nrn, s1)
        z, s = nrn(lin(x), state)
    assert_same((torch.cat([z1, z2]), s2), (z, s))
    assert len(kernel_calls) == 3


def test_op_counters_and_last_path_equal_unfused():
    x = spikes((6, 3, 64), 0.2, seed=7)
    x[0, 0, :5] = 0.5  # some graded events: counted as MACs
    lin = layer(64, 40)
    nrn = ns.LIF()
    with torch.no_grad():
        nrn(lin(x))
        want = lin.op_counts()
        lin.reset_counters()
        lin.last_path = None
        event_linear_lif(x, lin, nrn)
    assert lin.op_counts() == want
    assert want["macs"] > 0 and want["synops"] > 0
    assert lin.last_path == "event"


def test_falls_back_where_it_cannot_fuse(kernel_calls, monkeypatch):
    x = spikes((5, 2, 30), 0.2, seed=8)
    lin = layer(30, 20)
    nrn = ns.LIF(beta=0.9, threshold=0.5)
    # gradients needed: the unfused pair runs (with its autograd graph)
    z, _ = event_linear_lif(x, lin, nrn)
    assert z.requires_grad and kernel_calls == []
    # dense path
    lin.mode = "dense"
    assert_same(*run_both(x, lin, nrn))
    lin.mode = "event"
    # hooks on either module must see their calls
    seen = []
    handle = nrn.register_forward_hook(lambda m, a, o: seen.append(1))
    assert_same(*run_both(x, lin, nrn))
    handle.remove()
    assert seen == [1, 1]
    # other dtypes, and the torch reference
    assert_same(*run_both(x.double(), lin.double(), nrn))
    lin.float()
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    assert_same(*run_both(x, lin, nrn))
    assert kernel_calls == []
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "auto")
    with torch.no_grad():
        event_linear_lif(x, lin, nrn)
    assert kernel_calls == [1]


def test_errors_match_unfused():
    lin = layer(30, 20)
    nrn = ns.LIF()
    x = spikes((4, 2, 30), 0.2, seed=9)
    with torch.no_grad():
        bad = x.clone()
        bad[1, 0, 3] = float("nan")
        with pytest.raises(InputValueError, match="NaN"):
            event_linear_lif(bad, lin, nrn)
        with pytest.raises(ShapeError, match="in_features=30"):
            event_linear_lif(x[..., :20], lin, nrn)
        with pytest.raises(ShapeError, match="state"):
            event_linear_lif(x, lin, nrn, ns.NeuronState(*[torch.zeros(3, 20)] * 4))
        lin.weight[0, 0] = float("inf")  # non-finite currents: the neuron's own check
        with pytest.raises(InputValueError):
            event_linear_lif(torch.ones(4, 2, 30), lin, nrn)


@pytest.mark.parametrize("where", ["weight", "bias"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nonfinite_currents_raise_as_unfused(where, value, kernel_calls):
    # the kernel tests the currents it forms; a read NaN/inf weight row or bias makes the
    # call raise as the unfused neuron does, and nothing is counted for the failed call
    x = spikes((4, 2, 30), 0.0, seed=3)
    x[2, 1, 7] = 1.0  # one event: only weight column 7 is read
    lin = layer(30, 20)
    nrn = ns.LIF()
    with torch.no_grad():
        if where == "weight":
            lin.weight.data[5, 7] = value  # through .data: no version bump to rely on
        else:
            lin.bias.data[5] = value
        with pytest.raises(InputValueError, match="NaN or infinite") as unfused:
            nrn(lin(x))
        lin.reset_counters()
        with pytest.raises(InputValueError) as fused:
            event_linear_lif(x, lin, nrn)
    assert str(fused.value) == str(unfused.value)
    assert kernel_calls == [1]  # the kernel ran and flagged the currents itself
    want = lin.op_counts()  # the fused attempt counted as one unfused call, no more
    lin.reset_counters()
    with torch.no_grad(), pytest.raises(InputValueError):
        nrn(lin(x))
    assert lin.op_counts() == want


def test_nonfinite_weight_row_no_event_reads_is_ignored_as_unfused(kernel_calls):
    # the unfused event gather never reads an inactive input's weight row, so a NaN there
    # changes nothing; the fused pass agrees (no fallback, no error)
    x = spikes((5, 3, 30), 0.3, seed=4)
    x[..., 11] = 0.0
    lin = layer(30, 20)
    nrn = ns.LIF(beta=0.9, threshold=0.5)
    lin.weight.data[:, 11] = float("nan")
    assert_same(*run_both(x, lin, nrn))
    assert kernel_calls == [1]


def test_sequential_fuses_under_no_grad(monkeypatch, kernel_calls):
    fused_calls = count_calls(monkeypatch, seq_mod, "event_linear_lif")
    torch.manual_seed(0)
    net = ns.Sequential(layer(40, 60, seed=1), ns.LIF(beta=0.9, threshold=0.5),
                        layer(60, 25, seed=2), ns.ALIF(threshold=0.3))  # fmt: skip
    x = spikes((10, 2, 40), 0.2, seed=10)
    z_ref, s_ref = net(x)  # grad mode: no fused kernel
    assert kernel_calls == []
    counts_ref = [net[0].op_counts(), net[2].op_counts()]
    for m in (net[0], net[2]):
        m.reset_counters()
    with torch.no_grad():
        z, states = net(x)
    assert fused_calls == [1, 1, 1, 1] and kernel_calls == [1, 1]
    assert torch.equal(z, z_ref)
    assert states[0] is None and states[2] is None
    for got, want in zip(states[1::2], s_ref[1::2]):
        assert_same((z, got), (z, want))
    assert [net[0].op_counts(), net[2].op_counts()] == counts_ref
    # passing the states back continues every neuron, fused or not
    with torch.no_grad():
        z2, states2 = net(x, states)
        z2_ref, states2_ref = ns.Sequential(*net, fuse=False)(x, states)
    assert_same((z2, states2[3]), (z2_ref, states2_ref[3]))
    assert fused_calls == [1] * 6 and kernel_calls == [1] * 4


def test_sequential_fuse_off(kernel_calls):
    net = ns.Sequential(layer(20, 30), ns.LIF(threshold=0.5), fuse=False)
    with torch.no_grad():
        net(spikes((4, 2, 20), 0.3, seed=11))
    assert kernel_calls == []
