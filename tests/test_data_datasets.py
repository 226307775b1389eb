"""Datasets: N-MNIST on the real folder layout, folders of recordings, Tonic wrappers, cache."""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import neurosparse.data as nd
from neurosparse.data.fetch_recordings import data_dir, missing_reason
from neurosparse.errors import EventFileNotFoundError

DATA = data_dir()  # $NEUROSPARSE_DATA_DIR, else ../shared/data/dvs (see fetch_recordings)
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=str(missing_reason())
)


@needs_data
def test_nmnist_layout_labels_and_events_equal_tonic():
    import tonic

    ds = nd.NMNIST(DATA / "nmnist", train=True)
    files = sorted((DATA / "nmnist/Train").glob("*/*.bin"))
    assert len(ds) == len(files) == 10
    assert sorted(ds.targets) == list(range(10))  # one sample per digit in the shared set
    for i in range(len(ds)):
        ev, label = ds[i]
        path = Path(ds.samples[i][0])
        assert label == int(path.parent.name)
        assert ev.sensor_size == (34, 34, 2)
        ref = tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
        assert np.array_equal(ev["t"], ref["t"]) and np.array_equal(ev["x"], ref["x"])
    test = nd.NMNIST(DATA / "nmnist", train=False, first_saccade_only=True)
    assert len(test) == 4
    ev, _ = test[0]
    assert len(ev) > 0 and ev["t"].max() < 100_000


@needs_data
def test_nmnist_label_is_the_folder_digit_when_a_split_lacks_digits():
    """The shared Test split has digits 0, 1, 2, 4 only: '4' must stay 4, as in Tonic
    (``int`` of the folder name), not become 3 (its rank among the folders present)."""
    test = nd.NMNIST(DATA / "nmnist", train=False)
    digits = [Path(path).parent.name for path, _ in test.samples]
    assert digits == ["0", "1", "2", "4"]
    assert test.targets == [0, 1, 2, 4] == [test[i][1] for i in range(len(test))]
    assert test.classes == [str(k) for k in range(10)] and test.class_to_idx["4"] == 4


def test_nmnist_rejects_a_class_folder_that_is_not_a_digit(tmp_path):
    ev = nd.make_events([1, 2], [3, 4], [5, 6], [0, 1])
    for d in ("0", "7", "extra"):
        (tmp_path / "Train" / d).mkdir(parents=True)
        nd.write_nmnist(tmp_path / "Train" / d / "00001.bin", ev)
    with pytest.raises(EventFileNotFoundError, match=r"\['extra'\].*not digits"):
        nd.NMNIST(tmp_path)
    (tmp_path / "Train" / "extra" / "00001.bin").unlink()
    (tmp_path / "Train" / "extra").rmdir()
    assert nd.NMNIST(tmp_path).targets == [0, 7]


@needs_data
def test_nmnist_dataloader_with_spike_tensor_and_pad_time():
    ds = nd.NMNIST(DATA / "nmnist", train=True, transform=nd.ToSpikeTensor(dt_us=1000))
    loader = torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=nd.pad_time)
    x, y = next(iter(loader))
    lengths = [ds[i][0].shape[0] for i in range(4)]
    assert x.shape == (max(lengths), 4, 2, 34, 34) and x.dtype == torch.float32
    assert y.tolist() == [ds.samples[i][1] for i in range(4)]
    ev0, _ = nd.NMNIST(DATA / "nmnist", train=True)[0]
    assert torch.equal(x[: lengths[0], 0], nd.ToSpikeTensor((34, 34, 2), dt_us=1000)(ev0))
    assert pickle.loads(pickle.dumps(ds))[1][0].shape[0] == lengths[1]  # worker-safe


def test_missing_datasets_say_where_to_put_files(tmp_path):
    with pytest.raises(EventFileNotFoundError, match="Train/<digit>"):
        nd.NMNIST(tmp_path / "nowhere")
    for factory in (nd.DVSGesture, nd.SHD, nd.POKERDVS):
        with pytest.raises(EventFileNotFoundError, match="never downloads"):
            factory(tmp_path)
    with pytest.raises(EventFileNotFoundError, match="CIFAR10DVS"):
        nd.CIFAR10DVS(tmp_path)
    assert [f for f in tmp_path.rglob("*") if f.is_file()] == []  # nothing was fetched


