"""Plots render headless (Agg) to PNG with the expected size, labels and drawn data."""

from __future__ import annotations

import shutil

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402

import neurosparse as ns  # noqa: E402
from neurosparse import viz  # noqa: E402
from neurosparse.data import EventArray, make_events  # noqa: E402
from neurosparse.errors import ParameterError, ShapeError  # noqa: E402

DPI = 50


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def save_png(ax, path) -> tuple[int, int]:
    """Save the axes' figure; return the PNG's pixel size after checking it is not blank."""
    fig = ax.figure
    fig.savefig(path, dpi=DPI)
    assert path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        pixels = np.asarray(im.convert("L"))
        size = im.size
    assert pixels.min() < pixels.max()  # something was drawn
    w, h = fig.get_size_inches()
    assert size == (round(w * DPI), round(h * DPI))
    return size


def scatter_points(ax) -> np.ndarray:
    return np.concatenate([c.get_offsets() for c in ax.collections], axis=0)


def test_raster_draws_one_point_per_spike(tmp_path):
    g = torch.Generator().manual_seed(0)
    spikes = (torch.rand(30, 3, 2, 4, 5, generator=g) < 0.1).float()  # [T, B, C, H, W]
    ax = viz.raster(spikes, sample=1)
    save_png(ax, tmp_path / "raster.png")
    assert ax.get_xlabel() == "time step" and ax.get_ylabel() == "neuron"
    assert ax.get_title() == "Spike raster"
    pts = scatter_points(ax)
    flat = spikes[:, 1].reshape(30, -1)
    assert len(pts) == int(flat.sum())
    t, n = np.nonzero(flat.numpy())
    assert sorted(map(tuple, pts.astype(int))) == sorted(zip(t, n))


def test_raster_of_events_splits_polarities(tmp_path):
    t = np.array([0, 1000, 2000, 5000, 9000])
    x, y, p = np.array([0, 1, 2, 3, 0]), np.array([0, 0, 1, 2, 3]), np.array([1, 0, 1, 1, 0])
    ev = EventArray(make_events(t, x, y, p), sensor_size=(4, 4, 2))
    ax = viz.raster(ev, title="my events")
    save_png(ax, tmp_path / "events.png")
    assert ax.get_xlabel() == "time (ms)" and ax.get_title() == "my events"
    on, off = ax.collections
    np.testing.assert_allclose(on.get_offsets(), [[0, 0], [2, 6], [5, 11]])
    np.testing.assert_allclose(off.get_offsets(), [[1, 1], [9, 12]])


def test_membrane_traces_follow_the_neuron(tmp_path):
    lif = ns.LIF(beta=0.8, threshold=1.0)
    x = torch.full((25, 1, 3), 0.3)
    spikes, v = viz.record_membrane(lif, x)
    ref_spikes, _ = lif(x)
    assert torch.equal(spikes, ref_spikes)  # stepping gives the sequence mode's spikes
    ax = viz.membrane_traces(v, spikes, threshold=1.0, neurons=[0, 2])
    save_png(ax, tmp_path / "traces.png")
    assert ax.get_ylabel() == "membrane potential" and ax.get_title() == "Membrane potential"
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert {"neuron 0", "neuron 2", "threshold"} <= set(lines)
    np.testing.assert_allclose(lines["neuron 2"].get_ydata(), v[:, 0, 2].numpy(), rtol=1e-6)
    # hand check of the first crossing: v_t = 0.8 v_{t-1} + 0.3 passes 1 at step 4
    v_free = [0.3 * sum(0.8**k for k in range(t + 1)) for t in range(6)]
    assert v_free[3] < 1.0 < v_free[4]
    assert int(np.nonzero(spikes[:, 0, 0].numpy())[0][0]) == 4
    markers = [ln for ln in ax.lines if ln.get_linestyle() == "None"]
    assert sum(len(m.get_xdata()) for m in markers) == int(spikes[:, 0, [0, 2]].sum())


def test_sparsity_over_time_matches_hand_count(tmp_path):
    a = torch.zeros(4, 2, 5)
    a[0, 0, :] = 1  # step 0: 5 of 10 non-zero
    a[2, 1, 0] = 1  # step 2: 1 of 10
    b = torch.ones(4, 1, 2)
    ax = viz.sparsity_over_time({"hidden": a, "out": b})
    save_png(ax, tmp_path / "sparsity.png")
    assert ax.get_xlabel() == "time step" and ax.get_title() == "Sparsity over time"
    lines = {ln.get_label(): ln.get_ydata() for ln in ax.lines}
    np.testing.assert_allclose(lines["hidden"], [0.5, 1.0, 0.9, 1.0])
    np.testing.assert_allclose(lines["out"], [0.0] * 4)
    ax2 = viz.sparsity_over_time([a])
    assert [ln.get_label() for ln in ax2.lines] == ["layer 0"]
    with pytest.raises(ShapeError):
        viz.step_sparsity(torch.zeros(3))


