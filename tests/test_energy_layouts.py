"""Meter(model) with the default layout="auto" on every calling pattern peers use.

Each test checks samples, time steps and counts against hand counts (non-zero inputs ×
fan-out, neurons × steps × batch), and, where NeuroBench can run the same model, against
NeuroBench's ``SynapticOperations`` (per-sample averages, REFERENCES.md §9).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurosparse.energy import Meter
from neurosparse.errors import ParameterError

snn = pytest.importorskip("snntorch")

T, B = 25, 4


class TutorialMLP(nn.Module):
    """snnTorch tutorial 5's network (784-1000-10, Leaky beta=0.95), stepped by the caller."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.lif1 = nn.Linear(784, 1000), snn.Leaky(beta=0.95)
        self.fc2, self.lif2 = nn.Linear(1000, 10), snn.Leaky(beta=0.95)


class TutorialMLPLoop(TutorialMLP):
    """Tutorial 5 as written: the loop over num_steps inside forward, static input."""

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk_rec = []
        for _ in range(T):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk_rec.append(spk2)
        return torch.stack(spk_rec)


def _layers(m):
    return {c.name: c.totals for c in m.counts()}


def test_snntorch_mlp_stepped_outside_forward_hand_count():
    net = TutorialMLP()
    x = (torch.rand(T, B, 784, generator=torch.Generator().manual_seed(1)) < 0.1).float()
    spikes1 = 0.0
    with Meter(net) as m, torch.no_grad():
        mem1, mem2 = net.lif1.init_leaky(), net.lif2.init_leaky()
        for t in range(T):
            spk1, mem1 = net.lif1(net.fc1(x[t]), mem1)
            spk2, mem2 = net.lif2(net.fc2(spk1), mem2)
            spikes1 += float(spk1.sum())
    assert (m.samples, m.time_steps) == (B, T)
    c = _layers(m)
    assert c["fc1"]["synops"] == float(x.sum()) * 1000  # every weight is non-zero
    assert c["fc2"]["synops"] == spikes1 * 10
    assert c["lif1"]["neuron_updates"] == T * B * 1000
    assert c["lif2"]["neuron_updates"] == T * B * 10
    assert c["lif1"]["spikes"] == spikes1
    per_inf = m.report(hardware=["cpu-45nm"]).totals
    assert per_inf["synops"] == (float(x.sum()) * 1000 + spikes1 * 10) / B


def test_snntorch_tutorial5_loop_inside_forward_graded_input():
    net = TutorialMLPLoop()
    x = torch.rand(B, 784, generator=torch.Generator().manual_seed(2))
    x[x < 0.5] = 0  # graded pixels with zeros: multiply-accumulates, not synops
    with Meter(net) as m, torch.no_grad():
        net(x)
        net(x)  # a second batch: init_leaky() gives fresh state, so a new sequence
    assert (m.samples, m.time_steps) == (2 * B, T)
    c = _layers(m)
    assert c["fc1"]["macs"] == 2 * T * float((x != 0).sum()) * 1000
    assert c["fc1"]["synops"] == 0
    assert c["lif1"]["neuron_updates"] == 2 * T * B * 1000


def _csnn():
    torch.manual_seed(3)
    # snnTorch tutorial 7's CSNN (12C5-MP2-64C5-MP2-FC10) on 2x34x34 N-MNIST frames
    return nn.Sequential(
        nn.Conv2d(2, 12, 5), nn.MaxPool2d(2), snn.Leaky(beta=0.5, init_hidden=True),
        nn.Conv2d(12, 64, 5), nn.MaxPool2d(2), snn.Leaky(beta=0.5, init_hidden=True),
        nn.Flatten(), nn.Linear(64 * 5 * 5, 10),
        snn.Leaky(beta=0.5, init_hidden=True, output=True),
    )


def _synaptic(m, key):
    """Per-sample total of ``key`` over Linear/Conv layers (NeuroBench hooks no pooling)."""
    return sum(c.totals[key] for c in m.counts() if c.kind == "synaptic") / m.samples


