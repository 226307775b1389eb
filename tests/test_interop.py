"""snnTorch / Norse models convert with identical outputs; NIR graphs round-trip."""

import pytest
import torch
from torch import nn

import neurosparse as ns
from neurosparse.errors import ParameterError
from neurosparse.interop import from_nir, from_norse, from_snntorch, from_spikingjelly, to_nir

snn = pytest.importorskip("snntorch", reason="snntorch is in the [interop] extra")
snn_utils = pytest.importorskip("snntorch.utils", reason="snntorch is in the [interop] extra")
norse = pytest.importorskip("norse.torch", reason="norse is in the [interop] extra")
nir = pytest.importorskip("nir", reason="nir is in the [interop] extra")

T, B = 100, 4


def _step_snntorch(net, x):
    snn_utils.reset(net)
    spikes, mems = [], []
    for t in range(x.shape[0]):
        s, m = net(x[t])
        spikes.append(s)
        mems.append(m)
    return torch.stack(spikes), torch.stack(mems)


def test_snntorch_sequential_converts_exactly():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Flatten(),
        nn.Linear(2 * 6 * 6, 40),
        snn.Leaky(beta=0.9, init_hidden=True, spike_grad=snn.surrogate.fast_sigmoid(slope=10)),
        nn.Linear(40, 30),
        snn.Synaptic(alpha=0.7, beta=0.85, init_hidden=True),
        nn.Linear(30, 10),
        snn.Leaky(beta=0.8, threshold=0.5, reset_mechanism="zero", init_hidden=True, output=True),
    )
    x = (torch.rand(T, B, 2, 6, 6) < 0.3).float()
    ref_spk, ref_mem = _step_snntorch(net, x)
    ours = from_snntorch(net)
    assert isinstance(ours[2].spec.surrogate, ns.surrogate.FastSigmoid)
    assert ours[2].spec.surrogate.slope == 10
    out, states = ours(x)
    assert ref_spk.sum() > 20
    assert torch.equal(out, ref_spk)
    assert torch.allclose(states[-1].v, ref_mem[-1], atol=1e-6, rtol=0)


def _scale_(net, k):
    """Larger weights so that the deep layers of a freshly initialised net spike."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(k)
    return net


def test_snntorch_tutorial7_csnn_converts_exactly():
    """snnTorch tutorial 7's N-MNIST CSNN, stepped by snnTorch, against the converted net
    run over the whole sequence (conv and pooling applied per step)."""
    torch.manual_seed(3)
    grad = snn.surrogate.atan()
    net = _scale_(nn.Sequential(
        nn.Conv2d(2, 12, 5), nn.MaxPool2d(2),
        snn.Leaky(beta=0.5, spike_grad=grad, init_hidden=True),
        nn.Conv2d(12, 32, 5), nn.MaxPool2d(2),
        snn.Leaky(beta=0.5, spike_grad=grad, init_hidden=True),
        nn.Flatten(), nn.Linear(32 * 5 * 5, 10),
        snn.Leaky(beta=0.5, spike_grad=grad, init_hidden=True, output=True),
    ), 3.0)  # fmt: skip
    x = (torch.rand(25, B, 2, 34, 34) < 0.2).float()
    ref_spk, ref_mem = _step_snntorch(net, x)
    ours = from_snntorch(net)
    out, states = ours(x)
    assert ref_spk.sum() > 20 and (ref_spk == 0).sum() > 20
    assert torch.equal(out, ref_spk)
    assert torch.allclose(states[-1].v, ref_mem[-1], atol=1e-6, rtol=0)
    # and the hidden conv layers agree too, not just the output
    hidden = []
    snn_utils.reset(net)
    for t in range(x.shape[0]):
        hidden.append(net[:3](x[t]))
    got_hidden, _ = ours[:3](x)
    assert torch.equal(got_hidden, torch.stack(hidden))


def test_snntorch_tutorial5_mlp_converts_exactly():
    """snnTorch tutorial 5's MLP (784-1000-10, beta 0.95) written as nn.Sequential."""
    torch.manual_seed(4)
    net = _scale_(nn.Sequential(nn.Flatten(), nn.Linear(784, 1000),
                                snn.Leaky(beta=0.95, init_hidden=True), nn.Linear(1000, 10),
                                snn.Leaky(beta=0.95, init_hidden=True, output=True)), 3.0)
    x = (torch.rand(25, B, 1, 28, 28) < 0.3).float()
    ref_spk, _ = _step_snntorch(net, x)
    out, _ = from_snntorch(net)(x)
    assert ref_spk.sum() > 20
    assert torch.equal(out, ref_spk)