def _report():
    torch.manual_seed(0)
    net = ns.Sequential(nn.Linear(12, 6), ns.LIF(0.9, threshold=0.5), nn.Linear(6, 3))
    x = (torch.rand(8, 2, 12) < 0.3).float()
    with ns.energy.Meter(net) as m:
        _, rec = viz.record_spikes(net, x)
    return m.report(hardware=["loihi", "cpu-45nm"]), rec, net, x


def test_energy_per_layer_bars_are_the_report_values(tmp_path):
    report, _, _, _ = _report()
    ax = viz.energy_per_layer(report)
    save_png(ax, tmp_path / "energy.png")
    assert ax.get_ylabel() == "dynamic energy per inference (J)"
    assert ax.get_title() == "Energy per layer" and ax.get_yscale() == "log"
    assert [c.get_label() for c in ax.containers] == ["loihi", "cpu-45nm"]
    for bars, res in zip(ax.containers, report.hardware):
        heights = [b.get_height() for b in bars]
        want = [res.layer_energy_j.get(layer.name, 0.0) or np.nan for layer in report.layers]
        np.testing.assert_allclose(heights, want, rtol=1e-12)
    ax1 = viz.energy_per_layer(report, hardware=["cpu-45nm"], log=False)
    assert len(ax1.containers) == 1 and ax1.get_yscale() == "linear"
    with pytest.raises(ParameterError, match="truenorth"):
        viz.energy_per_layer(report, hardware=["truenorth"])
    # a report's own per-step sparsity plots too
    ax2 = viz.sparsity_over_time(report)
    act = report.sparsity_over_time()["activation"]
    np.testing.assert_allclose(ax2.lines[0].get_ydata(), act)


def test_record_spikes_returns_each_neuron_output():
    _, rec, net, x = _report()
    assert list(rec) == ["1"]
    spikes, _ = net[1](net[0](x))
    assert torch.equal(rec["1"], spikes)
    _, lin = viz.record_spikes(net, x, select=lambda m: isinstance(m, nn.Linear))
    assert list(lin) == ["0", "2"] and lin["2"].shape == (8, 2, 3)


def _moving_dot():
    # 3 frames of 1 ms: frame 0 two ON, frame 1 one OFF, frame 2 ON + OFF on one pixel
    t = np.array([0, 100, 1500, 2100, 2900])
    x, y = np.array([0, 1, 2, 3, 3]), np.array([0, 0, 1, 2, 2])
    p = np.array([1, 1, 0, 1, 0])
    return EventArray(make_events(t, x, y, p), sensor_size=(4, 3, 2))


def test_event_frames_count_on_minus_off():
    frames = viz.event_frames(_moving_dot(), frame_us=1000)
    want = np.zeros((3, 3, 4), dtype=np.int32)
    want[0, 0, 0] = want[0, 0, 1] = 1
    want[1, 1, 2] = -1
    want[2, 2, 3] = 1 - 1
    np.testing.assert_array_equal(frames, want)


def test_event_animation_writes_a_gif(tmp_path):
    fig, ax = plt.subplots(figsize=(3, 3))
    path = tmp_path / "events.gif"
    anim = viz.event_animation(_moving_dot(), frame_us=1000, ax=ax, path=path, fps=5)
    assert path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 3
        assert im.size == (round(3 * fig.dpi), round(3 * fig.dpi))
    assert ax.get_xlabel() == "x (pixel)" and ax.get_ylabel() == "y (pixel)"
    # saving drew every frame in turn: the axes now show the last one
    last = viz.event_frames(_moving_dot(), 1000)[-1]
    np.testing.assert_array_equal(ax.images[0].get_array(), last)
    assert ax.get_title() == "Events: 2-3 ms"
    assert anim is not None
    save_png(ax, tmp_path / "frame.png")


def test_mp4_needs_ffmpeg(tmp_path):
    from matplotlib import animation

    ev = _moving_dot()
    if animation.FFMpegWriter.isAvailable():
        viz.event_animation(ev, frame_us=1000, path=tmp_path / "e.mp4")
        assert (tmp_path / "e.mp4").stat().st_size > 0
    else:
        assert shutil.which("ffmpeg") is None
        with pytest.raises(ParameterError, match="ffmpeg"):
            viz.event_animation(ev, frame_us=1000, path=tmp_path / "e.mp4")
    with pytest.raises(ParameterError, match=".gif or .mp4"):
        viz.event_animation(ev, frame_us=1000, path=tmp_path / "e.avi")


def test_bad_inputs_name_the_argument():
    with pytest.raises(ShapeError, match="spikes"):
        viz.raster(torch.zeros(5))
    with pytest.raises(ShapeError, match="sample=4"):
        viz.raster(torch.zeros(5, 2, 3), sample=4)
    with pytest.raises(ShapeError, match="shape of v"):
        viz.membrane_traces(torch.zeros(5, 3), spikes=torch.zeros(5, 4))
    with pytest.raises(ShapeError, match="out of range"):
        viz.membrane_traces(torch.zeros(5, 3), neurons=[3])