def _nb_ops(model, data):
    """NeuroBench SynapticOperations per sample; data is NeuroBench's [B, T, ...]."""
    pytest.importorskip("neurobench")
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.workload import SynapticOperations
    from torch.utils.data import DataLoader, TensorDataset

    labels = torch.zeros(data.shape[0], dtype=torch.long)
    loader = DataLoader(TensorDataset(data, labels), batch_size=data.shape[0])
    res = Benchmark(model, loader, [], [], [[], [SynapticOperations]]).run(quiet=True)
    return res["SynapticOperations"]


def test_snntorch_csnn_step_loop_matches_neurobench():
    from neurobench.models import SNNTorchModel
    from snntorch import utils

    net = _csnn()
    steps, batch = 6, 2
    data = (torch.rand(batch, steps, 2, 34, 34, generator=torch.Generator().manual_seed(4))
            < 0.15).float()
    nb = _nb_ops(SNNTorchModel(net), data)
    with Meter(net) as m, torch.no_grad():
        for _ in range(2):  # tutorial 7's forward_pass, twice: two batches
            utils.reset(net)
            for t in range(steps):
                net(data[:, t])
    assert (m.samples, m.time_steps) == (2 * batch, steps)
    assert _synaptic(m, "synops") == nb["Effective_ACs"]
    assert _synaptic(m, "macs") == nb["Effective_MACs"]
    assert _synaptic(m, "dense_synops") == nb["Dense"]
    rep = m.report(hardware=["cpu-45nm"])
    assert rep.totals["neuron_updates"] == steps * (12 * 15 * 15 + 64 * 5 * 5 + 10)


