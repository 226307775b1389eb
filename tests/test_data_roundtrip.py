"""Writers: write -> read is exact for every writable format; encoders checked by oracles.

Besides our own reader, files we write are read by independent decoders where one
exists (Tonic for N-MNIST, expelliarmus for EVT 2.0, ``evt3`` for EVT 3.0), so a
writer/reader pair cannot agree on a shared mistake. AEDAT 3.1 has no real sample: it
is checked on hand-made packets against the IBM DVS-Gesture formula.
"""

from __future__ import annotations

import struct

import h5py
import numpy as np
import pytest

import neurosparse.data as nd


def events(n, w, h, t_max, seed=0, t_min=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(t_min, t_max, n))
    return nd.make_events(t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n))


def assert_same(a, b):
    assert len(a["t"]) == len(b["t"])
    for k in "txyp":
        assert np.array_equal(
            np.asarray(a[k]).astype(np.int64), np.asarray(b[k]).astype(np.int64)
        ), k


def test_nmnist_roundtrip_with_overflow_markers_equals_tonic(tmp_path):
    import tonic

    ev = events(3000, 34, 34, 3 * (1 << 23), seed=1)  # t beyond 23 bits: markers needed
    path = nd.write_nmnist(tmp_path / "a.bin", ev)
    assert_same(nd.read_events(path), ev)
    ref = tonic.io.read_mnist_file(path, dtype=tonic.datasets.NMNIST.dtype)
    assert_same(ref, ev)


@pytest.mark.parametrize("layout, w, h", [("dvs128", 128, 128), ("davis", 240, 180)])
def test_aedat2_roundtrip(tmp_path, layout, w, h):
    ev = events(2000, w, h, (1 << 32) - 1, seed=2)
    path = nd.write_aedat2(tmp_path / "a.aedat", ev, layout=layout)
    back = nd.read_events(path)
    assert_same(back, ev)
    assert back.meta["layout"] == layout and back.sensor_size == (w, h, 2)


def test_aedat3_roundtrip_across_ts_overflow(tmp_path):
    ev = events(5000, 128, 128, 3 << 31, seed=3)  # t crosses 2**31 twice
    path = nd.write_aedat3(tmp_path / "a.aedat", ev, packet_events=700)
    back = nd.read_events(path)
    assert_same(back, ev)
    assert back.sensor_size == (128, 128, 2) and back.meta["format"] == "aedat3"


def test_aedat3_hand_made_packets_follow_ibm_formula(tmp_path):
    """Polarity packet with an invalid event, a frame packet to skip, a ts-overflow packet."""
    rng = np.random.default_rng(4)
    data = rng.integers(0, 2**32, 40, dtype=np.uint64).astype(np.uint32)
    data |= np.uint32(1)
    data[:5] &= ~np.uint32(1)  # five invalidated events
    ts = rng.integers(0, 2**31, 40).astype(np.uint32)
    body = np.empty(80, "<u4")
    body[0::2], body[1::2] = data, ts
    blob = b"#!AER-DAT3.1\r\n#Source 1: DVS128\r\n#!END-HEADER\r\n"
    blob += struct.pack("<hhiiiiii", 2, 1, 16, 0, 0, 2, 2, 2) + bytes(32)  # frame packet
    blob += struct.pack("<hhiiiiii", 1, 1, 8, 4, 3, 40, 40, 35) + body.tobytes()
    path = tmp_path / "h.aedat"
    path.write_bytes(blob)
    ev = nd.read_events(path, sensor_size=(32768, 32768))
    d = data.astype(np.int64)
    ok = (d & 1) == 1
    # IBM DVS128-Gesture README: x = d >> 17 & 0x1FFF, y = d >> 2 & 0x1FFF, p = d >> 1 & 1;
    # AEDAT 3.1 gives x and y 15 bits; the extra 2 bits are checked with the full mask.
    want_t = (3 << 31) | ts.astype(np.int64)
    assert_same(
        ev,
        {
            "t": want_t[ok],
            "x": (d >> 17)[ok],
            "y": ((d >> 2) & 0x7FFF)[ok],
            "p": ((d >> 1) & 1)[ok],
        },
    )
    assert ev.meta["invalid_events"] == 5 and ev.meta["skipped_packets"] == 1


def test_evt2_roundtrip_and_expelliarmus(tmp_path):
    ev = events(4000, 640, 480, 5_000_000, seed=5)
    path = nd.write_evt2(tmp_path / "a.raw", ev, sensor_size=(640, 480))
    back = nd.read_events(path)
    assert_same(back, ev)
    assert back.sensor_size == (640, 480, 2)
    expelliarmus = pytest.importorskip("expelliarmus", reason="oracle expelliarmus not installed")
    assert_same(expelliarmus.Wizard(encoding="evt2").read(path), ev)