def _step_norse(net, x, with_state=False):
    """Step a net called as ``net(x_t, state) -> (z, state)`` over ``x [T, ...]``."""
    state, out = None, []
    for t in range(x.shape[0]):
        z, state = net(x[t], state)
        out.append(z)
    return (torch.stack(out), state) if with_state else torch.stack(out)


def test_norse_conv_converts_exactly():
    """Norse's MNIST conv net (conv 20 / conv 50 / fc 500 with LIFCells) stepped by Norse;
    its leaky-integrator readout is replaced by a LIFCell (LICell does not spike)."""
    torch.manual_seed(5)
    net = _scale_(norse.SequentialState(
        nn.Conv2d(1, 20, 5, 1), norse.LIFCell(), nn.MaxPool2d(2, 2),
        nn.Conv2d(20, 50, 5, 1), norse.LIFCell(), nn.MaxPool2d(2, 2),
        nn.Flatten(), nn.Linear(4 * 4 * 50, 500), norse.LIFCell(), nn.Linear(500, 10),
        norse.LIFCell(),
    ), 4.0)  # fmt: skip
    x = (torch.rand(40, B, 1, 28, 28) < 0.3).float() * 4
    ref = _step_norse(net, x)
    got, _ = from_norse(net)(x)
    assert ref.sum() > 20
    assert torch.equal(got, ref)


def test_norse_sequence_modules_convert_exactly():
    """The same kind of net written with Norse's sequence modules (Lift + LIF)."""
    torch.manual_seed(6)
    net = _scale_(norse.SequentialState(
        norse.Lift(nn.Conv2d(2, 8, 3)), norse.LIF(), norse.Lift(nn.MaxPool2d(2)),
        norse.Lift(nn.Flatten()), nn.Linear(8 * 4 * 4, 10), norse.LIF(),
    ), 4.0)  # fmt: skip
    x = (torch.rand(40, B, 2, 10, 10) < 0.3).float() * 4
    ref, _ = net(x)
    got, _ = from_norse(net)(x)
    assert ref.sum() > 20
    assert torch.equal(got, ref)


def test_spikingjelly_multistep_conv_converts_exactly():
    """A SpikingJelly multi-step conv net (conv-BN-LIF blocks, as in its CIFAR10-DVS
    example) run by SpikingJelly against the converted net, in eval mode."""
    sj = pytest.importorskip("spikingjelly.activation_based", reason="spikingjelly is in [dev]")
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    torch.manual_seed(7)
    lif = dict(tau=2.0, decay_input=False, surrogate_function=surrogate.ATan(),
               detach_reset=True)  # fmt: skip
    net = _scale_(nn.Sequential(
        layer.Conv2d(2, 8, 3, padding=1, bias=False), layer.BatchNorm2d(8),
        neuron.LIFNode(**lif), layer.MaxPool2d(2),
        layer.SeqToANNContainer(nn.Conv2d(8, 16, 3, padding=1), nn.AvgPool2d(2)),
        neuron.IFNode(v_threshold=0.5),
        layer.Flatten(), layer.Linear(16 * 4 * 4, 10), neuron.LIFNode(**lif),
    ), 3.0).eval()  # fmt: skip
    with torch.no_grad():  # batch-norm statistics that are not the identity
        net[1].running_mean.uniform_(-0.2, 0.2)
        net[1].running_var.uniform_(0.5, 2.0)
    functional.set_step_mode(net, "m")
    x = (torch.rand(30, B, 2, 16, 16) < 0.3).float()
    functional.reset_net(net)
    with torch.no_grad():
        ref = net(x)
        got, _ = from_spikingjelly(net)(x)
    assert sj is not None and ref.sum() > 20 and (ref == 0).sum() > 20
    assert torch.equal(got, ref)
    functional.reset_net(net)
    with torch.no_grad():  # the hidden LIF layer as well
        assert torch.equal(from_spikingjelly(net[:3])(x)[0], net[:3](x))


