"""Event transforms: held to Tonic's output on the same events, and to hand-computed cases."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import tonic.transforms as TT
import torch

import neurosparse.data as nd
from neurosparse.data.transforms import spikes_reference
from neurosparse.errors import DTypeError, InputValueError, ParameterError, ShapeError

SIZE = (23, 17, 2)


def random_events(n=3000, size=SIZE, t_max=50_000, seed=0, tonic_dtype=False):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, t_max, n))
    x, y, p = rng.integers(0, size[0], n), rng.integers(0, size[1], n), rng.integers(0, 2, n)
    if tonic_dtype:  # Tonic's NMNIST dtype: int64 fields in x, y, t, p order
        ev = np.zeros(n, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])
        ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
        return ev
    return nd.make_events(t, x, y, p)


# --- ToSpikeTensor ------------------------------------------------------------------------


def test_spike_tensor_hand_case():
    ev = nd.make_events(
        [100, 100, 1099, 1100, 3099], [0, 0, 2, 1, 3], [1, 1, 0, 2, 3], [1, 1, 0, 1, 0]
    )
    out = nd.ToSpikeTensor((4, 4, 2), dt_us=1000, binary=False)(ev)
    assert out.dtype == torch.float32 and out.shape == (3, 2, 4, 4)  # span 3000 us -> 3 bins
    want = torch.zeros(3, 2, 4, 4)
    want[0, 1, 1, 0] = 2  # two ON events at x=0,y=1 in bin 0
    want[0, 0, 0, 2] = 1  # t=1099 is still bin 0
    want[1, 1, 2, 1] = 1  # t=1100 starts bin 1
    want[2, 0, 3, 3] = 1
    assert torch.equal(out, want)
    binary = nd.ToSpikeTensor((4, 4, 2), dt_us=1000)(ev)
    assert torch.equal(binary, want.clamp(max=1))


@pytest.mark.parametrize("dt", [1000, 3333, 50_000, 70_000])
@pytest.mark.parametrize("tonic_dtype", [False, True])
def test_spike_counts_equal_tonic_toframe(dt, tonic_dtype):
    ev = random_events(tonic_dtype=tonic_dtype)
    ours = nd.ToSpikeTensor(SIZE, dt_us=dt, binary=False)(ev)
    ref = TT.ToFrame(SIZE, time_window=dt, include_incomplete=True)(ev.copy())
    assert ours.shape == ref.shape
    assert np.array_equal(ours.numpy(), ref.astype(np.float32))


def test_spike_tensor_matches_torch_reference_and_n_bins():
    ev = random_events(seed=3)
    for kw in ({"dt_us": 700}, {"n_time_bins": 7}, {"dt_us": 700, "n_time_bins": 20}):
        for binary in (True, False):
            tr = nd.ToSpikeTensor(SIZE, binary=binary, **kw)
            got = tr(ev)
            span = int(ev["t"][-1] - ev["t"][0] + 1)
            if "dt_us" in kw:
                n = kw.get("n_time_bins") or -(-span // kw["dt_us"])
                ref = spikes_reference(ev, SIZE, n, int(ev["t"][0]), 1, kw["dt_us"], binary)
            else:
                ref = spikes_reference(ev, SIZE, 7, int(ev["t"][0]), 7, span, binary)
            assert torch.equal(got, ref), kw
    # n_time_bins alone: every event lands in a bin (sum of counts = number of events)
    counts = nd.ToSpikeTensor(SIZE, n_time_bins=7, binary=False)(ev)
    assert counts.shape[0] == 7 and counts.sum().item() == len(ev)
    # fixed T with dt: only events before T * dt are kept
    win = nd.ToSpikeTensor(SIZE, dt_us=700, n_time_bins=20, binary=False)(ev)
    assert win.sum().item() == int(np.sum(ev["t"] - ev["t"][0] < 700 * 20))


def test_spike_tensor_env_torch_uses_reference(monkeypatch):
    ev = random_events(seed=4)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    a = nd.ToSpikeTensor(SIZE, dt_us=1000, binary=False)(ev)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    b = nd.ToSpikeTensor(SIZE, dt_us=1000, binary=False)(ev)
    assert torch.equal(a, b)


def test_spike_tensor_uses_attached_sensor_size_and_rejects_outside():
    ev = nd.EventArray(random_events(), sensor_size=SIZE)
    assert nd.ToSpikeTensor(dt_us=1000)(ev).shape[1:] == (2, SIZE[1], SIZE[0])
    with pytest.raises(InputValueError, match="outside sensor_size"):
        nd.ToSpikeTensor((10, 10, 2), dt_us=1000)(ev)
    with pytest.raises(ParameterError, match="dt_us"):
        nd.ToSpikeTensor(SIZE)
    with pytest.raises(ParameterError, match="dt_us"):
        nd.ToSpikeTensor(SIZE, dt_us=-5)
    with pytest.raises(DTypeError, match="fields t, x, y, p"):
        nd.ToSpikeTensor(SIZE, dt_us=10)(np.zeros((5, 4)))


def test_spike_tensor_merged_polarity_and_pickle():
    ev = random_events(seed=5)
    tr = nd.ToSpikeTensor((SIZE[0], SIZE[1], 1), dt_us=5000, binary=False)
    out = tr(ev)
    both = nd.ToSpikeTensor(SIZE, dt_us=5000, binary=False)(ev)
    assert torch.equal(out[:, 0], both.sum(1))
    assert torch.equal(pickle.loads(pickle.dumps(tr))(ev), out)


# --- pad_time -------------------------------------------------------------------------------


def test_pad_time_pads_and_stacks_time_first():
    a, b = torch.rand(3, 2, 4, 5), torch.rand(5, 2, 4, 5)
    x, y = nd.pad_time([(a, 1), (b, 7)])
    assert x.shape == (5, 2, 2, 4, 5)
    assert torch.equal(x[:3, 0], a) and torch.equal(x[3:, 0], torch.zeros(2, 2, 4, 5))
    assert torch.equal(x[:, 1], b)
    assert y.dtype == torch.long and y.tolist() == [1, 7]
    x2, lengths, y2 = nd.pack_time([(a, torch.tensor(1)), (b, torch.tensor(7))])
    assert torch.equal(x2, x) and lengths.tolist() == [3, 5] and y2.tolist() == [1, 7]


def test_pad_time_in_dataloader_with_spike_tensors():
    samples = [
        (random_events(n=200 * (i + 1), t_max=10_000 * (i + 1), seed=i), i) for i in range(3)
    ]
    tr = nd.ToSpikeTensor(SIZE, dt_us=1000)
    ds = [(tr(ev), lab) for ev, lab in samples]
    loader = torch.utils.data.DataLoader(ds, batch_size=3, collate_fn=nd.pad_time)
    x, y = next(iter(loader))
    assert x.shape == (max(d[0].shape[0] for d in ds), 3, 2, SIZE[1], SIZE[0])
    for b, (t, _) in enumerate(ds):
        assert torch.equal(x[: t.shape[0], b], t) and x[t.shape[0] :, b].sum() == 0


def test_pad_time_rejects_bad_batches():
    with pytest.raises(ShapeError, match="empty"):
        nd.pad_time([])
    with pytest.raises(ShapeError, match="after the time axis"):
        nd.pad_time([(torch.zeros(2, 2, 3, 3), 0), (torch.zeros(2, 2, 4, 3), 1)])
    with pytest.raises(DTypeError, match="NumPy array.*of events.*ToSpikeTensor"):
        nd.pad_time([(nd.make_events([0], [1], [1], [1]), 0)])  # events, not a tensor
    with pytest.raises(DTypeError, match="torch.Tensor"):
        nd.pad_time([("frames", 0)])


def test_pad_time_takes_tonic_toframe_numpy_frames_as_padtensors_does():
    """Tonic's ToFrame gives NumPy int16 frames; Tonic's PadTensors collates them, and
    pad_time refused them."""
    import tonic

    to_frame = TT.ToFrame(sensor_size=(5, 4, 2), time_window=1000)
    rng = np.random.default_rng(2)
    samples = []
    for i, n in enumerate((30, 80)):
        ev = nd.make_events(np.sort(rng.integers(0, 1000 * (i + 3), n)), rng.integers(0, 5, n),
                            rng.integers(0, 4, n), rng.integers(0, 2, n))
        samples.append((to_frame(np.asarray(ev)), i))
    assert isinstance(samples[0][0], np.ndarray)
    x, y = nd.pad_time(samples)
    want, want_y = tonic.collation.PadTensors(batch_first=False)(samples)
    # the same values; the frames keep their int16 (PadTensors makes float32)
    assert x.dtype == torch.int16 and torch.equal(x.float(), want)
    assert y.tolist() == want_y.tolist() == [0, 1]


# --- Tonic-equivalent transforms --------------------------------------------------------------


@pytest.mark.parametrize(
    "kw",
    [
        {"time_window": 2500},
        {"time_window": 2500, "overlap": 500, "include_incomplete": True},
        {"event_count": 400, "overlap": 50},
        {"n_time_bins": 9, "overlap": 0.2},
        {"n_event_bins": 5},
    ],
)
def test_toframe_equals_tonic(kw):
    ev = random_events(seed=7)
    ours = nd.ToFrame(SIZE, **kw)(ev)
    ref = TT.ToFrame(SIZE, **kw)(ev.copy())
    assert ours.dtype == ref.dtype and np.array_equal(ours, ref)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 100])
@pytest.mark.parametrize("kw", [
    {"event_count": 4, "include_incomplete": True},
    {"n_event_bins": 2, "overlap": 0.9},
    {"n_event_bins": 1, "overlap": 0.5},
])
def test_toframe_slices_past_the_last_event_are_clamped(kw, n):
    """Tonic's event slicers may end a slice past the last event (its ``events[s:e]``
    clamps); the frames must count only the events that exist. A view of a longer array
    shows a read past the end: the events after it would be counted."""
    big = random_events(n=2 * n, seed=n)
    ev = big[:n]
    ours = nd.ToFrame(SIZE, **kw)(ev)
    ref = TT.ToFrame(SIZE, **kw)(ev.copy())
    assert np.array_equal(ours, ref)
    assert ours.reshape(ours.shape[0], -1).sum(1).max() <= n


def test_toframe_by_time_refuses_events_out_of_order():
    ev = random_events(n=50, seed=3)
    ev["t"][[10, 11]] = ev["t"][[11, 10]] + np.array([0, 5])  # one pair swapped apart
    with pytest.raises(InputValueError, match="time order.*np.sort"):
        nd.ToFrame(SIZE, time_window=1000)(ev)
    nd.ToFrame(SIZE, event_count=10)(ev)  # slicing by count does not look at t


@pytest.mark.parametrize("kw", [
    {"time_window": 0}, {"time_window": -5}, {"time_window": 100, "overlap": 100},
    {"n_time_bins": 4, "overlap": 1.0}, {"n_event_bins": 0}, {"event_count": 5, "overlap": -1},
])
def test_toframe_bad_parameters_say_what(kw):
    with pytest.raises(ParameterError, match="must be"):
        nd.ToFrame(SIZE, **kw)


def test_voxel_grid_of_events_out_of_order_stays_in_its_bins():
    """Out of order (AEDAT 3.1 / HDF5 are not order-checked), an event before the first
    one indexed before the grid (memory outside it was written). The grid is defined on
    the earliest and latest times, so it equals the grid of the same events sorted."""
    ev = random_events(n=200, seed=4)
    shuffled = ev[np.random.default_rng(0).permutation(200)]
    sorted_back = np.sort(shuffled, order="t", kind="stable")
    a = nd.ToVoxelGrid(SIZE, 5)(shuffled)
    b = nd.ToVoxelGrid(SIZE, 5)(sorted_back)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(b, TT.ToVoxelGrid(SIZE, 5)(sorted_back.copy()), rtol=1e-12,
                               atol=1e-12)


def test_pad_time_numpy_integer_labels_become_a_long_tensor():
    batch = [(torch.zeros(3, 2), np.int64(3)), (torch.zeros(5, 2), np.int32(1))]
    _, labels = nd.pad_time(batch)
    assert labels.dtype == torch.long and labels.tolist() == [3, 1]


def test_pad_time_keeps_float_tensor_labels_like_tonic():
    """0-d float targets were cut by int() (0.7 -> 0); Tonic's PadTensors keeps them."""
    from tonic.collation import PadTensors

    batch = [(torch.ones(3, 2), torch.tensor(0.7)), (torch.ones(5, 2), torch.tensor(2.5))]
    _, labels = nd.pad_time(batch)
    _, ref = PadTensors(batch_first=False)(batch)
    assert labels.dtype == ref.dtype == torch.float32
    assert torch.equal(labels, ref) and labels.tolist() == pytest.approx([0.7, 2.5])
    _, ints = nd.pad_time([(torch.ones(3, 2), torch.tensor(4)), (torch.ones(1, 2), 2)])
    assert ints.dtype == torch.long and ints.tolist() == [4, 2]


