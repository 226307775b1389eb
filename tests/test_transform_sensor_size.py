"""The event-to-tensor transforms never guess the sensor size from the coordinates.

An N-MNIST digit whose events never reach row 33 used to come out ``[T, 2, 33, 34]``
from ``ToSpikeTensor(dt_us=...)`` (height = largest y + 1), so recordings of one 34 x 34
sensor got different shapes. Now the size is ``sensor_size=`` or the one the events
carry (a header, ``read_events(..., sensor_size=)``, a dataset), else a ParameterError.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurosparse.data as nd
from neurosparse.data.fetch_recordings import data_dir, missing_reason
from neurosparse.errors import ParameterError

NMNIST_DIR = data_dir() / "nmnist"  # $NEUROSPARSE_DATA_DIR, else ../shared/data/dvs
needs_nmnist = pytest.mark.skipif(
    not NMNIST_DIR.is_dir(), reason=str(missing_reason("nmnist"))
)
# a real test digit whose largest y is 32: the old guess made it 33 rows high
SHORT = NMNIST_DIR / "Test" / "2" / "00002.bin"

TRANSFORMS = {
    "ToSpikeTensor": lambda size: nd.ToSpikeTensor(size, dt_us=1000),
    "ToFrame": lambda size: nd.ToFrame(size, time_window=1000, include_incomplete=True),
    "ToVoxelGrid": lambda size: nd.ToVoxelGrid(size, 5),
    "ToTimeSurface": lambda size: nd.ToTimeSurface(size, dt=10_000, tau=5000),
}


def short_digit_events() -> np.ndarray:
    """Events on a 34 x 34 sensor whose largest x is 33 and largest y is 32."""
    rng = np.random.default_rng(3)
    n = 400
    x = rng.integers(0, 34, n)
    y = rng.integers(0, 33, n)
    x[0], y[0] = 33, 32
    return nd.make_events(np.sort(rng.integers(0, 50_000, n)), x, y, rng.integers(0, 2, n))


@needs_nmnist
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_nmnist_recording_gets_34x34_from_the_reader_even_when_max_y_is_33(name):
    raw = nd.read_events(SHORT)
    assert int(raw["y"].max()) + 1 == 33 and int(raw["x"].max()) + 1 == 34  # the trap
    tf = TRANSFORMS[name](None)
    # the size the reader attaches when told (N-MNIST has no header) ...
    assert tuple(tf(nd.read_events(SHORT, sensor_size=(34, 34))).shape[-2:]) == (34, 34)
    # ... and the one the N-MNIST dataset attaches to every recording
    ds = nd.NMNIST(NMNIST_DIR, train=False)
    (i,) = [k for k, (f, _) in enumerate(ds.samples) if f == str(SHORT)]
    ev, _ = ds[i]
    assert ev.sensor_size == (34, 34, 2)
    assert tuple(tf(ev).shape[-2:]) == (34, 34)


@needs_nmnist
def test_nmnist_test_split_batches_at_34x34():
    ds = nd.NMNIST(NMNIST_DIR, train=False, transform=nd.ToSpikeTensor(dt_us=1000))
    x, _ = nd.pad_time([ds[i] for i in range(len(ds))])
    assert x.shape[2:] == (2, 34, 34)


@needs_nmnist
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_headerless_nmnist_file_without_size_raises_asking_for_it(name):
    ev = nd.read_events(SHORT)
    assert ev.sensor_size is None
    with pytest.raises(ParameterError, match=r"sensor_size=\(W, H, P\)") as info:
        TRANSFORMS[name](None)(ev)
    msg = str(info.value)
    assert name in msg and "sensor_size=(34, 34, 2)" in msg and "NMNIST" in msg
    assert "34 x 33 here" in msg  # names the size it refuses to guess


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_written_nmnist_file_without_size_raises(tmp_path, name):
    """The same without the shared recordings: a .bin we write, read back without size."""
    path = nd.write_nmnist(tmp_path / "digit.bin", short_digit_events())
    ev = nd.read_events(path)
    assert ev.sensor_size is None and ev.meta["format"] == "nmnist"
    with pytest.raises(ParameterError, match=r"needs the sensor size.*sensor_size=\(34, 34, 2\)"):
        TRANSFORMS[name](None)(ev)
    out = TRANSFORMS[name](None)(nd.read_events(path, sensor_size=(34, 34)))
    assert tuple(out.shape[-2:]) == (34, 34)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_plain_array_and_sizeless_event_array_raise(name):
    ev = short_digit_events()
    with pytest.raises(ParameterError, match="plain array carries no size"):
        TRANSFORMS[name](None)(ev)
    # what a Tonic dataset hands a transform: a plain structured array; its size is the
    # dataset's, which the message names
    with pytest.raises(ParameterError, match=r"sensor_size=dataset\.sensor_size"):
        TRANSFORMS[name](None)(ev)
    with pytest.raises(ParameterError, match="made with sensor_size=None"):
        TRANSFORMS[name](None)(nd.EventArray(ev))
    with pytest.raises(ParameterError, match="format 'evt2'"):
        TRANSFORMS[name](None)(nd.EventArray(ev, meta={"format": "evt2"}))


def test_empty_events_without_size_raise_and_with_size_keep_the_shape():
    empty = nd.make_events([], [], [], [])
    with pytest.raises(ParameterError, match="needs the sensor size"):
        nd.ToSpikeTensor(dt_us=1000)(empty)
    assert nd.ToSpikeTensor((34, 34, 2), dt_us=1000)(empty).shape == (1, 2, 34, 34)
    assert nd.ToFrame((34, 34, 2), n_time_bins=3)(empty).shape == (3, 2, 34, 34)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_given_size_wins_over_the_attached_one_and_two_sides_mean_two_polarities(name):
    ev = nd.EventArray(short_digit_events(), sensor_size=(34, 34, 2))
    assert tuple(TRANSFORMS[name]((40, 36))(ev).shape[-2:]) == (36, 40)
    assert tuple(TRANSFORMS[name](None)(ev).shape[-2:]) == (34, 34)


@pytest.mark.parametrize("bad", [(0, 34, 2), (34,), (34, 34, 2, 1)])
def test_malformed_sensor_size_is_a_parameter_error(bad):
    with pytest.raises(ParameterError, match=r"sensor_size must be \(W, H\[, P\]\)"):
        nd.ToSpikeTensor(bad, dt_us=1000)(short_digit_events())


def test_spike_tensor_counts_every_event_at_the_given_size():
    events = short_digit_events()
    counts = nd.ToSpikeTensor((34, 34, 2), dt_us=1000, binary=False)(events)
    assert counts.shape[1:] == (2, 34, 34) and int(counts.sum()) == len(events)
    assert torch.all(counts[:, :, 33, :] == 0)  # row 33 exists and is empty