def test_norse_lifcell_loop_hand_count_and_neurobench():
    norse = pytest.importorskip("norse.torch")

    class NorseNet(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(5)
            self.fc1, self.lif1 = nn.Linear(20, 16), norse.LIFCell()
            self.fc2, self.lif2 = nn.Linear(16, 4), norse.LIFCell()
            with torch.no_grad():
                self.fc1.weight.mul_(20)
                self.fc2.weight.mul_(20)

        def forward(self, x):  # NeuroBench's [B, T, N]
            s1 = s2 = None
            out = []
            for t in range(x.shape[1]):
                z1, s1 = self.lif1(self.fc1(x[:, t]), s1)
                z2, s2 = self.lif2(self.fc2(z1), s2)
                out.append(z2)
            return torch.stack(out, 1)

    from neurobench.models import TorchModel

    net = NorseNet()
    data = (torch.rand(3, 8, 20, generator=torch.Generator().manual_seed(6)) < 0.4).float()
    nb = _nb_ops(TorchModel(net), data)
    with Meter(net) as m, torch.no_grad():  # the user's loop outside forward, two batches
        for _ in range(2):
            s1 = s2 = None
            spikes1 = 0.0
            for t in range(8):
                z1, s1 = net.lif1(net.fc1(data[:, t]), s1)
                z2, s2 = net.lif2(net.fc2(z1), s2)
                spikes1 += float(z1.sum())
    assert (m.samples, m.time_steps) == (6, 8)
    assert spikes1 > 0
    c = _layers(m)
    assert c["fc1"]["synops"] == 2 * float(data.sum()) * 16
    assert c["fc2"]["synops"] == 2 * spikes1 * 4
    assert c["lif1"]["neuron_updates"] == 2 * 8 * 3 * 16
    assert _synaptic(m, "synops") == nb["Effective_ACs"]
    assert _synaptic(m, "dense_synops") == nb["Dense"]


def test_spikingjelly_multistep_net_matches_neurobench():
    pytest.importorskip("spikingjelly")
    from neurobench.models import TorchModel
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(7)
    sj = nn.Sequential(
        layer.Conv2d(2, 4, 3, padding=1), neuron.LIFNode(),
        layer.Flatten(), layer.Linear(4 * 8 * 8, 10), neuron.LIFNode())
    functional.set_step_mode(sj, "m")
    with torch.no_grad():
        sj[0].weight.mul_(5)

    class BatchFirst(nn.Module):  # NeuroBench hands over [B, T, ...]
        def __init__(self):
            super().__init__()
            self.net = sj

        def forward(self, x):
            functional.reset_net(self.net)
            return self.net(x.transpose(0, 1)).transpose(0, 1)

    data = (torch.rand(2, 5, 2, 8, 8, generator=torch.Generator().manual_seed(8)) < 0.3).float()
    nb = _nb_ops(TorchModel(BatchFirst()), data)
    x = data.transpose(0, 1).contiguous()  # SpikingJelly's [T, B, ...]
    with Meter(sj) as m, torch.no_grad():
        functional.reset_net(sj)
        sj(x)
    assert (m.samples, m.time_steps) == (2, 5)
    assert _synaptic(m, "synops") == nb["Effective_ACs"]
    assert _synaptic(m, "dense_synops") == nb["Dense"]
    c = _layers(m)
    assert c["1"]["neuron_updates"] == 5 * 2 * 4 * 8 * 8


def test_spikingjelly_single_step_loop_resets_split_sequences():
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, layer, neuron

    torch.manual_seed(9)
    sj = nn.Sequential(layer.Linear(6, 5), neuron.IFNode())
    x = (torch.rand(3, 7, 2, 6, generator=torch.Generator().manual_seed(10)) < 0.5).float()
    with Meter(sj) as m, torch.no_grad():
        for seq in x:  # three independent sequences of 7 steps, batch 2
            functional.reset_net(sj)
            for t in range(7):
                sj(seq[t])
    assert (m.samples, m.time_steps) == (6, 7)
    assert _layers(m)["0"]["synops"] == float(x.sum()) * 5


def test_ours_sequence_mode_with_foreign_linear():
    import neurosparse as ns

    lif = ns.neurons.LIF(beta=0.9) if hasattr(ns, "neurons") else None
    net_fc = nn.Linear(6, 5)

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.lif = net_fc, lif

        def forward(self, x):  # x [T, B, 6]: the Linear sees [T, B, 6], our LIF knows it
            return self.lif(self.fc(x))[0]

    net = Mixed()
    x = (torch.rand(9, 3, 6, generator=torch.Generator().manual_seed(11)) < 0.5).float()
    with Meter(net) as m, torch.no_grad():
        net(x)
        net(x[:4])  # another batch, shorter: a new sequence (state None)
    assert (m.samples, m.time_steps) == (6, 9)
    fc = _layers(m)["fc"]
    assert fc["synops"] == (float(x.sum()) + float(x[:4].sum())) * 5
    assert m.counts()[0].per_step["synops"][0] == 2 * float(x[0].sum()) * 5


def test_ambiguous_single_call_asks_for_layout():
    fc = nn.Sequential(nn.Linear(6, 5), nn.ReLU())
    with pytest.raises(ParameterError, match="layout='TB'"):
        with Meter(fc):
            fc(torch.ones(4, 3, 6))

    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x.flatten(0, 1))

    net = Flat()
    with pytest.raises(ParameterError, match="layout="):
        with Meter(net):
            net(torch.ones(3, 2, 1, 5, 5))
    with Meter(net, layout="TB") as m:  # the explicit answer is accepted
        net(torch.ones(3, 2, 1, 5, 5))
    assert (m.samples, m.time_steps) == (2, 3)


def test_stateless_model_batches_are_samples():
    fc = nn.Sequential(nn.Linear(6, 5), nn.ReLU())
    with Meter(fc) as m:
        for _ in range(3):
            fc(torch.ones(4, 6))
    assert (m.samples, m.time_steps) == (12, 1)