@pytest.mark.parametrize("first", [torch.bool, torch.uint8])
def test_pad_time_promotes_mixed_dtypes_like_tonic(first):
    """batch[0]'s dtype used to hold the batch: 3.0 became True, 0.5 became 0."""
    from tonic.collation import PadTensors

    batch = [(torch.ones(2, 1, 3, dtype=first), 0), (torch.full((3, 1, 3), 0.5) * 6, 1)]
    x, lengths, _ = nd.pack_time(batch)
    ref, _ = PadTensors(batch_first=False)(batch)
    assert x.dtype == ref.dtype == torch.float32 and torch.equal(x, ref)
    assert x[:, 1].flatten().tolist() == [3.0] * 9 and lengths.tolist() == [2, 3]


def test_pad_time_names_a_0d_sample():
    with pytest.raises(ShapeError, match=r"batch\[1\]\[0\] is a 0-d tensor"):
        nd.pad_time([(torch.zeros(2, 3), 0), (torch.tensor(1.0), 1)])


@pytest.mark.parametrize("n_bins", [1, 4, 10])
def test_voxel_grid_equals_tonic_and_leaves_input_alone(n_bins):
    ev = random_events(seed=8)
    before = ev.copy()
    ours = nd.ToVoxelGrid(SIZE, n_bins)(ev)
    ref = TT.ToVoxelGrid(SIZE, n_bins)(ev.copy())  # Tonic rewrites p in place: give it a copy
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert np.array_equal(ev, before)