def test_spikingjelly_unsupported_neurons_raise():
    pytest.importorskip("spikingjelly.activation_based", reason="spikingjelly is in [dev]")
    from spikingjelly.activation_based import neuron

    with pytest.raises(ParameterError, match="decay_input"):
        from_spikingjelly(nn.Sequential(neuron.LIFNode()))
    with pytest.raises(ParameterError, match="v_reset"):
        from_spikingjelly(nn.Sequential(neuron.IFNode(v_reset=None)))


def test_norse_sequential_converts_exactly():
    torch.manual_seed(1)
    net = norse.SequentialState(nn.Linear(20, 30), norse.LIFCell(), nn.Linear(30, 5),
                                norse.LIFCell(norse.LIFParameters(v_th=torch.tensor(0.3))))
    x = torch.rand(T, B, 20) * 8
    ref, state = _step_norse(net, x, with_state=True)
    ours = from_norse(net)
    got, states = ours(x)
    assert ref.sum() > 20
    assert torch.equal(got, ref)
    assert torch.allclose(states[-1].v, state[-1].v, atol=1e-6, rtol=0)


def _ns_model():
    torch.manual_seed(2)
    return ns.Sequential(
        nn.Flatten(start_dim=2),
        nn.Linear(32, 24),
        ns.LIF(torch.rand(24) * 0.5 + 0.4, 0.8, surrogate=ns.surrogate.Triangle(0.5)),
        nn.Linear(24, 16, bias=False),
        ns.LIF(0.9, 1.0, alpha=0.6),
        nn.Linear(16, 8),
        ns.IF(1.5, reset="zero"),
        _scaled(nn.Linear(8, 6), 20.0),  # a CubaLIF step only takes dt/tau of its current
        ns.CubaLIF(v_th=0.4),
    )


def _scaled(layer, k):
    with torch.no_grad():
        layer.weight.mul_(k)
    return layer


def test_nir_round_trip_reproduces_outputs(tmp_path):
    model = _ns_model()
    x = torch.rand(T, B, 2, 4, 4) * 2
    ref, _ = model(x)
    # through the file format, type-checked, as hardware toolchains read it
    nir.write(tmp_path / "model.nir", to_nir(model, sample_shape=(2, 4, 4)))
    graph = nir.read(tmp_path / "model.nir")
    assert isinstance(graph.nodes["2"], nir.LIF) and isinstance(graph.nodes["4"], nir.CubaLIF)
    back = from_nir(graph)
    got, _ = back(x)
    assert ref.sum() > 20
    assert torch.equal(got, ref)
    assert back[2].spec == model[2].spec and back[8].spec.euler


def test_nir_export_as_documented_reads_back_without_sample_shape(tmp_path):
    """``to_nir(model, dt=...)`` -> ``nir.write`` -> ``nir.read``, no ``sample_shape``: the
    input shape comes from the first Linear layer."""
    model = _ns_model()[1:]  # starts with Linear(32, 24)
    x = torch.rand(T, B, 32) * 2
    ref, _ = model(x)
    nir.write(tmp_path / "model.nir", to_nir(model, dt=1e-3))
    graph = nir.read(tmp_path / "model.nir")
    assert list(graph.nodes["input"].input_type["input"]) == [32]
    assert list(graph.nodes["output"].output_type["output"]) == [6]
    got, _ = from_nir(graph)(x)
    assert ref.sum() > 20
    assert torch.equal(got, ref)


def test_nir_export_asks_for_sample_shape_when_it_cannot_infer_it():
    conv = ns.Sequential(nn.Conv2d(2, 4, 3), ns.LIF(0.9))
    with pytest.raises(ParameterError, match=r"sample_shape=.*\(C, H, W\)"):
        to_nir(conv, dt=1e-3)
    with pytest.raises(ParameterError, match="sample_shape"):
        to_nir(_ns_model())  # starts with Flatten: the unflattened shape is unknown