def test_ours_step_mode_loop_is_counted():
    import neurosparse as ns

    fc, lif = nn.Linear(6, 5), ns.neurons.LIF(beta=0.9)
    x = (torch.rand(2, 7, 3, 6, generator=torch.Generator().manual_seed(12)) < 0.5).float()
    seq = nn.ModuleDict({"fc": fc, "lif": lif})
    with Meter(seq) as m, torch.no_grad():
        for batch in x:  # two sequences: reset() gives fresh state
            lif.reset()
            for t in range(7):
                lif.step(fc(batch[t]))
    assert (m.samples, m.time_steps) == (6, 7)
    c = _layers(m)
    assert c["lif"]["neuron_updates"] == 2 * 7 * 3 * 5
    assert c["fc"]["synops"] == float(x.sum()) * 5
    assert "step" not in lif.__dict__  # the wrapper is gone after the meter


def test_fused_event_linear_lif_counts_like_unfused_and_stays_fused():
    import neurosparse as ns
    from neurosparse.layers.event_linear_lif import fusable

    torch.manual_seed(13)
    x = (torch.rand(6, 3, 40, generator=torch.Generator().manual_seed(14)) < 0.2).float()
    counts = {}
    for fuse in (True, False):
        torch.manual_seed(13)
        net = ns.Sequential(ns.EventLinear(40, 30), ns.LIF(beta=0.9), fuse=fuse)
        with torch.no_grad(), Meter(net) as m:
            assert fusable(x, net[0], net[1])  # the meter's hooks do not block fusion
            y, _ = net(x)
        counts[fuse] = ({c.name: (c.totals, c.per_step) for c in m.counts()},
                        m.samples, m.time_steps, y)
    fused, plain = counts[True], counts[False]
    assert torch.equal(fused[3], plain[3])
    assert fused[1:3] == plain[1:3] == (3, 6)
    assert fused[0] == plain[0]
    assert fused[0]["1"][0]["spikes"] == float(fused[3].sum())


def test_event_linear_sequence_call_records_real_per_step_counts():
    import neurosparse as ns

    torch.manual_seed(15)
    lin = ns.EventLinear(12, 7)
    x = torch.zeros(5, 2, 12)
    x[1, 0, :3] = 1  # 3 events at step 1, 5 at step 3, none elsewhere
    x[3, 1, 4:9] = 1
    with torch.no_grad(), Meter(lin) as m:
        lin(x)
    c = m.counts()[0]
    assert (m.samples, m.time_steps) == (2, 5)
    assert c.per_step["synops"] == [0, 3 * 7, 0, 5 * 7, 0]  # not a flat line
    assert c.per_step["events_in"] == [0, 3, 0, 5, 0]
    assert c.per_step["dense_macs"] == [2 * 12 * 7] * 5


def test_conv_sequence_call_per_step_marked_not_invented():
    import neurosparse as ns

    conv = ns.EventConv2d(1, 2, 3, padding=1)
    x = (torch.rand(4, 2, 1, 6, 6, generator=torch.Generator().manual_seed(16)) < 0.3).float()
    with torch.no_grad(), Meter(conv) as m:
        conv(x)
    c = m.counts()[0]
    assert c.totals["synops"] > 0
    assert not any(c.per_step["synops"])  # border fan-out: no exact split, so none
    assert any("per-step counts not recorded" in n for n in c.notes)
    rep = m.report(hardware=["loihi"])
    assert all(v is None for v in rep.sparsity_over_time()["input"])
    assert rep.layers_without_steps() == ["EventConv2d"]


def test_torch_rnn_says_which_dim_is_time():
    class GRUNet(nn.Module):  # example 03's dense network, small
        def __init__(self, batch_first):
            super().__init__()
            self.bf = batch_first
            self.fc, self.act = nn.Linear(6, 5), nn.ReLU()
            self.rnn = nn.GRU(5, 4, batch_first=batch_first)

        def forward(self, x):
            return self.rnn(self.act(self.fc(x)))[0]

    x = torch.rand(7, 3, 6)  # [T, B, N]
    for bf in (False, True):
        net = GRUNet(bf)
        with torch.no_grad(), Meter(net) as m:
            net(x.transpose(0, 1) if bf else x)
        assert (m.samples, m.time_steps) == (3, 7), bf
        fc = next(c for c in m.counts() if c.name == "fc")
        assert len(fc.per_step["dense_macs"]) == 7