def test_time_surface_equals_tonic():
    ev = random_events(n=500, seed=9)
    ours = nd.ToTimeSurface(SIZE, dt=5000, tau=3000)(ev)
    ref = TT.ToTimesurface(SIZE, dt=5000, tau=3000)(ev.copy())
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


@pytest.mark.parametrize("filter_time", [200, 2000])
def test_denoise_equals_tonic(filter_time):
    ev = random_events(n=1500, seed=10)
    ours = nd.Denoise(filter_time)(ev)
    ref = TT.Denoise(filter_time=filter_time)(ev.copy())
    assert 0 < len(ours) < len(ev)
    assert np.array_equal(ours, ref)


def test_downsample_crop_timewindow_equal_tonic():
    ev = random_events(seed=11)
    ours = nd.Downsample(time_factor=0.001, spatial_factor=0.5)(ev)
    ref = TT.Downsample(time_factor=0.001, spatial_factor=0.5)(ev.copy())
    assert np.array_equal(ours, ref)
    # CenterCrop to (11, 9) on (23, 17) starts at x0 = (23 - 11) // 2, y0 = (17 - 9) // 2
    ref = TT.CenterCrop(SIZE, (11, 9))(ev.copy())
    ours = nd.Crop(6, 4, 11, 9)(ev)
    assert np.array_equal(ours, ref)
    ours = nd.TimeWindow(1000, 20_000)(ev)
    ref = TT.CropTime(min=1000, max=19_999)(ev.copy())
    assert np.array_equal(ours, ref)


