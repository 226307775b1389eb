"""Bad input: a specific error, or with errors="skip" a warning that counts what was dropped.

Covers empty files, missing files, wrong magic, truncated files, a corrupt word / packet
in the middle, and coordinates beyond the sensor, per format. The AEDAT 4 cases (and
ZSTD compression) rewrite a real LZ4 recording's packets, so they need the shared data.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

import neurosparse.data as nd
from neurosparse.data.fetch_recordings import data_dir, missing_reason
from neurosparse.errors import (
    CorruptDataError,
    CorruptDataWarning,
    EventFileError,
    EventFileNotFoundError,
    InputValueError,
    ParameterError,
    TruncatedFileError,
    UnknownFormatError,
)

DATA = data_dir()  # $NEUROSPARSE_DATA_DIR, else ../shared/data/dvs (see fetch_recordings)
needs_data = pytest.mark.skipif(
    not DATA.is_dir(), reason=str(missing_reason())
)


def events(n, w, h, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 10**7, n))
    return nd.make_events(t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n))


def split_raw(path: Path, dtype: str) -> tuple[bytes, np.ndarray]:
    """Header bytes and a writable copy of the data words of a Prophesee ``.raw`` file;
    write it back with ``path.write_bytes(header + words.tobytes())``."""
    raw = path.read_bytes()
    head = raw.index(b"% end\n") + 6
    return raw[:head], np.frombuffer(raw[head:], dtype).copy()


def read_skip(path, **kw):
    with pytest.warns(CorruptDataWarning) as rec:
        ev = nd.read_events(path, errors="skip", **kw)
    return ev, str(rec[0].message)


@pytest.mark.parametrize("name", ["a.bin", "a.aedat4", "a.raw", "a.dat", "a.h5", "a.xyz"])
def test_empty_and_missing_files(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(EventFileError, match="empty"):
        nd.read_events(tmp_path / name)
    with pytest.raises(EventFileNotFoundError):
        nd.read_events(tmp_path / ("missing_" + name))
    with pytest.raises(FileNotFoundError):  # the builtin a user would catch
        nd.iter_events(tmp_path / ("missing_" + name))


def test_wrong_magic_and_unknown_format(tmp_path):
    path = nd.write_nmnist(tmp_path / "a.bin", events(10, 34, 34))
    with pytest.raises(UnknownFormatError, match="AEDAT 4.0"):
        nd.read_events(path, format="aedat4")
    with pytest.raises(UnknownFormatError, match="AEDAT 2.0"):
        nd.read_events(path, format="aedat2")
    with pytest.raises(UnknownFormatError, match="format must be one of"):
        nd.read_events(path, format="mp4")
    odd = tmp_path / "a.xyz"
    odd.write_bytes(b"\x01\x02\x03")
    with pytest.raises(UnknownFormatError, match="pass format="):
        nd.read_events(odd)
    (tmp_path / "v1.aedat").write_bytes(b"#!AER-DAT1.0\r\n")
    with pytest.raises(UnknownFormatError, match="not supported"):
        nd.read_events(tmp_path / "v1.aedat")
    with pytest.raises(ParameterError, match="errors must be"):
        nd.read_events(path, errors="ignore")


@pytest.mark.parametrize(
    "writer, kw, suffix, cut, word",
    [
        (nd.write_nmnist, {}, ".bin", 2, 5),
        (nd.write_aedat2, {}, ".aedat", 3, 8),
        (nd.write_evt2, {"sensor_size": (64, 64)}, ".raw", 1, 4),
        (nd.write_evt3, {"sensor_size": (64, 64)}, ".raw", 1, 2),
    ],
)
def test_truncated_files(tmp_path, writer, kw, suffix, cut, word):
    ev = events(500, 64, 64)
    path = Path(writer(tmp_path / f"a{suffix}", ev, **kw))
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(EventFileError, match="truncated"):
        nd.read_events(path)
    got, msg = read_skip(path)
    n = word - cut  # the rest of the cut word
    assert f"{n} truncated {'byte' if n == 1 else 'bytes'}" in msg
    assert got.meta["dropped"]["truncated_bytes"] == n
    n_keep = len(ev) - 1  # the cut lands inside the last event's word
    assert np.array_equal(np.asarray(got), np.asarray(ev[:n_keep]))
    with pytest.warns(CorruptDataWarning, match="truncated"):  # streaming reports it too
        parts = list(nd.iter_events(path, chunk_events=64, errors="skip"))
    assert np.array_equal(np.concatenate(parts), np.asarray(ev[:n_keep]))


def test_evt2_corrupt_word_in_the_middle(tmp_path):
    ev = events(300, 64, 64, seed=1)
    path = Path(nd.write_evt2(tmp_path / "a.raw", ev, sensor_size=(64, 64)))
    header, words = split_raw(path, "<u4")
    cd = np.nonzero((words >> 28) <= 1)[0]
    victim = cd[len(cd) // 2]
    words[victim] = (0x3 << 28) | (words[victim] & 0xFFFFFFF)  # type 0x3 does not exist
    path.write_bytes(header + words.tobytes())
    with pytest.raises(EventFileError, match=f"first at word {victim}"):
        nd.read_events(path)
    got, msg = read_skip(path)
    assert "1 corrupt word" in msg and "1 corrupt words" not in msg
    assert np.array_equal(np.asarray(got), np.delete(np.asarray(ev), len(cd) // 2))


def test_evt3_corrupt_word_is_counted(tmp_path):
    ev = events(300, 64, 64, seed=2)
    path = Path(nd.write_evt3(tmp_path / "a.raw", ev, sensor_size=(64, 64)))
    header, words = split_raw(path, "<u2")
    words = np.insert(words, len(words) // 2, [0x9000, 0xB123])  # two words of no type
    path.write_bytes(header + words.tobytes())
    with pytest.raises(EventFileError, match="2 corrupt word"):
        nd.read_events(path)
    got, msg = read_skip(path)
    assert "2 corrupt words" in msg
    assert np.array_equal(np.asarray(got), np.asarray(ev))  # stateful words around were intact


def test_coordinates_beyond_sensor(tmp_path):
    ev = events(400, 100, 100, seed=3)
    path = nd.write_evt2(tmp_path / "a.raw", ev, sensor_size=(64, 64))  # header claims 64 x 64
    with pytest.raises(InputValueError, match="outside sensor_size"):
        nd.read_events(path)
    got, msg = read_skip(path)
    inside = (ev["x"] < 64) & (ev["y"] < 64)
    assert f"{int((~inside).sum())} events outside sensor" in msg
    assert np.array_equal(np.asarray(got), np.asarray(ev[inside]))
    assert got.meta["dropped"]["outside_sensor"] == int((~inside).sum())
    # a user-given sensor_size is checked the same way on a headerless format
    p2 = nd.write_nmnist(tmp_path / "b.bin", ev)
    with pytest.raises(InputValueError, match=r"\(50, 50, 2\)"):
        nd.read_events(p2, sensor_size=(50, 50))


def test_iter_events_warns_even_when_stopped_early(tmp_path):
    ev = events(2000, 100, 100, seed=4)
    path = nd.write_evt2(tmp_path / "a.raw", ev, sensor_size=(64, 64))
    with pytest.warns(CorruptDataWarning, match="outside sensor"):
        it = nd.iter_events(path, chunk_events=100, errors="skip")
        next(it)
        it.close()


def test_aedat3_corrupt_packet_header(tmp_path):
    ev = events(1000, 128, 128, seed=5)
    path = Path(nd.write_aedat3(tmp_path / "a.aedat", ev, packet_events=100))
    raw = bytearray(path.read_bytes())
    head = raw.index(b"#!END-HEADER\r\n") + 14
    bad_at = head + 5 * (28 + 800)  # header of the 6th packet
    raw[bad_at + 20 : bad_at + 24] = struct.pack("<i", 10**9)  # number > capacity
    path.write_bytes(bytes(raw))
    with pytest.raises(EventFileError, match=f"at byte {bad_at}: corrupt packet header"):
        nd.read_events(path)
    got, msg = read_skip(path)
    assert f"{len(raw) - bad_at} bytes from a bad packet" in msg
    assert np.array_equal(np.asarray(got), np.asarray(ev[:500]))


# --- AEDAT 4: compression and packets, from a real LZ4 recording ------------------------------


def rewrite_aedat4(
    src: Path, dst: Path, codec: str, corrupt_packet: int | None = None
) -> list[int]:
    """Re-encode every packet with ``codec`` (header updated); return packet byte offsets."""
    import lz4.frame
    import zstandard

    raw = src.read_bytes()
    hlen = struct.unpack_from("<i", raw, 14)[0]
    header = bytearray(raw[18 : 18 + hlen])
    root = struct.unpack_from("<I", header, 0)[0]
    vt = root - struct.unpack_from("<i", header, root)[0]
    f_comp, f_table = struct.unpack_from("<HH", header, vt + 4)
    struct.pack_into("<i", header, root + f_comp, {"zstd": 3, "lz4": 1, "none": 0}[codec])
    struct.pack_into("<q", header, root + f_table, -1)  # no data table: read to the end
    end = struct.unpack_from("<q", bytes(raw[18 : 18 + hlen]), root + f_table)[0]
    out = bytearray(raw[:18]) + header
    pos, offsets, k = 18 + hlen, [], 0
    while pos < end:
        sid, size = struct.unpack_from("<ii", raw, pos)
        body = lz4.frame.decompress(raw[pos + 8 : pos + 8 + size])
        if codec == "zstd":
            body = zstandard.ZstdCompressor().compress(body)
        elif codec == "lz4":
            body = lz4.frame.compress(body)
        if sid == 0 and k == corrupt_packet:
            body = body[:8] + bytes(b ^ 0xFF for b in body[8:40]) + body[40:]
        if sid == 0:
            k += 1
        offsets.append(len(out))
        out += struct.pack("<ii", sid, len(body)) + body
        pos += 8 + size
    dst.write_bytes(bytes(out))
    return offsets


@needs_data
@pytest.mark.parametrize("codec", ["zstd", "none"])
def test_aedat4_zstd_and_uncompressed_equal_lz4(tmp_path, codec):
    src = DATA / "aedat4/evl_sample.aedat4"
    dst = tmp_path / f"{codec}.aedat4"
    rewrite_aedat4(src, dst, codec)
    ours = nd.read_events(dst)
    assert ours.meta["compression"] == codec
    assert np.array_equal(np.asarray(ours), np.asarray(nd.read_events(src)))
    aedat = pytest.importorskip("aedat", reason="oracle `aedat` (PyPI) not installed")
    ref = np.concatenate([p["events"] for p in aedat.Decoder(str(dst)) if p["stream_id"] == 0])
    assert np.array_equal(ours["t"], ref["t"].astype(np.int64))
    assert np.array_equal(ours["x"], ref["x"].astype(np.int16))


@needs_data
def test_aedat4_corrupt_packet_in_the_middle(tmp_path):
    src = DATA / "aedat4/evl_sample.aedat4"
    good = nd.read_events(src)
    clean = tmp_path / "clean.aedat4"
    rewrite_aedat4(src, clean, "lz4")
    per_packet = [len(c) for c in nd.iter_events(clean, chunk_events=10**9)]
    bad = tmp_path / "bad.aedat4"
    rewrite_aedat4(src, bad, "lz4", corrupt_packet=3)
    with pytest.raises(EventFileError, match="cannot decode packet"):
        nd.read_events(bad)
    got, msg = read_skip(bad)
    assert "dropped 1 corrupt packet" in msg and "corrupt packets" not in msg
    assert got.meta["dropped"]["corrupt_packets"] == 1
    lo = sum(per_packet[:3])
    want = np.concatenate([np.asarray(good)[:lo], np.asarray(good)[lo + per_packet[3] :]])
    assert np.array_equal(np.asarray(got), want)


@needs_data
def test_aedat4_truncated(tmp_path):
    src = DATA / "aedat4/evl_sample.aedat4"
    dst = tmp_path / "t.aedat4"
    offsets = rewrite_aedat4(src, dst, "lz4")
    raw = dst.read_bytes()
    dst.write_bytes(raw[: offsets[len(offsets) // 2] + 20])  # cut inside a packet
    with pytest.raises(EventFileError, match="truncated"):
        nd.read_events(dst)
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        got = nd.read_events(dst, errors="skip")
    assert any(issubclass(w.category, CorruptDataWarning) for w in rec)
    assert 0 < len(got) < len(nd.read_events(src))


def test_raw_versions_must_be_exact(tmp_path):
    """EVT 2.1 is another encoding: reading it as 2.0 would invent events."""
    body = np.zeros(8, "<u4").tobytes()
    for header, match in (
        (b"% evt 2.1\n% end\n", "evt 2.1"),
        (b"% evt 2147483647.0\n% end\n", "not supported"),
        (b"% evt 3.0\n% format EVT2;width=64;height=64\n% end\n", "no supported encoding"),
    ):
        path = tmp_path / "a.raw"
        path.write_bytes(header + body)
        with pytest.raises(UnknownFormatError, match=match):
            nd.read_events(path, format="evt2" if b"EVT2" in header else None)


def test_evt3_time_high_falling_more_than_jitter_is_corrupt(tmp_path):
    head = b"% evt 3.0\n% format EVT3;height=64;width=64\n% end\n"
    words = [0x8000 | 0x100, 0x6000 | 5, 0x0000 | 7, 0x2000 | 3,  # t = 0x100005, (3, 7)
             0x8000 | 0x0F0, 0x6000 | 5, 0x2000 | 4,  # TIME_HIGH 0x100 -> 0x0F0: corrupt
             0x8000 | 0x101, 0x6000 | 9, 0x2000 | 5]  # fmt: skip
    path = tmp_path / "a.raw"
    path.write_bytes(head + np.array(words, "<u2").tobytes())
    with pytest.raises(EventFileError, match=r"first at word 4 of the data section \(byte"):
        nd.read_events(path)
    got, msg = read_skip(path)
    assert msg.endswith("dropped 1 corrupt word")
    # the bad TIME_HIGH is counted; decoding resynchronises on the next one
    assert list(got["x"]) == [3, 4, 5] and got["t"][2] == (0x101 << 12) | 9


def test_time_order_is_checked_the_same_when_streaming(tmp_path):
    from neurosparse.errors import TimestampOrderError

    ev = events(1000, 64, 64, seed=9)
    path = Path(nd.write_evt2(tmp_path / "a.raw", ev, sensor_size=(64, 64)))
    header, words = split_raw(path, "<u4")
    highs = np.nonzero((words >> 28) == 0x8)[0]
    victim = highs[len(highs) // 2]
    words[victim] = (0x8 << 28) | max(0, int(words[victim] & 0xFFFFFFF) - 5000)  # 0.3 s back
    path.write_bytes(header + words.tobytes())
    with pytest.raises(TimestampOrderError, match="timestamps go backwards"):
        nd.read_events(path)
    with pytest.raises(TimestampOrderError):
        list(nd.iter_events(path, chunk_events=100))
    got, msg = read_skip(path)
    assert "1 event whose timestamp goes backwards" in msg
    cd = np.nonzero((words >> 28) <= 1)[0]
    nxt = highs[len(highs) // 2 + 1]
    shifted = np.nonzero((cd > victim) & (cd < nxt))[0]  # events stamped with the bad high
    assert len(shifted) and np.array_equal(np.asarray(got), np.delete(np.asarray(ev), shifted))
    with pytest.warns(CorruptDataWarning):
        parts = list(nd.iter_events(path, chunk_events=128, errors="skip"))
    assert np.all(np.diff(np.concatenate(parts)["t"]) >= 0)


def test_aedat3_timestamp_with_the_sign_bit_is_corrupt(tmp_path):
    """libcaer timestamps are non-negative int32: bit 31 set is damage, not a time to mask."""
    ev = events(300, 128, 128, seed=10)
    path = Path(nd.write_aedat3(tmp_path / "a.aedat", ev, packet_events=100))
    raw = bytearray(path.read_bytes())
    head = raw.index(b"#!END-HEADER\r\n") + 14
    at = head + (28 + 800) + 28 + 8 * 7 + 4  # t word of event 7 of the 2nd packet
    raw[at + 3] |= 0x80
    path.write_bytes(bytes(raw))
    with pytest.raises(EventFileError, match="1 corrupt event"):
        nd.read_events(path)
    got, msg = read_skip(path)
    assert "1 corrupt event" in msg and "corrupt events" not in msg
    assert np.array_equal(np.asarray(got), np.delete(np.asarray(ev), 107))


@pytest.mark.parametrize("version", ["evt2", "evt3"])
def test_evt_events_before_the_first_time_high_have_no_time(tmp_path, version):
    """Events before the first TIME_HIGH would get TIME_HIGH = 0 (EVT 3.0: also y = 0
    before the first ADDR_Y): their time is unknown, so they raise or are dropped, counted."""
    ev = events(300, 64, 64, seed=11)
    ev["t"] = ev["t"] // 2000 + (5 << 20)  # ~2 TIME_HIGH values of EVT 3.0, far from 0
    writer, dtype = (nd.write_evt2, "<u4") if version == "evt2" else (nd.write_evt3, "<u2")
    path = Path(writer(tmp_path / "a.raw", ev, sensor_size=(64, 64)))
    header, words = split_raw(path, dtype)
    typ = words >> (28 if version == "evt2" else 12)
    assert typ[0] == 0x8  # the writer starts with TIME_HIGH, as recordings do
    if version == "evt2":
        cut = 1  # drop the first TIME_HIGH: events follow until the next one
        n_early = int(np.sum(typ[: np.nonzero(typ == 0x8)[0][1]] <= 1))
    else:
        cut = 2  # drop TIME_HIGH and TIME_LOW: ADDR_Y, ADDR_X... follow
        n_early = int(np.sum(typ[: np.nonzero(typ == 0x8)[0][1]] == 0x2))
    assert n_early > 0
    path.write_bytes(header + words[cut:].tobytes())
    with pytest.raises(CorruptDataError, match=rf"{n_early} event\(s\) lie before the first"):
        nd.read_events(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptDataWarning)  # raise mode drops nothing
        with pytest.raises(CorruptDataError, match="TIME_HIGH"):
            list(nd.iter_events(path, chunk_events=5))
    got, msg = read_skip(path)
    assert f"dropped {n_early} events before the first TIME_HIGH" in msg
    assert got.meta["dropped"]["before_state_words"] == n_early
    assert np.array_equal(np.asarray(got), np.asarray(ev[n_early:]))
    with pytest.warns(CorruptDataWarning, match=f"{n_early} events before"):
        parts = list(nd.iter_events(path, chunk_events=5, errors="skip"))
    assert np.array_equal(np.concatenate(parts), np.asarray(ev[n_early:]))


def test_evt3_events_before_the_first_addr_y_or_vect_base_x_are_dropped(tmp_path):
    head = b"% evt 3.0\n% format EVT3;height=64;width=64\n% end\n"
    words = [0x8000 | 0x100, 0x6000 | 5,
             0x2000 | 3,  # ADDR_X before any ADDR_Y: row unknown
             0x0000 | 7, 0x4000 | 0b101,  # vector before any VECT_BASE_X: column unknown
             0x2000 | 4, 0x3000 | 10, 0x5000 | 0b11]  # fmt: skip
    path = tmp_path / "a.raw"
    path.write_bytes(head + np.array(words, "<u2").tobytes())
    with pytest.raises(CorruptDataError, match=r"3 event\(s\).*first at word 2 of the data"):
        nd.read_events(path)
    got, msg = read_skip(path)
    assert "dropped 3 events before the first TIME_HIGH, TIME_LOW or ADDR_Y" in msg
    assert [(int(e["x"]), int(e["y"])) for e in got] == [(4, 7), (10, 7), (11, 7)]


def test_evt_header_without_end_line_stops_at_binary_data(tmp_path):
    """No '% end' line and a first data byte 0x25 ('%'): the data is not header text."""
    ev = events(500, 64, 64, seed=12)
    ev["t"] = ev["t"] // 4000 + (0x725 << 12)  # first word TIME_HIGH 0x725: bytes 25 87
    path = Path(nd.write_evt3(tmp_path / "a.raw", ev, sensor_size=(64, 64)))
    header, words = split_raw(path, "<u2")
    assert words[:1].tobytes()[:1] == b"%"
    path.write_bytes(header.replace(b"% end\n", b"") + words.tobytes())
    got = nd.read_events(path)
    assert np.array_equal(np.asarray(got), np.asarray(ev))
    assert got.sensor_size == (64, 64, 2)


def test_aedat3_packet_of_undefined_type_is_reported(tmp_path):
    """A polarity packet whose type field is damaged must not vanish unseen."""
    ev = events(1000, 128, 128, seed=13)
    path = Path(nd.write_aedat3(tmp_path / "a.aedat", ev, packet_events=100))
    raw = bytearray(path.read_bytes())
    at = raw.index(b"#!END-HEADER\r\n") + 14 + 2 * (28 + 800)  # the 3rd packet
    for typ, match, keep in ((200, "packet of undefined type", 900), (3, "corrupt packet", 200)):
        struct.pack_into("<h", raw, at, typ)  # 3 = IMU6, whose events are 36 bytes, not 8
        path.write_bytes(bytes(raw))
        with pytest.raises(CorruptDataError, match=f"{match}.*at byte {at}|at byte {at}.*{match}"):
            nd.read_events(path)
        got, msg = read_skip(path)
        assert len(got) == keep and np.array_equal(np.asarray(got[:200]), np.asarray(ev[:200]))
    assert "dropped" in msg and got.meta["skipped_packets"] == 0


def _aedat4_table_field(raw: bytes) -> int:
    """Byte offset in the file of the header's dataTablePosition (int64)."""
    root = struct.unpack_from("<I", raw, 18)[0]
    vt = root - struct.unpack_from("<i", raw, 18 + root)[0]
    return 18 + root + struct.unpack_from("<H", raw, 18 + vt + 6)[0]