def test_evt2_roundtrip_across_34_bit_wrap(tmp_path):
    ev = events(3000, 64, 64, (1 << 34) + 50_000, t_min=(1 << 34) - 50_000, seed=6)
    back = nd.read_events(nd.write_evt2(tmp_path / "w.raw", ev, sensor_size=(64, 64)))
    assert_same(back, ev)


def test_evt3_roundtrip_across_wraps_equals_evt3_package(tmp_path):
    # gaps of several 2**24 us wrap periods, and many events sharing a timestamp
    ev = events(6000, 1280, 720, 5 << 24, seed=7)
    ev["t"][100:200] = ev["t"][100]
    path = nd.write_evt3(tmp_path / "a.raw", ev, sensor_size=(1280, 720))
    assert_same(nd.read_events(path), ev)
    evt3 = pytest.importorskip("evt3", reason="oracle `evt3` (PyPI) not installed")
    ref = evt3.decode_file(str(path))
    assert_same({"t": ref.t, "x": ref.x, "y": ref.y, "p": ref.p}, ev)


def test_evt3_vectors_and_backward_time_low_equal_evt3_package(tmp_path):
    """Hand-made words: VECT_12 / VECT_8 runs and TIME_LOW stepping back (not a wrap)."""
    W = [
        0x8000 | 0xFFC,
        0x6000 | 0x800,
        0x0000 | 7,  # TIME_HIGH, TIME_LOW, ADDR_Y 7
        0x3000 | (1 << 11) | 100,
        0x4000 | 0b101000000011,
        0x5000 | 0b10000001,  # p=1 base 100
        0x6000 | 0x7F5,  # TIME_LOW steps back 11 us: the same TIME_HIGH, no wrap
        0x2000 | 5,  # ADDR_X p=0 x=5
        0xA000 | 1,
        0xE000,  # trigger, others: no CD events
        0x8000 | 0xFFB,
        0x6000 | 0x002,
        0x2000 | 3,  # TIME_HIGH one step down: TIME_LOW jitter crossing a boundary
        0x8000 | 0x003,
        0x6000 | 0x001,  # TIME_HIGH from 0xFFB to 0x003: one 2**24 wrap
        0x2000 | (1 << 11) | 9,
    ]
    path = tmp_path / "v.raw"
    path.write_bytes(
        b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n" + np.array(W, "<u2").tobytes()
    )
    ev = nd.read_events(path)
    t1 = (0xFFC << 12) | 0x800
    xs = [100, 101, 109, 111, 112, 119]  # VECT_12 bits 0, 1, 9, 11; base 112; VECT_8 bits 0, 7
    assert list(ev["x"]) == xs + [5, 3, 9]
    t_rest = [(0xFFC << 12) | 0x7F5, (0xFFB << 12) | 0x002, (1 << 24) | (0x003 << 12) | 0x001]
    assert list(ev["t"]) == [t1] * 6 + t_rest
    assert list(ev["p"]) == [1] * 6 + [0, 0, 1] and set(ev["y"]) == {7}
    evt3 = pytest.importorskip("evt3", reason="oracle `evt3` (PyPI) not installed")
    ref = evt3.decode_file(str(path))
    assert_same({"t": ref.t, "x": ref.x, "y": ref.y, "p": ref.p}, ev)


def test_hdf5_roundtrip_and_shd_layout(tmp_path):
    ev = nd.EventArray(events(1000, 346, 260, 10**9, seed=8), sensor_size=(346, 260, 2))
    back = nd.read_events(nd.write_hdf5(tmp_path / "a.h5", ev))
    assert_same(back, ev)
    assert back.sensor_size == (346, 260, 2)
    # SHD-style: variable-length rows of spike times (s) and units per sample
    rng = np.random.default_rng(9)
    times = [np.sort(rng.random(n)).astype(np.float32) for n in (30, 50)]
    units = [rng.integers(0, 700, n).astype(np.uint16) for n in (30, 50)]
    path = tmp_path / "shd.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset(
            "spikes/times", data=np.array(times, dtype=object), dtype=h5py.vlen_dtype(np.float32)
        )
        f.create_dataset(
            "spikes/units", data=np.array(units, dtype=object), dtype=h5py.vlen_dtype(np.uint16)
        )
        f.create_dataset("labels", data=np.array([3, 17], dtype=np.uint16))
    got = nd.read_events(path, index=1)
    # Tonic's SHD: t = times * 1e6 truncated, x = unit, p = 1, sensor (700, 1, 1)
    want_t = (times[1].astype(np.float64) * 1e6).astype(np.int64)
    assert_same(got, {"t": want_t, "x": units[1], "y": np.zeros(50), "p": np.ones(50)})
    assert got.sensor_size == (700, 1, 1) and got.meta["label"] == 17
    with pytest.raises(nd_errors().ParameterError, match="index="):
        nd.read_events(path)


