"""snnTorch / Norse models convert with identical outputs; NIR graphs round-trip."""

import pytest
import torch
from torch import nn

import neurosparse as ns
from neurosparse.errors import ParameterError
from neurosparse.interop import from_nir, from_norse, from_snntorch, to_nir

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


def test_norse_sequential_converts_exactly():
    torch.manual_seed(1)
    net = norse.SequentialState(nn.Linear(20, 30), norse.LIFCell(), nn.Linear(30, 5),
                                norse.LIFCell(norse.LIFParameters(v_th=torch.tensor(0.3))))
    x = torch.rand(T, B, 20) * 8
    state, out = None, []
    for t in range(T):
        z, state = net(x[t], state)
        out.append(z)
    ref = torch.stack(out)
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
    state, out = None, []
    for t in range(T):
        z, state = peer(x[t], state)
        out.append(z)
    ref = torch.stack(out)
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