def _streamed(net, x, meter_kw, refill: bool):
    """Step ``net`` through ``x [T, B, ...]``: one buffer refilled in place per step (a
    sensor or DMA buffer), or a fresh tensor per step."""
    from snntorch import utils

    buf = torch.empty_like(x[0])
    with Meter(net, **meter_kw) as m, torch.no_grad():
        utils.reset(net)
        for t in range(x.shape[0]):
            if refill:
                buf.copy_(x[t])
                net(buf)
            else:
                net(x[t].clone())
            if meter_kw.get("layout") == "B" and t == x.shape[0] - 1:
                m.next_sequence()
    return m


def _stream_case():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(50, 20), snn.Leaky(beta=0.9, init_hidden=True))
    x = (torch.rand(10, 2, 50) < 0.05).float()
    x[-1] = 1.0  # the last step differs from every other: a stale read shows
    return net, x


def test_input_buffer_refilled_in_place_is_refused_in_auto_and_counted_in_b():
    net, x = _stream_case()
    with pytest.raises(ParameterError, match="written in place.*layout='B'"):
        _streamed(net, x, {}, refill=True)
    fresh = _layers(_streamed(net, x, {}, refill=False))["0"]
    assert fresh["synops"] == float(x.sum()) * 20
    in_b = _streamed(net, x, {"layout": "B"}, refill=True)
    assert _layers(in_b)["0"]["synops"] == fresh["synops"]
    assert in_b.samples == 2 and in_b.time_steps == 10


def test_stateless_model_counts_a_refilled_buffer_per_call():
    lin = nn.Linear(6, 3)
    xs = [torch.tensor([[1.0, 0, 0, 0, 0, 0]]), torch.ones(1, 6)]
    buf = torch.empty(1, 6)
    with Meter(lin) as m, torch.no_grad():
        for x in xs:
            buf.copy_(x)
            lin(buf)
    assert _layers(m)["Linear"]["synops"] == (1 + 6) * 3 and m.samples == 2


def test_inplace_relu_after_batchnorm_is_no_false_alarm():
    torch.manual_seed(0)

    def net(inplace):
        torch.manual_seed(1)
        return nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(inplace=inplace),
                             nn.Flatten(), nn.Linear(4 * 6 * 6, 5),
                             snn.Leaky(beta=0.9, init_hidden=True)).eval()

    x = (torch.rand(4, 2, 1, 8, 8) < 0.3).float()
    got = [_layers(_streamed(net(i), x, {}, refill=False)) for i in (True, False)]
    assert got[0] == got[1] and got[0]["4"]["macs"] > 0


@pytest.mark.parametrize("kind", ["RLeaky", "RSynaptic", "RLeaky-keywords"])
def test_snntorch_recurrent_neuron_with_explicit_state(kind):
    """RLeaky(x, spk, mem) / RSynaptic(x, spk, syn, mem): the spikes passed back first are
    the output, not the state; every step of one sequence stays one sample."""
    torch.manual_seed(0)
    steps, batch, n_in, hidden = 10, 4, 50, 30
    fc = nn.Linear(n_in, hidden)
    with torch.no_grad():
        fc.weight.mul_(5)
    synaptic = kind == "RSynaptic"
    rlif = (snn.RSynaptic(alpha=0.8, beta=0.9, linear_features=hidden) if synaptic
            else snn.RLeaky(beta=0.9, linear_features=hidden))
    net = nn.ModuleDict({"fc": fc, "rlif": rlif})
    x = (torch.rand(steps, batch, n_in) < 0.3).float()
    out = []
    with Meter(net) as m, torch.no_grad():
        if synaptic:
            spk, syn, mem = rlif.init_rsynaptic()
        else:
            spk, mem = rlif.init_rleaky()
        for t in range(steps):
            if synaptic:
                spk, syn, mem = rlif(fc(x[t]), spk, syn, mem)
            elif kind == "RLeaky-keywords":
                spk, mem = rlif(fc(x[t]), spk=spk, mem=mem)
            else:
                spk, mem = rlif(fc(x[t]), spk, mem)
            out.append(spk)
    out = torch.stack(out)
    assert m.samples == batch and m.time_steps == steps
    layers = _layers(m)
    assert layers["fc"]["synops"] == float(x.sum()) * hidden
    assert layers["rlif.recurrent"]["synops"] == float(out[:-1].sum()) * hidden
    assert layers["rlif"]["neuron_updates"] == steps * batch * hidden