def nd_errors():
    import neurosparse.errors as e

    return e


@pytest.mark.parametrize(
    "writer, kw, suffix",
    [
        (nd.write_nmnist, {}, ".bin"),
        (nd.write_aedat2, {}, ".aedat"),
        (nd.write_evt2, {"sensor_size": (128, 128)}, ".raw"),
        (nd.write_evt3, {"sensor_size": (128, 128)}, ".raw"),
        (nd.write_hdf5, {}, ".h5"),
    ],
)
def test_iter_events_matches_read_on_written_files(tmp_path, writer, kw, suffix):
    ev = events(5000, 34, 34, 2 * (1 << 24), seed=10)
    path = writer(tmp_path / f"f{suffix}", ev, **kw)
    parts = list(nd.iter_events(path, chunk_events=777))
    # full chunks: a block of 777 words decodes to fewer events, and blocks are gathered
    assert all(len(p) == 777 for p in parts[:-1]) and 0 < len(parts[-1]) <= 777
    assert_same(np.concatenate(parts), ev)


def test_writers_reject_values_the_format_cannot_hold(tmp_path):
    errors = nd_errors()
    with pytest.raises(errors.InputValueError, match="x must lie in"):
        nd.write_aedat2(tmp_path / "a.aedat", events(10, 300, 10, 100))
    with pytest.raises(errors.InputValueError, match="sorted"):
        nd.write_evt3(tmp_path / "a.raw", nd.make_events([5, 3], [0, 0], [0, 0], [0, 0]))
    # y = 240 is the overflow marker; the writer keeps to what the reader accepts (240 x 180)
    with pytest.raises(errors.InputValueError, match=r"y must lie in \[0, 179\]"):
        nd.write_nmnist(tmp_path / "a.bin", nd.make_events([5], [0], [240], [0]))
    with pytest.raises(errors.InputValueError, match="11-bit"):
        nd.write_evt2(tmp_path / "a.raw", events(10, 30, 30, 100), sensor_size=(4096, 30))
    with pytest.raises(errors.InputValueError, match="outside 1..16384"):
        nd.write_hdf5(tmp_path / "a.h5", events(10, 30, 30, 100), sensor_size=(2**31 - 1, 3))


def test_streaming_memory_is_bounded(tmp_path):
    """Peak memory of iter_events follows the chunk, not the file (2M events, 100k chunks)."""
    import tracemalloc

    ev = events(2_000_000, 640, 480, 10**8, seed=11)
    path = nd.write_evt2(tmp_path / "big.raw", ev, sensor_size=(640, 480))
    del ev
    tracemalloc.start()
    n = 0
    for chunk in nd.iter_events(path, chunk_events=100_000):
        n += len(chunk)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 2_000_000
    whole = 2_000_000 * nd.EVENT_DTYPE.itemsize  # 26 MB if it were all in memory
    assert peak < whole / 4, peak


@pytest.mark.parametrize("end_line", [True, False])
def test_aedat2_davis_rows_140_to_143_are_data_not_header(tmp_path, end_line):
    """A DAVIS word with y = 140..143 starts with '#' (0x23): it must not be read as a
    header line, with jAER's '#End Of ASCII Header' (which write_aedat2 writes) or without
    it (older jAER files), where the header stops at the first line that is not text."""
    n = 400
    rng = np.random.default_rng(12)
    y = np.concatenate([[141, 140, 143], rng.integers(140, 144, n - 3)])
    t = np.sort(rng.integers(1000, 10**6, n))
    t[1] = 10  # 0x0A: a "line end" inside the first events
    t = np.sort(t)
    ev = nd.make_events(t, rng.integers(0, 240, n), y, rng.integers(0, 2, n))
    path = tmp_path / "d.aedat"
    nd.write_aedat2(path, ev, layout="davis")
    raw = path.read_bytes()
    assert b"#End Of ASCII Header\r\n" in raw
    if not end_line:
        path.write_bytes(raw.replace(b"#End Of ASCII Header\r\n", b""))
    back = nd.read_events(path)
    assert_same(back, ev)
    assert back.meta["header_lines"] == (7 if end_line else 6)
    assert_same(np.concatenate(list(nd.iter_events(path, chunk_events=7))), ev)