def test_crop_keeps_metadata():
    ev = nd.EventArray(random_events(seed=12), sensor_size=SIZE, meta={"format": "x"})
    out = nd.Crop(2, 3, 10, 8)(ev)
    assert isinstance(out, nd.EventArray) and out.sensor_size == (10, 8, 2)
    assert out["x"].max() < 10 and out["y"].max() < 8
    assert pickle.loads(pickle.dumps(out)).sensor_size == (10, 8, 2)


def test_fractional_bins_and_empty_time_surface_say_what():
    with pytest.raises(ParameterError, match="dt_us must be a whole number"):
        nd.ToSpikeTensor(SIZE, dt_us=0.5)
    with pytest.raises(ParameterError, match="n_time_bins must be a whole number"):
        nd.ToSpikeTensor(SIZE, n_time_bins=2.5)
    with pytest.raises(InputValueError, match="no events"):
        nd.ToTimeSurface(SIZE, dt=1000, tau=500)(random_events(n=0))


def _two_pixel_events(t, dtype="<i8"):
    ev = np.zeros(len(t), [("x", "<i8"), ("y", "<i8"), ("t", dtype), ("p", "<i8")])
    ev["x"] = np.arange(len(t)) % 2
    ev["t"], ev["p"] = t, 1
    return ev