def test_module_with_own_weights_and_no_counter_is_named_in_a_warning():
    """A layer that multiplies by a raw nn.Parameter: the meter has no counter for it and
    must say so rather than leave its work out silently."""
    from neurosparse.errors import UncountedWorkWarning

    class Raw(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(5, 32))

        def forward(self, x):
            return x @ self.w.t()

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(40, 32), snn.Leaky(beta=0.9, init_hidden=True), Raw())
    x = (torch.rand(6, 3, 40) < 0.3).float()
    with pytest.warns(UncountedWorkWarning, match=r"'2' \(Raw\)") as record:
        with Meter(net) as m, torch.no_grad():
            for t in range(6):
                net(x[t])
    assert record[0].filename == __file__  # points at the user's with block
    assert m.uncounted == {"2": "Raw"}
    assert _layers(m)["0"]["synops"] == float(x.sum()) * 32  # the rest is still counted


def test_norse_li_linear_readout_hand_count():
    """Norse's LILinearCell (the usual Norse readout): its own [5, 32] weight driven by the
    LIF spikes, and 5 leaky integrators per sample and step that never spike."""
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    net = norse.SequentialState(nn.Linear(40, 32), norse.LIFCell(), norse.LILinearCell(32, 5))
    with torch.no_grad():
        net[2].input_weights[:, 0] = 0  # a zero column: spikes of unit 0 drive nothing
    x = (torch.rand(12, 3, 40) < 0.5).float() * 3
    spikes = []
    hook = net[1].register_forward_hook(lambda mod, a, o: spikes.append(o[0].clone()))
    with Meter(net) as m, torch.no_grad():
        state = None
        for t in range(12):
            _, state = net(x[t], state)
    hook.remove()
    z = torch.stack(spikes)
    assert z.sum() > 0
    li = _layers(m)["2"]
    assert li["synops"] == float(z[..., 1:].sum()) * 5
    assert li["neuron_updates"] == 12 * 3 * 5 and li["spikes"] == 0
    assert m.uncounted == {}


def test_layout_b_with_layers_called_directly_says_why_no_sample():
    net = nn.ModuleDict({"fc1": nn.Linear(20, 10), "lif1": snn.Leaky(beta=0.9)})
    x = (torch.rand(5, 4, 20) < 0.3).float()
    with Meter(net, layout="B") as m, torch.no_grad():
        mem = net["lif1"].reset_mem()
        for t in range(5):
            _, mem = net["lif1"](net["fc1"](x[t]), mem)
    with pytest.raises(ValueError, match="layers were called directly.*layout='auto'"):
        m.report(hardware=["loihi"])


def test_snntorch_slstm_neurons_are_its_hidden_units_counted_once():
    """SLSTM(8, 6) has 6 neurons, not 8 (its input size), and its inner LSTMCell does not
    count them again; SConv2dLSTM(2, 4, 3) has 4 channels of neurons per pixel."""
    from snntorch import utils

    torch.manual_seed(0)
    steps, batch = 4, 2
    net = nn.Sequential(nn.Linear(10, 8), snn.SLSTM(8, 6, init_hidden=True))
    x = (torch.rand(steps, batch, 10) < 0.5).float()
    with Meter(net) as m, torch.no_grad():
        utils.reset(net)
        for t in range(steps):
            net(x[t])
    layers = _layers(m)
    assert sum(v["neuron_updates"] for v in layers.values()) == steps * batch * 6
    assert layers["1"]["neuron_updates"] == steps * batch * 6
    assert layers["1.lstm_cell"]["macs"] > 0  # its products are still counted

    conv = nn.Sequential(snn.SConv2dLSTM(2, 4, 3, init_hidden=True))
    xc = (torch.rand(steps, batch, 2, 8, 8) < 0.5).float()
    with Meter(conv) as m, torch.no_grad():
        utils.reset(conv)
        for t in range(steps):
            conv(xc[t])
    assert _layers(m)["0"]["neuron_updates"] == steps * batch * 4 * 8 * 8