def write_folder(root: Path, n_per_class=3):
    rng = np.random.default_rng(0)
    written = {}
    for c, writer, suffix in (("cat", nd.write_evt2, ".raw"), ("ant", nd.write_hdf5, ".h5")):
        (root / c).mkdir(parents=True)
        for i in range(n_per_class):
            n = int(rng.integers(50, 200))
            t = np.sort(rng.integers(0, 50_000, n))
            ev = nd.EventArray(
                nd.make_events(
                    t, rng.integers(0, 20, n), rng.integers(0, 10, n), rng.integers(0, 2, n)
                ),
                sensor_size=(20, 10, 2),
            )
            p = writer(root / c / f"r{i}{suffix}", ev, sensor_size=(20, 10, 2))
            written[p] = ev
    return written


def test_event_folder_reads_mixed_formats(tmp_path):
    written = write_folder(tmp_path)
    (tmp_path / "ant" / "notes.txt").write_text("not a recording")
    ds = nd.EventFolder(tmp_path)
    assert ds.classes == ["ant", "cat"] and len(ds) == 6
    for i, (path, label) in enumerate(ds.samples):
        ev, lab = ds[i]
        assert lab == label == (0 if "/ant/" in path else 1)
        assert np.array_equal(np.asarray(ev), np.asarray(written[path]))
        assert ev.sensor_size == (20, 10, 2)


def test_event_folder_refuses_a_class_folder_without_recordings(tmp_path):
    """An empty folder (here 'bee', between 'ant' and 'cat') would take label 1 and turn
    every 'cat' into 2 in this split only: refused, like torchvision's ImageFolder."""
    write_folder(tmp_path)
    (tmp_path / "bee").mkdir()
    (tmp_path / "bee" / "notes.txt").write_text("not a recording")
    with pytest.raises(EventFileNotFoundError, match=r"\['bee'\].*hold no recordings"):
        nd.EventFolder(tmp_path)
    (tmp_path / "bee" / "notes.txt").unlink()
    (tmp_path / "bee").rmdir()
    assert sorted(set(nd.EventFolder(tmp_path).targets)) == [0, 1]


def test_cached_dataset_saves_once_and_returns_equal_samples(tmp_path):
    write_folder(tmp_path / "data")
    calls = []

    class Counting(nd.EventFolder):
        def load(self, index):
            calls.append(index)
            return super().load(index)

    base = Counting(tmp_path / "data", transform=nd.ToSpikeTensor(dt_us=5000))
    cached = nd.CachedDataset(base, tmp_path / "cache")
    first = [cached[i] for i in range(len(cached))]
    second = [cached[i] for i in range(len(cached))]
    assert calls == list(range(len(base)))  # the second pass read no file
    for (a, la), (b, lb), i in zip(first, second, range(len(base)), strict=True):
        assert torch.equal(a, b) and la == lb
        assert torch.equal(a, base[i][0])
    other = nd.CachedDataset(
        Counting(tmp_path / "data", transform=nd.ToSpikeTensor(dt_us=999)), tmp_path / "cache"
    )
    assert other.dir != cached.dir  # another transform, another cache key


KEY_SCRIPT = """
import sys
import neurosparse.data as nd
scale = float(sys.argv[2])
ds = nd.EventFolder(sys.argv[1], transform=lambda ev: ev[ev["t"] < scale * 1000])
print(nd.CachedDataset(ds, sys.argv[3]).dir.name)
"""