def test_foreign_nir_graph_runs_like_snntorch_imports_it():
    """A graph written with NIR's own semantics (as hardware toolchains and snnTorch's
    exporter write it) runs like snnTorch's importer runs it. (snnTorch 1.0's own
    exporter trips over nir 1.0.8's type check, so the graph is built here.)"""
    import numpy as np
    from snntorch.import_nir import import_from_nir

    rng = np.random.default_rng(3)
    dt = 1e-4
    tau1, tau2 = dt / (1 - np.full(20, 0.9)), dt / (1 - np.full(6, 0.8))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([12])}),
        "fc1": nir.Affine(weight=rng.normal(0, 0.5, (20, 12)).astype(np.float32),
                          bias=np.zeros(20, np.float32)),
        "lif1": nir.LIF(tau=tau1, r=tau1 / dt, v_leak=np.zeros(20), v_threshold=np.ones(20)),
        "fc2": nir.Affine(weight=rng.normal(0, 0.8, (6, 20)).astype(np.float32),
                          bias=np.zeros(6, np.float32)),
        "lif2": nir.LIF(tau=tau2, r=tau2 / dt, v_leak=np.zeros(6), v_threshold=np.ones(6)),
        "output": nir.Output(output_type={"output": np.array([6])}),
    }
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    peer = import_from_nir(graph)
    x = torch.rand(T, B, 12) * 2
    ref = _step_norse(peer, x)  # snnTorch's NIR import steps as Norse does: (z, state)
    got, _ = from_nir(graph, dt=dt)(x)
    assert ref.sum() > 20
    assert torch.equal(got, ref)


def test_unsupported_modules_raise():
    with pytest.raises(ParameterError, match="cannot convert.*LSTM"):
        from_snntorch(nn.Sequential(nn.LSTM(3, 3)))
    with pytest.raises(ParameterError, match="reset_delay=False"):
        from_snntorch(nn.Sequential(snn.Leaky(beta=0.9, reset_delay=False)))
    with pytest.raises(ParameterError, match="ALIF"):
        to_nir(ns.Sequential(ns.ALIF()))