@needs_data
def test_aedat4_undeclared_stream_and_damaged_table_position(tmp_path):
    src = DATA / "aedat4/evl_sample.aedat4"
    good = np.asarray(nd.read_events(src))
    raw = src.read_bytes()
    table = struct.unpack_from("<q", raw, _aedat4_table_field(raw))[0]
    pos, packets = 18 + struct.unpack_from("<i", raw, 14)[0], []
    while pos < table:
        packets.append((pos, *struct.unpack_from("<ii", raw, pos)))
        pos += 8 + packets[-1][2]
    evts = [p for p in packets if p[1] == 0]
    bad = tmp_path / "b.aedat4"
    # an event packet whose stream id became 7, which the header does not declare
    at = evts[1][0]
    bad.write_bytes(raw[:at] + struct.pack("<i", 7) + raw[at + 4 :])
    with pytest.raises(CorruptDataError, match=f"at byte {at}: packet of stream 7"):
        nd.read_events(bad)
    got, msg = read_skip(bad)
    assert "1 packet of an undeclared stream" in msg and 0 < len(got) < len(good)
    assert got.meta["dropped"]["undeclared_stream_packets"] == 1
    # the data-table position inside the header, or on a packet: the header is damaged
    field = _aedat4_table_field(raw)
    for value, match in ((100, "inside the header"), (evts[1][0], "no lz4-compressed data table")):
        bad.write_bytes(raw[:field] + struct.pack("<q", value) + raw[field + 8 :])
        for mode in ("raise", "skip"):
            with pytest.raises(CorruptDataError, match=match):
                nd.read_events(bad, errors=mode)
    # a file cut between two packets: its data table is missing
    cut = evts[2][0]
    bad.write_bytes(raw[:cut])
    with pytest.raises(TruncatedFileError, match=f"ends at byte {cut}.*data table at byte {table}"):
        nd.read_events(bad)
    got, msg = read_skip(bad)
    assert "cut off before the data table" in msg
    assert got.meta["dropped"]["bytes_before_data_table"] > 0
    assert np.array_equal(np.asarray(got), good[: len(got)]) and 0 < len(got) < len(good)
    # packets of the declared IMU / frame / trigger streams are still skipped quietly
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nd.read_events(src).meta["skipped_packets"] == len(packets) - len(evts)


