"""Readers on real recordings, held event for event to independent decoders.

Data: ``neurosparse.data.fetch_recordings.data_dir()`` (``$NEUROSPARSE_DATA_DIR``, else
``<repo>/../shared/data/dvs``; see its PROVENANCE.md); every test here skips with a
reason when it is absent. Oracles: tonic.io.read_mnist_file (N-MNIST / N-Caltech101),
``aedat`` (AEDAT 4), expelliarmus (DAT, EVT 2.0), ``evt3`` (EVT 3.0 — never expelliarmus,
whose EVT 3 timestamps are wrong), a from-spec NumPy decoder written here (AEDAT 2.0, for
which no reliable Python decoder exists), and the text twin of the HDF5 sample.
"""

from __future__ import annotations

import numpy as np
import pytest

import neurosparse.data as nd
from neurosparse.data.fetch_recordings import data_dir, missing_reason

DATA = data_dir()  # $NEUROSPARSE_DATA_DIR, else ../shared/data/dvs (see fetch_recordings)
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=str(missing_reason())
)
pytestmark = needs_data


def same_events(ours, t, x, y, p):
    assert len(ours) == len(t)
    for name, ref in zip("txyp", (t, x, y, p), strict=True):
        assert np.array_equal(ours[name].astype(np.int64), np.asarray(ref).astype(np.int64)), name


def nmnist_files():
    if not DATA.is_dir():
        return []
    return (
        sorted(DATA.glob("nmnist/*/*/*.bin"))
        + sorted(DATA.glob("nmnist_unlabelled/*.bin"))
        + [DATA / "ncaltech101/Faces_easy/image_0001.bin"]
    )


@pytest.mark.parametrize("path", nmnist_files(), ids=lambda p: p.name)
def test_nmnist_bin_equals_tonic(path):
    import tonic

    ref = tonic.io.read_mnist_file(str(path), dtype=tonic.datasets.NMNIST.dtype)
    ours = nd.read_events(path)
    assert ours.meta["format"] == "nmnist"
    same_events(ours, ref["t"], ref["x"], ref["y"], ref["p"])


def test_nmnist_facts_from_provenance():
    ev = nd.read_events(DATA / "nmnist/Train/5/00001.bin")
    assert len(ev) == 4681 and (ev["x"].max(), ev["y"].max()) == (33, 33)
    assert [tuple(int(v) for v in e) for e in ev[:3]] == [
        (893, 18, 16, 1),
        (1060, 20, 17, 1),
        (2443, 17, 9, 0),
    ]
    assert (int(ev["t"][0]), int(ev["t"][-1])) == (893, 305924)


@pytest.mark.parametrize("name", ["tonic_sample", "aestream_davis", "evl_sample"])
def test_aedat4_equals_aedat_package(name):
    aedat = pytest.importorskip("aedat", reason="oracle `aedat` (PyPI) not installed")
    path = DATA / f"aedat4/{name}.aedat4"
    dec = aedat.Decoder(str(path))
    streams = dec.id_to_stream()
    sid = min(k for k, v in streams.items() if v["type"] == "events")
    ref = np.concatenate([pk["events"] for pk in dec if pk["stream_id"] == sid])
    ours = nd.read_events(path)
    same_events(ours, ref["t"], ref["x"], ref["y"], ref["on"])
    assert ours.sensor_size == (streams[sid]["width"], streams[sid]["height"], 2)
    assert ours.meta["compression"] == "lz4"


@pytest.mark.parametrize(
    "rel",
    [
        "prophesee_dat/sample_ncars.dat",
        "prophesee_dat/NCARS_obj_004397_td.dat",
        "evt2/evt2_sample.raw",
    ],
)
def test_dat_and_evt2_equal_expelliarmus(rel):
    expelliarmus = pytest.importorskip("expelliarmus", reason="oracle expelliarmus not installed")
    enc = "dat" if rel.endswith(".dat") else "evt2"
    ref = expelliarmus.Wizard(encoding=enc).read(str(DATA / rel))
    ours = nd.read_events(DATA / rel)
    assert ours.meta["format"] == enc
    same_events(ours, ref["t"], ref["x"], ref["y"], ref["p"])
    if enc == "evt2":
        assert ours.sensor_size == (640, 480, 2)  # Gen3 plugin named in the header