def test_spike_tensor_refuses_fractional_float_times_and_takes_whole_ones():
    """Float times were cut to integers before binning: t = 0.9, 1.1, 2.5 µs at dt 1
    gave bins 0, 1, 2 (floor of t - t0: 0, 0, 1), and times in seconds all fell into
    bin 0 of a one-µs-wide span."""
    to = nd.ToSpikeTensor(sensor_size=(2, 1, 2), dt_us=1, binary=False)
    with pytest.raises(InputValueError, match=r"fractional values \(e.g. 0.9\).*1e6"):
        to(_two_pixel_events([0.9, 1.1, 2.5], "<f8"))
    with pytest.raises(InputValueError, match="fractional"):
        nd.ToSpikeTensor(sensor_size=(2, 1, 2), n_time_bins=4)(
            _two_pixel_events([0, 0.002, 0.004, 0.0057], "<f8"))
    whole = to(_two_pixel_events([3.0, 4.0, 6.0], "<f8"))
    assert torch.equal(whole, to(_two_pixel_events([3, 4, 6])))
    assert whole.sum((1, 2, 3)).tolist() == [1, 1, 0, 1]


def test_spike_tensor_refuses_bin_arithmetic_that_would_overflow():
    """n_time_bins with start_time=0 on absolute AEDAT 4 times (µs since 1970):
    (t - start) * n_time_bins passed 2**63 and both events vanished."""
    t0 = 1605537493718345
    ev = _two_pixel_events([t0, t0 + 1000])
    with pytest.raises(ParameterError, match="overflows 64-bit.*start_time near"):
        nd.ToSpikeTensor(sensor_size=(2, 1, 2), n_time_bins=6000, start_time=0)(ev)
    # below the limit the same start is binned exactly: both in the last of 10 bins
    out = nd.ToSpikeTensor(sensor_size=(2, 1, 2), n_time_bins=10, start_time=0,
                           binary=False)(ev)
    assert out.sum((1, 2, 3)).tolist() == [0] * 9 + [2]


@pytest.mark.parametrize("make", [lambda: nd.ToSpikeTensor(dt_us=1000, start_time=0),
                                  lambda: nd.ToFrame(sensor_size=None, time_window=1000,
                                                     start_time=0)])  # fmt: skip
def test_a_start_time_far_before_absolute_timestamps_is_refused_with_the_reason(make):
    # AEDAT4 / EVT recordings count µs since 1970; start_time=0 would ask for ~1.6e12
    # empty frames first, which numpy refused with "Unable to allocate 1016. PiB"
    t0 = 1_589_163_147_368_868
    ev = nd.make_events(t0 + np.arange(0, 5000, 10), np.arange(500) % 34,
                        np.arange(500) % 30, np.arange(500) % 2)  # fmt: skip
    ev = nd.EventArray(ev, sensor_size=(34, 30, 2))
    with pytest.raises(ParameterError, match=r"start_time=0 lies .* before the first event.*"
                                             r"start_time=None"):  # fmt: skip
        make()(ev)
    # from the first event: 5 ms of events, 4 or 5 frames (ToFrame drops the incomplete one)
    assert make().__class__(**{**make().__dict__, "start_time": None})(ev).shape[0] in (4, 5)