def _foreign_cuba_graph(cuba, n_in=12, seed=4):
    import numpy as np

    n = cuba.tau_mem.shape[0]
    w = np.random.default_rng(seed).normal(0, 1, (n, n_in)).astype(np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([n_in])}),
             "fc": nir.Affine(weight=w, bias=np.zeros(n, np.float32)), "cuba": cuba,
             "output": nir.Output(output_type={"output": np.array([n])})}  # fmt: skip
    edges = [("input", "fc"), ("fc", "cuba"), ("cuba", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _nir_cuba_reference(graph, x, dt):
    """NIR's CubaLIF equations, one forward-Euler step of ``dt`` per time step:
    ``tau_syn dI/dt = -I + w_in S``, ``tau_mem dv/dt = (v_leak - v) + r I``, reset to
    ``v_reset`` on ``v > v_threshold``."""
    fc, c = graph.nodes["fc"], graph.nodes["cuba"]

    def f(a):
        return torch.as_tensor(a, dtype=torch.float64)

    h = x.double() @ f(fc.weight).T + f(fc.bias)
    i = torch.zeros(h.shape[1:], dtype=torch.float64)
    v = i + f(c.v_leak)
    spikes, mems = [], []
    for t in range(h.shape[0]):
        i = i + dt / f(c.tau_syn) * (-i + f(c.w_in) * h[t])
        v = v + dt / f(c.tau_mem) * ((f(c.v_leak) - v) + f(c.r) * i)
        z = (v > f(c.v_threshold)).double()
        v = (1 - z) * v + z * f(c.v_reset)
        spikes.append(z)
        mems.append(v)
    return torch.stack(spikes).float(), torch.stack(mems).float()


def _membranes(neuron, x):
    """Spikes and membranes of one neuron layer, step by step."""
    state, spikes, mems = None, [], []
    for t in range(x.shape[0]):
        z, state = neuron.step(x[t], state)
        spikes.append(z)
        mems.append(state.v)
    return torch.stack(spikes), torch.stack(mems)


@pytest.mark.parametrize("form", ["decay", "euler"])
def test_foreign_nir_cubalif_runs_nir_equations_and_refuses_other_w_in(form):
    """A CubaLIF's input weight ``w_in`` is part of its dynamics: a graph whose per-step
    input gain ``w_in * dt / tau_syn`` is 1 runs as NIR's equations say, step by step;
    any other ``w_in`` (Norse's exporter writes 1) raises instead of being dropped."""
    import numpy as np

    dt, n = 1e-4, 8
    tau_syn, tau_mem = np.full(n, 5e-4), np.full(n, 1e-3)
    r = tau_mem / dt if form == "decay" else np.ones(n)
    th = np.full(n, 1.0 if form == "decay" else 0.02)

    def cuba(w_in, v_leak=0.0):
        return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=r, v_leak=np.full(n, v_leak),
                           v_threshold=th, v_reset=np.zeros(n), w_in=w_in)  # fmt: skip

    torch.manual_seed(8)
    x = torch.rand(50, B, 12) * 2
    graph = _foreign_cuba_graph(cuba(tau_syn / dt))
    ref_spk, ref_mem = _nir_cuba_reference(graph, x, dt)
    model = from_nir(graph, dt=dt)
    got_spk, got_mem = _membranes(model[1], model[0](x))
    assert ref_spk.sum() > 20 and (ref_spk == 0).sum() > 20
    assert torch.equal(got_spk, ref_spk)
    assert torch.allclose(got_mem, ref_mem, atol=1e-5, rtol=1e-5)  # |v| reaches 1e2
    with pytest.raises(ParameterError, match="w_in"):
        from_nir(_foreign_cuba_graph(cuba(np.ones(n))), dt=dt)
    if form == "decay":  # v_leak has no place in the decay form: refused, not dropped
        with pytest.raises(ParameterError, match="v_leak"):
            from_nir(_foreign_cuba_graph(cuba(tau_syn / dt, v_leak=0.3)), dt=dt)


@pytest.mark.parametrize("dt", [0.0, -1e-3, float("nan"), float("inf")])
def test_nir_dt_must_be_positive_and_finite(dt):
    model = ns.Sequential(nn.Linear(4, 3), ns.LIF(0.9), nn.Linear(3, 2), ns.IF())
    with pytest.raises(ParameterError, match="dt"):
        to_nir(model, dt=dt)
    graph = to_nir(model, dt=1e-3)
    for node in graph.nodes.values():  # as another tool writes it: no dt of ours inside
        node.metadata = {}
    with pytest.raises(ParameterError, match="dt"):
        from_nir(graph, dt=dt)
    with pytest.raises(ParameterError, match="dt"):  # an IF-only graph never divides by dt
        from_nir(to_nir(ns.Sequential(nn.Linear(4, 3), ns.IF()), dt=1e-3), dt=dt)


@pytest.mark.parametrize("beta", [0.0, 0.9, 1.0])
@pytest.mark.parametrize("alpha", [None, 0.0, 0.6, 1.0])
def test_nir_round_trip_at_the_ends_of_beta_and_alpha(beta, alpha):
    """beta or alpha of 0 (tau = dt) and 1 (tau = inf) are valid LIFs; they round-trip
    with the same spikes and membranes step by step."""
    torch.manual_seed(9)
    model = ns.Sequential(_scaled(nn.Linear(10, 6), 2.0), ns.LIF(beta, 0.5, alpha=alpha))
    x = torch.rand(50, B, 10)
    back = from_nir(to_nir(model, dt=1e-4))
    ref_spk, ref_mem = _membranes(model[1], model[0](x))
    got_spk, got_mem = _membranes(back[1], back[0](x))
    assert ref_spk.sum() > 5
    assert torch.equal(got_spk, ref_spk)
    assert torch.allclose(got_mem, ref_mem, atol=1e-5, rtol=0)


def test_snntorch_per_neuron_threshold_converts_and_unmodelled_options_raise():
    torch.manual_seed(10)
    net = nn.Sequential(_scaled(nn.Linear(10, 8), 2.0),
                        snn.Leaky(beta=torch.rand(8) * 0.5 + 0.4, threshold=torch.rand(8) + 0.5,
                                  init_hidden=True, output=True))  # fmt: skip
    x = torch.rand(50, B, 10)
    ref_spk, ref_mem = _step_snntorch(net, x)
    got_spk, got_mem = _membranes(from_snntorch(net)[1], net[0](x))
    assert ref_spk.sum() > 20
    assert torch.equal(got_spk, ref_spk)
    assert torch.allclose(got_mem, ref_mem, atol=1e-6, rtol=0)
    for kw, what in [({"graded_spikes_factor": 2.0}, "graded_spikes_factor"),
                     ({"inhibition": True}, "inhibition"),
                     ({"state_quant": torch.round}, "state_quant")]:  # fmt: skip
        with pytest.raises(ParameterError, match=what):
            from_snntorch(nn.Sequential(snn.Leaky(beta=0.9, init_hidden=True, **kw)))


def test_norse_per_neuron_parameters_raise():
    p = norse.LIFParameters(v_th=torch.rand(5) + 0.2)
    with pytest.raises(ParameterError, match="v_th"):
        from_norse(norse.SequentialState(nn.Linear(3, 5), norse.LIFCell(p)))