def test_evt3_equals_evt3_package():
    evt3 = pytest.importorskip("evt3", reason="oracle `evt3` (PyPI) not installed")
    path = DATA / "evt3/evt3_sample.raw"
    ref = evt3.decode_file(str(path))
    ours = nd.read_events(path)
    same_events(ours, ref.t, ref.x, ref.y, ref.p)
    assert ours.sensor_size == (ref.sensor_width, ref.sensor_height, 2)
    # PROVENANCE: 219,596 events over 11718656..11727457 us (8.8 ms, not expelliarmus' 54 ms)
    assert len(ours) == 219_596 and (int(ours["t"][0]), int(ours["t"][-1])) == (11718656, 11727457)


def aedat2_from_spec(path, layout):
    """Independent NumPy decoder from the jAER masks (REFERENCES §8)."""
    raw = path.read_bytes()
    pos = 0
    while raw[pos : pos + 1] == b"#":
        pos = raw.index(b"\n", pos) + 1
    words = np.frombuffer(raw[pos:], dtype=">u4").astype(np.int64).reshape(-1, 2)
    a, t = words[:, 0], words[:, 1]
    if layout == "dvs128":
        return t, (a >> 1) & 0x7F, (a >> 8) & 0x7F, a & 1, 0
    dvs = ((a >> 31) & 1 == 0) & ((a >> 10) & 1 == 0)
    a, t = a[dvs], t[dvs]
    return t, (a >> 12) & 0x3FF, (a >> 22) & 0x1FF, (a >> 11) & 1, int((~dvs).sum())


@pytest.mark.parametrize(
    "name, layout, n, size, skipped",
    [
        ("DVS128-2017-03-21-short", "dvs128", 130_114, (128, 128, 2), 0),
        ("IMU_translBoxes", "davis", 162_771, (240, 180, 2), 33_837),
    ],
)
def test_aedat2_equals_spec_decoder(name, layout, n, size, skipped):
    path = DATA / f"aedat2/{name}.aedat"
    t, x, y, p, n_other = aedat2_from_spec(path, layout)
    ours = nd.read_events(path)
    assert ours.meta["layout"] == layout and ours.sensor_size == size
    same_events(ours, t, x, y, p)
    assert len(ours) == n and n_other == skipped == ours.meta["skipped_non_dvs_words"]


def test_aedat2_header_only_file_has_no_events():
    ev = nd.read_events(DATA / "aedat2/sample_aedat_header.aedat")
    assert len(ev) == 0 and ev.sensor_size == (346, 260, 2)  # AEChip Davis346red


def test_hdf5_raw_events_match_text_twin():
    ours = nd.read_events(DATA / "hdf5/event.hdf5")
    txt = np.loadtxt(DATA / "hdf5/event.txt")
    # PROVENANCE: the HDF5 x is the text file's 3rd column and y its 2nd.
    same_events(ours, np.rint(txt[:, 0] * 1e6), txt[:, 2], txt[:, 1], txt[:, 3])


def real_files():
    if not DATA.is_dir():
        return []
    return [
        DATA / "nmnist/Train/3/00008.bin",
        DATA / "aedat2/IMU_translBoxes.aedat",
        DATA / "aedat4/aestream_davis.aedat4",
        DATA / "prophesee_dat/sample_ncars.dat",
        DATA / "evt2/evt2_sample.raw",
        DATA / "evt3/evt3_sample.raw",
        DATA / "hdf5/event.hdf5",
    ]


@pytest.mark.parametrize("path", real_files(), ids=lambda p: p.name)
def test_iter_events_equals_read_events(path):
    whole = nd.read_events(path)
    chunk = max(5, len(whole) // 7 + 3)
    parts = list(nd.iter_events(path, chunk_events=chunk))
    assert all(0 < len(c) <= chunk for c in parts)
    if path.suffix in (".raw", ".bin", ".dat") or path.parent.name == "aedat2":
        # word formats (EVT 2/3, N-MNIST, DAT, AEDAT 2): every chunk but the last is full
        assert all(len(c) == chunk for c in parts[:-1])
    assert np.array_equal(np.concatenate(parts), np.asarray(whole))
    assert all(c.sensor_size == whole.sensor_size for c in parts)


def test_detect_format_on_real_files():
    want = {
        "nmnist/Train/5/00001.bin": "nmnist",
        "aedat2/DVS128-2017-03-21-short.aedat": "aedat2",
        "aedat4/evl_sample.aedat4": "aedat4",
        "prophesee_dat/sample_ncars.dat": "dat",
        "evt2/evt2_sample.raw": "evt2",
        "evt3/evt3_sample.raw": "evt3",
        "hdf5/event.hdf5": "hdf5",
    }
    assert {k: nd.detect_format(DATA / k) for k in want} == want
