"""Write the figures of the concept and how-to pages, from the package's own code and plots.

    python docs/hooks/make_figures.py [NAME ...]

Each figure is drawn from what the package computes (``neurosparse.viz`` wherever it has
the plot), on small generated data, and written next to its page as
``docs/<section>/<page>.png`` (small: 80 dpi). ``tests/test_docs.py`` checks that every
concept and how-to page shows one. The interop figure needs snnTorch (the ``[interop]``
extra).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

import neurosparse as ns  # noqa: E402
from neurosparse import sdr, viz  # noqa: E402
from neurosparse.sdr.theory import false_match_probability  # noqa: E402

DOCS = Path(__file__).resolve().parents[1]
DPI = 80


def _save(fig, rel: str) -> None:
    path = DOCS / rel
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    print(f"{path.relative_to(DOCS.parent)} ({path.stat().st_size / 1024:.0f} KiB)")


def _recording(seed: int = 0):
    ds = ns.data.SyntheticDVS(1, 8, (32, 32, 2), 100_000, seed=seed)
    return ds[0][0]


def concepts_events():
    ev = _recording()
    to_spikes = ns.data.ToSpikeTensor(sensor_size=(32, 32, 2), dt_us=5000, n_time_bins=20,
                                      start_time=0)  # fmt: skip
    x = to_spikes(ev)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3), layout="constrained")
    viz.raster(ev, ax=a, title=f"{len(ev)} events of a generated bar (t, pixel)")
    diff = x.sum(0)[1] - x.sum(0)[0]
    lim = float(diff.abs().max())
    b.imshow(diff, cmap="RdBu_r", vmin=-lim, vmax=lim)
    b.set(title="binned: ON minus OFF spikes per pixel", xticks=[], yticks=[])
    _save(fig, "concepts/events.png")


def concepts_spikes():
    torch.manual_seed(0)
    lif = ns.LIF(beta=0.9, threshold=1.0)
    current = 0.12 + 0.1 * torch.rand(100, 1, 4)
    spikes, v = viz.record_membrane(lif, current)
    ax = viz.membrane_traces(v, spikes, threshold=1.0, neurons=3,
                             title="LIF, beta 0.9: membrane and spikes (subtract reset)")
    ax.figure.set_size_inches(7, 2.8)
    _save(ax.figure, "concepts/spikes.png")


def concepts_deltas():
    t = torch.linspace(0, 4 * np.pi, 200)
    x = (torch.sin(t) + 0.3 * torch.sin(3.1 * t)).reshape(200, 1, 1)
    enc = ns.DeltaEncoder(threshold=0.1)
    out = enc(x)
    out = out[0] if isinstance(out, tuple) else out
    sent = out.reshape(-1) != 0
    fig, ax = plt.subplots(figsize=(7, 2.8), layout="constrained")
    ax.plot(x.reshape(-1), color="0.6", label="input")
    ax.plot(torch.cumsum(out.reshape(-1), 0), drawstyle="steps-post", label="sum of sent deltas")
    ax.plot(torch.nonzero(sent).reshape(-1), x.reshape(-1)[sent], "k|", ms=8,
            label=f"sent: {int(sent.sum())} of {sent.numel()} steps")
    ax.set(xlabel="step", title="DeltaEncoder(threshold=0.1)")
    ax.legend(fontsize=8)
    _save(fig, "concepts/deltas.png")


def concepts_sdr():
    ns_, theta = [256, 1024, 4096], 10
    fig, ax = plt.subplots(figsize=(7, 2.8), layout="constrained")
    for n in ns_:
        a = np.arange(12, min(n // 2, 400), 4)
        p = [false_match_probability(n, int(k), 20, theta) for k in a]
        ax.semilogy(a, p, label=f"n = {n}")
    ax.set(xlabel="active bits a", ylabel="false-match probability",
           title=f"A 20-synapse segment with threshold {theta} (Ahmad & Hawkins 2016)")
    ax.legend(fontsize=8)
    _save(fig, "concepts/sdr.png")


def howto_event_delta_layers():
    torch.manual_seed(0)
    x = ns.data.load_sample("synthetic-dvs:4")
    net = ns.Sequential(nn.Flatten(2), ns.EventLinear(2 * 32 * 32, 128), ns.LIF(0.9),
                        ns.EventLinear(128, 8), ns.LIF(0.9))  # fmt: skip
    with torch.no_grad():
        _, spikes = viz.record_spikes(net, x)
    names = {k: f"LIF layer {k}" for k in spikes}
    ax = viz.sparsity_over_time({"input": x, **{names[k]: v for k, v in spikes.items()}},
                                title="What an event layer skips: zeros per step")
    ax.figure.set_size_inches(7, 2.8)
    _save(ax.figure, "how-to/event-delta-layers.png")


def howto_interop():
    import snntorch as snn
    from snntorch import utils

    torch.manual_seed(0)
    grad = snn.surrogate.atan()
    net = nn.Sequential(nn.Conv2d(2, 12, 5), nn.MaxPool2d(2),
                        snn.Leaky(beta=0.9, spike_grad=grad, init_hidden=True),
                        nn.Conv2d(12, 32, 5), nn.MaxPool2d(2),
                        snn.Leaky(beta=0.9, spike_grad=grad, init_hidden=True),
                        nn.Flatten(), nn.Linear(800, 10),
                        snn.Leaky(beta=0.9, spike_grad=grad, init_hidden=True, output=True))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.mul_(3)
    x = ns.data.load_sample("synthetic-dvs:1")
    utils.reset(net)
    with torch.no_grad():
        ref = torch.stack([net(x[t])[0] for t in range(x.shape[0])])
        ours, _ = ns.interop.from_snntorch(net)(x)
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 2.6), layout="constrained", sharey=True)
    viz.raster(ref, ax=a, title="snnTorch, stepped")
    viz.raster(ours, ax=b, title=f"from_snntorch, [T, B, ...]: identical {torch.equal(ref, ours)}")
    fig.suptitle("snnTorch tutorial 7's CSNN: output spikes", fontsize=10)
    _save(fig, "how-to/interop.png")


def howto_kernels():
    torch.manual_seed(0)
    x = torch.rand(60, 1, 40) * 0.4
    lif = ns.LIF(beta=0.9)
    out = {}
    for mode in ("numba", "torch"):
        import os

        os.environ["NEUROSPARSE_KERNELS"] = mode
        with torch.no_grad():
            out[mode] = lif(x)[0]
    os.environ.pop("NEUROSPARSE_KERNELS")
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 2.6), layout="constrained", sharey=True)
    viz.raster(out["numba"], ax=a, title="NEUROSPARSE_KERNELS=numba")
    viz.raster(out["torch"], ax=b, title="=torch (the reference): identical "
               f"{torch.equal(out['numba'], out['torch'])}")
    _save(fig, "how-to/kernels.png")


def howto_plots():
    ev = _recording(3)
    x = ns.data.ToSpikeTensor(sensor_size=(32, 32, 2), dt_us=5000, n_time_bins=20,
                              start_time=0)(ev).unsqueeze(1)  # fmt: skip
    net = ns.Sequential(nn.Flatten(2), nn.Linear(2048, 64), ns.LIF(0.9))
    torch.manual_seed(0)
    with torch.no_grad():
        net[1].weight.mul_(4)
        _, spikes = viz.record_spikes(net, x)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 2.8), layout="constrained")
    viz.raster(ev, ax=a)
    viz.raster(next(iter(spikes.values())), ax=b, title="LIF layer: spike raster")
    _save(fig, "how-to/plots.png")


def howto_sequence_memory():
    """The page's own recipe (value and phase encoded, spatial pooler, sequence memory) on
    a cyclic stream with a spike injected."""
    period, steps, spike = 48, 48 * 16, (48 * 14 + 10, 48 * 14 + 14)
    step = np.arange(steps)
    stream = 10 * np.sin(2 * np.pi * step / period)
    stream[spike[0]:spike[1]] += 12
    value_enc = sdr.RDSE(size=400, active=21, resolution=0.5, seed=0)
    time_enc = sdr.ScalarEncoder(size=96, active=9, min=0, max=period, periodic=True)
    pooler = sdr.SpatialPooler(input_size=496, columns=512, active=20, seed=0)
    memory = sdr.SequenceMemory(columns=512, cells_per_column=8, seed=0)
    scores = []
    for k, value in enumerate(stream):
        bits = np.concatenate([value_enc(value).sparse, 400 + time_enc(k % period).sparse])
        scores.append(memory(pooler(sdr.SDR(496, bits), learn=True), learn=True).anomaly)
    scores = np.asarray(scores)
    before = float(scores[spike[0] - 2 * period:spike[0]].mean())
    fig, (a, b) = plt.subplots(2, 1, figsize=(7, 3.4), layout="constrained", sharex=True)
    a.plot(stream, lw=0.8)
    a.set(ylabel="value")
    b.plot(scores, lw=0.8, color="C1")
    for ax in (a, b):
        ax.axvspan(*spike, color="C3", alpha=0.3)
    b.set(xlabel="step", ylabel="anomaly score",
          title=f"mean score {before:.2f} over the two cycles before the spike, "
                f"{scores[spike[0]:spike[1] + 2].max():.2f} at it", ylim=(-0.05, 1.05))
    a.set_title("A cyclic stream (period 48) with a spike injected", fontsize=10)
    b.title.set_fontsize(10)
    _save(fig, "how-to/sequence-memory.png")


def howto_train():
    from neurosparse.demo import DemoConfig, build_model, evaluate, make_tensors, train_epoch

    cfg = DemoConfig(n_train=256, n_test=128, epochs=6)
    torch.manual_seed(0)
    x, y = make_tensors(cfg, cfg.n_train, 0)
    xt, yt = make_tensors(cfg, cfg.n_test, 1)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    gen = torch.Generator().manual_seed(0)
    train_acc, test_acc = [], []
    for _ in range(cfg.epochs):
        train_acc.append(train_epoch(model, opt, x, y, cfg.batch_size, gen))
        test_acc.append(evaluate(model, xt, yt)[0])
    fig, ax = plt.subplots(figsize=(6, 2.6), layout="constrained")
    ep = np.arange(1, cfg.epochs + 1)
    ax.plot(ep, train_acc, "o-", label="train (during the epoch)")
    ax.plot(ep, test_acc, "s-", label="test")
    ax.axhline(1 / cfg.n_classes, ls=":", color="gray", label="chance")
    ax.set(xlabel="epoch", ylabel="accuracy", ylim=(0, 1),
           title="The demo's network on 256 generated recordings")
    ax.legend(fontsize=8)
    _save(fig, "how-to/train.png")


def howto_energy_report():
    x = ns.data.load_sample("synthetic-dvs:4")
    net = ns.Sequential(nn.Flatten(2), ns.EventLinear(2 * 32 * 32, 128), ns.LIF(0.9),
                        nn.Linear(128, 8), ns.LIF(0.9))  # fmt: skip
    with ns.energy.Meter(net) as meter, torch.no_grad():
        net(x)
    report = meter.report(hardware=["loihi", "speck", "cpu-45nm", "gpu-a100-fp16"])
    ax = viz.energy_per_layer(report, title="Dynamic energy per layer and inference")
    ax.figure.set_size_inches(7, 3.6)
    _save(ax.figure, "how-to/energy-report.png")


def howto_read_events():
    from neurosparse.data.fetch_recordings import data_dir

    path = data_dir() / "nmnist" / "Test" / "0" / "00004.bin"
    ev = ns.data.read_events(path) if path.is_file() else _recording(5)
    what = "N-MNIST test 00004 (a 0)" if path.is_file() else "generated"
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 2.8), layout="constrained",
                               width_ratios=[2, 1])
    viz.raster(ev, ax=a, title=f"{what}: {len(ev)} events")
    frames = viz.event_frames(ev, frame_us=float(ev["t"].max() - ev["t"].min() + 1))
    lim = float(np.abs(frames[0]).max())
    b.imshow(frames[0], cmap="RdBu_r", vmin=-lim, vmax=lim)
    b.set(title="event_frames: ON - OFF, all of it", xticks=[], yticks=[])
    _save(fig, "how-to/read-events.png")


FIGURES = {f.__name__: f for f in (concepts_events, concepts_spikes, concepts_deltas,
                                   concepts_sdr, howto_event_delta_layers, howto_interop,
                                   howto_kernels, howto_plots, howto_sequence_memory,
                                   howto_train, howto_energy_report, howto_read_events)}

if __name__ == "__main__":
    for name in sys.argv[1:] or FIGURES:
        FIGURES[name]()
