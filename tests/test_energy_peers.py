"""Peer neurons counted through hooks: snnTorch, Norse, SpikingJelly, and NeuroBench agreement.

"Ours" below is a stand-in for a neurosparse neuron (``is_spiking_neuron = True``,
returns ``(spikes, state)``) whose dynamics reproduce the peer's, so the counts of the
peer model (hooked as a peer) and of the neurosparse-style model must be identical.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurosparse.energy import Meter

snn = pytest.importorskip("snntorch")
norse = pytest.importorskip("norse.torch")


class OursLeaky(nn.Module):
    """snnTorch Leaky equations (subtract reset, delayed), neurosparse neuron interface."""

    is_spiking_neuron = True

    def __init__(self, beta: float, threshold: float = 1.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, x, mem):
        reset = (mem > self.threshold).float()
        mem = self.beta * mem + x - reset * self.threshold
        return (mem > self.threshold).float(), mem


class OursNorseLIF(nn.Module):
    """Norse's feed-forward LIF step behind the neurosparse neuron interface."""

    is_spiking_neuron = True

    def forward(self, x, state=None):
        from norse.torch.functional.lif import (
            LIFFeedForwardState,
            LIFParameters,
            lif_feed_forward_step,
        )

        if state is None:
            state = LIFFeedForwardState(v=torch.zeros_like(x), i=torch.zeros_like(x))
        return lif_feed_forward_step(x, state, LIFParameters(), 1e-3)


class Net(nn.Module):
    """fc → neuron → fc → neuron, looping over time; ``kind`` picks the neuron library."""

    def __init__(self, kind: str):
        super().__init__()
        torch.manual_seed(0)
        self.kind = kind
        self.fc1, self.fc2 = nn.Linear(12, 10), nn.Linear(10, 4)
        with torch.no_grad():
            self.fc1.weight.mul_(4)
            self.fc2.weight.mul_(4)
        make = {"snntorch": lambda: snn.Leaky(beta=0.8), "ours-leaky": lambda: OursLeaky(0.8),
                "norse": lambda: norse.LIFCell(), "ours-norse": OursNorseLIF}[kind]
        self.n1, self.n2 = make(), make()

    def forward(self, x):
        s1 = s2 = None
        if self.kind in ("snntorch", "ours-leaky"):
            s1, s2 = torch.zeros(x.shape[1], 10), torch.zeros(x.shape[1], 4)
        out = []
        for t in range(x.shape[0]):
            z1, s1 = self.n1(self.fc1(x[t]), s1)
            z2, s2 = self.n2(self.fc2(z1), s2)
            out.append(z2)
        return torch.stack(out)


def _counts(net, x):
    with Meter(net) as m, torch.no_grad():
        y = net(x)
    return y, {c.name: c for c in m.counts()}, m


X = (torch.rand(8, 3, 12, generator=torch.Generator().manual_seed(1)) < 0.5).float()


@pytest.mark.parametrize("peer,ours", [("snntorch", "ours-leaky"), ("norse", "ours-norse")])
def test_peer_neurons_count_like_ours(peer, ours):
    y_p, c_p, _ = _counts(Net(peer), X)
    y_o, c_o, _ = _counts(Net(ours), X)
    assert torch.equal(y_p, y_o)  # same dynamics, so the counts must agree
    assert set(c_p) == set(c_o) == {"fc1", "n1", "fc2", "n2"}
    for name in c_p:
        assert c_p[name].totals == c_o[name].totals, name
        assert c_p[name].per_step == c_o[name].per_step, name
    n1 = c_p["n1"]
    assert n1.kind == "neuron"
    assert n1.totals["neuron_updates"] == 8 * 3 * 10
    assert n1.totals["spikes"] > 0
    # the second Linear is fed by spikes: its synops are the first neuron's spikes × fan-out
    assert c_p["fc2"].totals["synops"] == n1.totals["spikes"] * 4
    assert c_p["fc2"].totals["macs"] == 0


def test_norse_sequence_module_equals_cell_loop():
    torch.manual_seed(2)
    cur = torch.randn(6, 2, 5) * 3
    lif = norse.LIF()
    with Meter(lif) as m:
        z, _ = lif(cur)
    seq = m.counts()[0]
    cell = norse.LIFCell()
    with Meter(cell, layout="B") as m2:
        s = None
        for t in range(6):
            _, s = cell(cur[t], s)
    step = m2.counts()[0]
    assert seq.totals["neuron_updates"] == step.totals["neuron_updates"] == 6 * 2 * 5
    assert seq.totals["spikes"] == step.totals["spikes"] == (z != 0).sum().item()
    assert seq.per_step["spikes"] == step.per_step["spikes"]
    assert seq.state_vars == 2  # Norse LIF keeps v and i


def test_spikingjelly_multistep_node():
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    node = neuron.LIFNode(step_mode="m")
    cur = torch.randn(5, 2, 4) * 3
    with Meter(node) as m:
        z = node(cur)
    c = m.counts()[0]
    assert c.totals["neuron_updates"] == 5 * 2 * 4
    assert c.totals["spikes"] == (z != 0).sum().item()
    assert c.per_step["spikes"] == [(z[t] != 0).sum().item() for t in range(5)]


# -- NeuroBench agreement --------------------------------------------------------------------