@needs_data
def test_aedat4_without_sensor_size_still_rejects_negative_coordinates(tmp_path):
    src = DATA / "aedat4/evl_sample.aedat4"
    plain = tmp_path / "plain.aedat4"
    rewrite_aedat4(src, plain, "none")  # uncompressed: event structs lie in the file as is
    good = nd.read_events(plain)
    raw = bytearray(plain.read_bytes())
    i = raw.index(b'key="sizeX"')
    raw[i : i + 11] = b'key="sizeQ"'  # the header no longer gives the width
    e = good[5]
    at = raw.index(struct.pack("<qhh", int(e["t"]), int(e["x"]), int(e["y"])))
    struct.pack_into("<h", raw, at + 8, -3)
    plain.write_bytes(bytes(raw))
    with pytest.raises(InputValueError, match="outside the largest plausible"):
        nd.read_events(plain)
    got, msg = read_skip(plain)
    assert got.sensor_size is None and "1 event outside" in msg
    assert np.array_equal(np.asarray(got), np.delete(np.asarray(good), 5))


# --- headers cut short, addresses, misnamed files, cut-short frames ---------------------------


def _writers_header_and_events(tmp_path):
    """(name, path, header length) of files our writers make, 50 events each."""
    ev = events(50, 64, 64, seed=14)
    out = []
    for name, writer, kw, suffix, end in (
        ("aedat2", nd.write_aedat2, {}, ".aedat", b"#End Of ASCII Header\r\n"),
        ("aedat2-davis", nd.write_aedat2, {"layout": "davis"}, ".aedat", b"Header\r\n"),
        ("evt2", nd.write_evt2, {"sensor_size": (64, 64)}, ".raw", b"% end\n"),
        ("evt3", nd.write_evt3, {"sensor_size": (64, 64)}, ".raw", b"% end\n"),
        ("aedat3", nd.write_aedat3, {}, ".aedat", b"#!END-HEADER\r\n"),
    ):
        path = Path(writer(tmp_path / f"{name}{suffix}", ev, **kw))
        raw = path.read_bytes()
        out.append((name, path, raw.index(end) + len(end)))
    return out