def child_key(root, scale, cache):
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(nd.__file__).resolve().parents[2])}
    out = subprocess.run(
        [sys.executable, "-c", KEY_SCRIPT, str(root), str(scale), str(cache)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def test_cached_dataset_default_key_is_the_same_in_every_process(tmp_path):
    write_folder(tmp_path / "data")
    first = child_key(tmp_path / "data", 20, tmp_path / "cache")
    assert first == child_key(tmp_path / "data", 20, tmp_path / "cache")  # another process
    assert first != child_key(tmp_path / "data", 30, tmp_path / "cache")  # closure differs
    # the old key, sha1(repr(dataset)), named the lambda's address: different per process
    ds = nd.EventFolder(tmp_path / "data", transform=lambda ev: ev)
    assert " at 0x" in repr(ds)


def test_cached_dataset_stores_event_arrays_safely(tmp_path):
    write_folder(tmp_path / "data")
    base = nd.EventFolder(tmp_path / "data")
    cached = nd.CachedDataset(base, tmp_path / "cache", key="raw")
    ev, label = cached[0]
    path = cached.dir / "0.pt"
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    again, label2 = cached[0]  # from the file now
    assert isinstance(again, nd.EventArray) and label2 == label
    assert np.array_equal(np.asarray(again), np.asarray(base[0][0]))
    assert again.sensor_size == (20, 10, 2) and again.meta == ev.meta


class _TouchOnLoad:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_cached_dataset_never_loads_code_and_recomputes_old_entries(tmp_path):
    write_folder(tmp_path / "data")
    base = nd.EventFolder(tmp_path / "data")
    cached = nd.CachedDataset(base, tmp_path / "cache", key="k")
    torch.save(base[0], cached.dir / "0.pt")  # the older code pickled the EventArray class
    marker = tmp_path / "ran"
    torch.save((_TouchOnLoad(marker), 0), cached.dir / "1.pt")  # a planted file
    for i in (0, 1):
        with pytest.warns(RuntimeWarning, match="recomputing"):
            ev, label = cached[i]
        assert np.array_equal(np.asarray(ev), np.asarray(base[i][0])) and label == base[i][1]
    assert not marker.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the replaced files now load safely, silently
        assert np.array_equal(np.asarray(cached[1][0]), np.asarray(base[1][0]))
    # an older entry that holds only tensors (a transformed sample) still loads as it is
    spikes = nd.CachedDataset(
        nd.EventFolder(tmp_path / "data", transform=nd.ToSpikeTensor(dt_us=5000)),
        tmp_path / "cache", key="spikes",
    )  # fmt: skip
    torch.save((torch.ones(2), 7), spikes.dir / "0.pt")
    x, label = spikes[0]
    assert torch.equal(x, torch.ones(2)) and label == 7


def test_tonic_wrapper_reads_pokerdvs_layout_like_tonic(tmp_path):
    """A POKER-DVS tree in Tonic's layout (made here): our events equal Tonic's, by field."""
    import tonic

    rng = np.random.default_rng(1)
    base = tmp_path / "POKERDVS"
    (base / tonic.datasets.POKERDVS.train_filename).parent.mkdir(parents=True)
    (base / tonic.datasets.POKERDVS.train_filename).write_bytes(b"")  # archive marker only
    for c in ("cl", "he", "di", "sp"):
        (base / "pips_train" / c).mkdir(parents=True)
        for i in range(5):
            n = int(rng.integers(20, 60))
            arr = np.stack(
                [
                    np.sort(rng.integers(0, 10_000, n)),
                    rng.integers(0, 35, n),
                    rng.integers(0, 35, n),
                    rng.integers(0, 2, n),
                ],
                axis=1,
            )
            np.save(base / "pips_train" / c / f"{c}{i}.npy", arr)
    ours = nd.POKERDVS(tmp_path, train=True)
    ref = tonic.datasets.POKERDVS(str(tmp_path), train=True)
    assert len(ours) == len(ref) == 20
    for i in (0, 7, 19):
        (ev, lab), (rev, rlab) = ours[i], ref[i]
        assert lab == rlab and ev.sensor_size == (35, 35, 2)
        for k in "txyp":
            assert np.array_equal(ev[k].astype(np.int64), rev[k].astype(np.int64))
    x, _ = nd.POKERDVS(tmp_path, transform=nd.ToSpikeTensor(dt_us=1000))[3]
    assert x.shape[1:] == (2, 35, 35)