def _neurobench(net, data):
    nb = pytest.importorskip("neurobench")  # noqa: F841
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import SNNTorchModel
    from torch.utils.data import DataLoader, TensorDataset

    labels = torch.zeros(data.shape[0], dtype=torch.long)
    loader = DataLoader(TensorDataset(data, labels), batch_size=data.shape[0])
    model = SNNTorchModel(net)
    res = Benchmark(model, loader, [], [], [[], [SynapticOperations, ActivationSparsity]]).run(
        quiet=True)
    with Meter(net, layout="B") as m:  # SNNTorchModel calls net once per time step
        model(data)
    return res, m.report(hardware=["cpu-45nm"])


def test_neurobench_linear_snn_agrees():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(20, 16), snn.Leaky(beta=0.9, init_hidden=True),
                        nn.Linear(16, 5), snn.Leaky(beta=0.9, init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight[:, :4] = 0  # zero weights are excluded by both
    data = (torch.rand(4, 6, 20) < 0.3).float()  # NeuroBench layout [B, T, ...]
    res, rep = _neurobench(net, data)
    ops = res["SynapticOperations"]
    assert rep.totals["synops"] == ops["Effective_ACs"]
    assert rep.totals["macs"] == ops["Effective_MACs"]
    assert rep.totals["dense_synops"] == ops["Dense"]
    assert rep.activation_sparsity == pytest.approx(res["ActivationSparsity"], abs=1e-12)


def test_neurobench_conv_snn_agrees():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), snn.Leaky(beta=0.9, init_hidden=True),
                        nn.Flatten(), nn.Linear(3 * 6 * 6, 4),
                        snn.Leaky(beta=0.9, init_hidden=True, output=True))
    with torch.no_grad():
        net[0].weight.mul_(4)
    data = (torch.rand(3, 5, 1, 6, 6) < 0.25).float()
    data[:, :, :, 0, 0] = 1  # spikes at a border
    res, rep = _neurobench(net, data)
    ops = res["SynapticOperations"]
    assert rep.totals["synops"] == ops["Effective_ACs"]
    assert rep.totals["dense_synops"] == ops["Dense"]
    assert rep.activation_sparsity == pytest.approx(res["ActivationSparsity"], abs=1e-12)


# -- more peer neuron kinds, in the step loops their tutorials write --------------------------


def _peer_neuron(kind: str):
    """(neuron, step) for a peer neuron kind: ``step(neuron, current, state) -> (spikes,
    state)`` as the library's users call it, and the state variables it keeps."""
    if kind == "snntorch.Alpha":  # synaptic excitatory / inhibitory currents and membrane
        n = snn.Alpha(alpha=0.9, beta=0.8)

        def step(n, cur, s):
            s = n.init_alpha() if s is None else s
            spk, *s = n(cur, *s)
            return spk, s

        return n, step, 3
    if kind == "snntorch.Lapicque":
        n = snn.Lapicque(beta=0.9)

        def step(n, cur, s):
            spk, mem = n(cur, n.init_lapicque() if s is None else s)
            return spk, mem

        return n, step, 1
    if kind.startswith("norse."):
        cls = kind.split(".")[1]
        if cls == "IzhikevichCell":
            from norse.torch.functional.izhikevich import tonic_spiking

            n = norse.IzhikevichCell(tonic_spiking)
        else:
            n = getattr(norse, cls)()
        return n, lambda n, cur, s: n(cur, s), {"LIFAdExCell": 3, "IzhikevichCell": 2,
                                                 "LIFBoxCell": 1, "LIFExCell": 2}[cls]  # fmt: skip
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    n = getattr(neuron, kind.split(".")[1])()
    return n, lambda n, cur, s: (n(cur), None), 1


MORE_PEERS = ["snntorch.Alpha", "snntorch.Lapicque", "norse.LIFAdExCell", "norse.IzhikevichCell",
              "norse.LIFBoxCell", "norse.LIFExCell", "spikingjelly.ParametricLIFNode",
              "spikingjelly.QIFNode"]  # fmt: skip


@pytest.mark.parametrize("kind", MORE_PEERS)
def test_more_peer_neurons_count_their_updates_spikes_and_fan_in(kind):
    torch.manual_seed(5)
    t_steps, batch, n_in, n_out = 12, 3, 8, 6
    fc = nn.Linear(n_in, n_out)
    neuron, step, state_vars = _peer_neuron(kind)
    net = nn.ModuleDict({"fc": fc, "n": neuron})
    x = (torch.rand(t_steps, batch, n_in) < 0.5).float()
    gain = 40.0 if kind in ("norse.IzhikevichCell", "norse.LIFBoxCell") else 6.0
    with torch.no_grad():
        fc.weight.abs_().mul_(gain)
        fc.bias.zero_()
    spikes, s = [], None
    with Meter(net) as m, torch.no_grad():
        for t in range(t_steps):
            z, s = step(neuron, fc(x[t]), s)
            spikes.append(z)
    z = torch.stack(spikes)
    c = {k.name: k for k in m.counts()}
    assert set(c) == {"fc", "n"}
    assert c["n"].kind == "neuron"
    assert c["n"].totals["neuron_updates"] == t_steps * batch * n_out
    assert c["n"].totals["spikes"] == int((z != 0).sum()) > 0
    assert c["n"].per_step["spikes"] == [int((z[t] != 0).sum()) for t in range(t_steps)]
    assert c["n"].state_vars == state_vars
    # binary input: every input spike is one accumulate per output
    assert c["fc"].totals["synops"] == int(x.sum()) * n_out
    assert c["fc"].totals["macs"] == 0