def test_file_cut_inside_its_header_is_truncated(tmp_path):
    """A file that ends inside a header line holds no events, but reading it as a
    header-only file (0 events), or blaming a cut '% evt 3.0' / '# AEChip:' line as an
    unknown encoding / chip, hides that it was cut."""
    for name, path, head in _writers_header_and_events(tmp_path):
        raw = path.read_bytes()
        lines = raw[:head].split(b"\n")
        cuts = {5, head - 3}  # inside the first line ('% evt' / '#!AER') and the end line
        at = raw.find(b"AEChip: ") + 12  # inside the chip line: "pass layout=" misled
        if at > 12:
            cuts.add(at)
        cuts.add(len(lines[0]) + 1 + len(lines[1]) // 2)
        for cut in sorted(cuts):
            path.write_bytes(raw[:cut])
            for mode in ("raise", "skip"):
                at = f"ends inside its header, at byte {cut}"
                with pytest.raises(TruncatedFileError, match=at):
                    nd.read_events(path, errors=mode)
                with pytest.raises(TruncatedFileError, match="ends inside its header"):
                    nd.iter_events(path, errors=mode)
        # a complete header and no events is a valid, empty recording: what the writers
        # write for 0 events, and what their header alone is
        path.write_bytes(raw[:head])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert len(nd.read_events(path)) == 0, name
            assert len(nd.read_events(path, errors="skip")) == 0, name
    for writer, kw, suffix in (
        (nd.write_aedat2, {}, ".aedat"),
        (nd.write_evt3, {"sensor_size": (64, 64)}, ".raw"),
        (nd.write_evt2, {"sensor_size": (64, 64)}, ".raw"),
    ):
        path = writer(tmp_path / f"empty{suffix}", events(0, 64, 64), **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert len(nd.read_events(path)) == 0


@needs_data
def test_real_aedat2_cut_inside_its_header_is_truncated(tmp_path):
    raw = (DATA / "aedat2/DVS128-2017-03-21-short.aedat").read_bytes()
    cut = raw.index(b"#End of Preferences") + 10  # before '#End Of ASCII Header'
    path = tmp_path / "cut.aedat"
    path.write_bytes(raw[:cut])
    with pytest.raises(TruncatedFileError, match="ends inside its header"):
        nd.read_events(path)
    # jAER's older headers have no end line: one that ends with a whole line is complete
    assert len(nd.read_events(DATA / "aedat2/sample_aedat_header.aedat")) == 0


def test_aedat2_dvs128_address_bits_above_15_are_corrupt(tmp_path):
    """DVS128 addresses use bits 0-14 (jAER marks special events with bit 15 or 31):
    masking the others away turned 8 bytes of garbage into one more event."""
    ev = events(300, 128, 128, seed=15)
    path = Path(nd.write_aedat2(tmp_path / "a.aedat", ev))
    raw = path.read_bytes()
    path.write_bytes(raw + struct.pack(">II", 0xDEADBEEF, 0x7FFFFFFF))
    head = len(raw) - 8 * len(ev)
    with pytest.raises(CorruptDataError, match=rf"1 corrupt word.*word 300 .*byte {len(raw)}\)"):
        nd.read_events(path)
    with pytest.raises(CorruptDataError, match="1 corrupt word"):
        list(nd.iter_events(path, chunk_events=64))
    got, msg = read_skip(path)
    assert msg.endswith("dropped 1 corrupt word")
    assert np.array_equal(np.asarray(got), np.asarray(ev))
    # a word with bits 16-30 in the middle; jAER's sync events (0x8000) are counted, not events
    body = bytearray(raw[head:])
    struct.pack_into(">I", body, 8 * 100, 0x00010000 | struct.unpack_from(">I", body, 800)[0])
    struct.pack_into(">I", body, 8 * 200, 0x8000)
    path.write_bytes(raw[:head] + bytes(body))
    with pytest.raises(CorruptDataError, match=r"first at word 100 "):
        nd.read_events(path)
    got, msg = read_skip(path)
    assert got.meta["skipped_non_dvs_words"] == 1 and got.meta["dropped"]["corrupt_words"] == 1
    assert np.array_equal(np.asarray(got), np.delete(np.asarray(ev), [100, 200]))


@pytest.mark.parametrize("version", ["evt2", "evt3"])
def test_raw_file_named_dat_is_read_by_its_header(tmp_path, version):
    """A RAW file named '.dat' was read as DAT and failed with 'DAT event size byte is
    ...' although its header names its encoding."""
    ev = events(200, 64, 64, seed=16)
    writer = nd.write_evt2 if version == "evt2" else nd.write_evt3
    path = writer(tmp_path / "a.dat", ev, sensor_size=(64, 64))
    got = nd.read_events(path)
    assert got.meta["format"] == version and np.array_equal(np.asarray(got), np.asarray(ev))
    assert nd.detect_format(path) == version
    name = {"evt2": "EVT 2.0", "evt3": "EVT 3.0"}[version]
    want = rf"names the RAW encoding {name} .*format='{version}'"
    with pytest.raises(UnknownFormatError, match=want):
        nd.read_events(path, format="dat")


@needs_data
def test_aedat4_zstd_frame_cut_short(tmp_path):
    """A ZSTD decompressobj returns b'' for a cut frame without a word: the message was
    'size prefix None > 0 bytes'; the packet is incomplete (at the end: the file was cut)."""
    src = DATA / "aedat4/evl_sample.aedat4"
    dst = tmp_path / "z.aedat4"
    offsets = rewrite_aedat4(src, dst, "zstd")
    good = np.asarray(nd.read_events(dst))
    raw = dst.read_bytes()
    packets = [(o, *struct.unpack_from("<ii", raw, o)) for o in offsets]
    evts = [p for p in packets if p[1] == 0]
    bad = tmp_path / "bad.aedat4"

    def cut_frame(at, size, keep, tail):
        body = raw[at + 8 : at + 8 + size][:keep]
        return raw[:at] + struct.pack("<ii", 0, len(body)) + body + tail

    at, _, size = evts[3]
    bad.write_bytes(cut_frame(at, size, 200, raw[at + 8 + size :]))  # packets follow it
    with pytest.raises(CorruptDataError, match=f"at byte {at}: packet of stream 0 is incomplete"):
        nd.read_events(bad)
    got, msg = read_skip(bad)
    assert "1 corrupt packet" in msg and len(got) < len(good)
    at, _, size = evts[-1]
    bad.write_bytes(cut_frame(at, size, 20, b""))  # the last packet of the file
    with pytest.raises(TruncatedFileError, match=f"at byte {at}: the last packet is incomplete"):
        nd.read_events(bad)
    got, msg = read_skip(bad)
    assert "1 incomplete packet at the end of the file" in msg
    assert got.meta["dropped"]["incomplete_last_packets"] == 1
    assert np.array_equal(np.asarray(got), good[: len(got)])


def test_aedat2_layout_against_the_header_is_warned_about(tmp_path):
    # a DVS128 file read as DAVIS decodes to other addresses (the real DVS128 recording:
    # 64,696 of its 130,114 events, at wrong coordinates); the caller's layout is used,
    # and the disagreement with the header said
    path = tmp_path / "dvs128.aedat"
    nd.write_aedat2(path, events(50, 128, 128), layout="dvs128")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(nd.read_events(path)) == 50
        assert len(nd.read_events(path, layout="dvs128")) == 50
    with pytest.warns(UserWarning, match="names AEChip .* layout is 'dvs128', but layout='davis'"):
        nd.read_events(path, layout="davis")