def test_norse_leaky_integrator_readout_emits_no_spikes():
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    net = norse.SequentialState(nn.Linear(20, 10), norse.LIFCell(), nn.Linear(10, 3),
                                norse.LICell())
    x = (torch.rand(5, 2, 20) < 0.5).float()
    spikes = []
    hook = net[1].register_forward_hook(lambda mod, a, o: spikes.append(o[0].clone()))
    with Meter(net) as m, torch.no_grad():
        state = None
        for t in range(5):
            _, state = net(x[t], state)
    hook.remove()
    li = _layers(m)["3"]
    assert li["spikes"] == 0 and li["neuron_updates"] == 5 * 2 * 3
    # its outputs are voltages: no output sparsity, and left out of the activation
    # sparsity (its "no spikes" were counted as zeros: 0.75 here against 0.60 by hand)
    rep = m.report()
    z = torch.stack(spikes)
    assert rep.activation_sparsity == pytest.approx(1 - float((z != 0).sum()) / z.numel())
    readout = next(layer for layer in rep.layers if layer.name == "3")
    assert readout.output_sparsity is None and not readout.spiking
    assert not type(rep).from_json(rep.to_json()).layers[-1].spiking


def test_meter_splits_by_step_only_layers_whose_events_cost_the_same():
    """A DeltaLinear's events are the changes of its input, not its input's non-zeros:
    constant input sends every delta at step 0. Its sequence call keeps its exact totals
    and gets no invented per-step split; an EventLinear's split stays exact."""
    import neurosparse as ns

    x = torch.ones(4, 2, 6)
    delta = ns.Sequential(ns.DeltaLinear(6, 3, threshold=0.1, mode="event"), ns.LIF(0.9))
    with torch.no_grad(), Meter(delta) as m:
        delta(x)
    c = next(c for c in m.counts() if c.name == "0")
    assert c.totals["synops"] == 2 * 6 * 3 and c.per_step["synops"] == []

    torch.manual_seed(0)
    xs = (torch.rand(4, 2, 6) < 0.4).float()
    event = ns.Sequential(ns.EventLinear(6, 3), ns.LIF(0.9))
    with torch.no_grad(), Meter(event) as m:
        event(xs)
    c = next(c for c in m.counts() if c.name == "0")
    assert c.per_step["synops"] == [float(xs[t].sum()) * 3 for t in range(4)]


def test_pruned_event_layer_says_its_counts_include_zero_weights():
    """Our layers count events x full fan-out; torch layers skip zero weights. A pruned
    EventLinear's report says how the two differ, an unpruned one has nothing to say."""
    import neurosparse as ns

    torch.manual_seed(0)
    x = (torch.rand(3, 2, 6) < 0.5).float()
    notes = {}
    for pruned in (False, True):
        lin = ns.EventLinear(6, 5)
        if pruned:
            with torch.no_grad():
                lin.weight[:, 1] = 0
        with torch.no_grad(), Meter(ns.Sequential(lin, ns.LIF(0.9))) as m:
            m.model(x)
        rec = next(c for c in m.counts() if c.name == "0")
        notes[pruned] = " ".join(rec.notes)
        assert rec.totals["synops"] == float(x.sum()) * 5  # full fan-out either way
    assert "5 of 30 weights are zero" in notes[True] and "zero" not in notes[False]
