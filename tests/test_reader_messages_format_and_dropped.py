"""Reader messages: a Prophesee format forced on a file without a Prophesee header, the
spelling of ``meta["dropped"]`` keys (snake_case in every reader) and the singular in the
warning that counts what was dropped."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

import neurosparse.data as nd
from neurosparse.data.fetch_recordings import data_dir, missing_reason
from neurosparse.errors import CorruptDataWarning, UnknownFormatError

NMNIST = data_dir() / "nmnist"
KEY = re.compile(r"^[a-z0-9]+(_[a-z0-9]+)*$")


def _events(n, w=34, h=34, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.integers(0, 10**6, n))
    return nd.make_events(t, rng.integers(0, w, n), rng.integers(0, h, n), rng.integers(0, 2, n))


def _skip(path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = nd.read_events(path, errors="skip", **kw)
    msgs = [str(w.message) for w in caught if issubclass(w.category, CorruptDataWarning)]
    return ev, msgs


@pytest.mark.parametrize("fmt", ["evt3", "evt2"])
def test_prophesee_format_forced_on_a_file_without_header(tmp_path, fmt):
    path = Path(nd.write_nmnist(tmp_path / "a.bin", _events(50)))
    with pytest.raises(UnknownFormatError) as info:
        nd.read_events(path, format=fmt)
    msg = str(info.value)
    assert "no Prophesee RAW header" in msg and "'%'" in msg
    assert "format=None" in msg and "'nmnist'" in msg  # what detection finds
    assert "evt None" not in msg and "format None" not in msg


@pytest.mark.skipif(not NMNIST.is_dir(), reason=str(missing_reason("nmnist")))
def test_evt3_forced_on_a_real_nmnist_file():
    path = sorted(NMNIST.glob("Test/*/*.bin"))[0]
    with pytest.raises(UnknownFormatError, match="no Prophesee RAW header.*format=None"):
        nd.read_events(path, format="evt3")


def test_prophesee_header_without_encoding_names_what_is_missing(tmp_path):
    path = tmp_path / "a.raw"
    path.write_bytes(b"% camera_integrator_name Prophesee\n% end\n" + b"\0" * 8)
    with pytest.raises(UnknownFormatError) as info:
        nd.read_events(path, format="evt3")
    assert "None" not in str(info.value) and "'% evt'" in str(info.value)


@pytest.mark.parametrize("cut, says", [(4, "1 truncated byte"), (3, "2 truncated bytes")])
def test_truncation_is_counted_under_a_snake_case_key_in_singular_or_plural(tmp_path, cut,
                                                                            says):
    path = Path(nd.write_nmnist(tmp_path / "a.bin", _events(20)))
    path.write_bytes(path.read_bytes()[:-cut])
    ev, msgs = _skip(path)
    assert len(msgs) == 1 and msgs[0].endswith(f"dropped {says}"), msgs
    assert ev.meta["dropped"]["truncated_bytes"] == 5 - cut
    assert all(KEY.match(k) for k in ev.meta["dropped"]), ev.meta["dropped"]


def test_one_event_is_singular_in_the_warning(tmp_path):
    ev = _events(20)
    ev["x"][7] = 40  # outside 34 x 34
    path = Path(nd.write_nmnist(tmp_path / "a.bin", ev))
    got, msgs = _skip(path, sensor_size=(34, 34))
    assert msgs == [f"{path}: dropped 1 event outside sensor_size=(34, 34, 2) (W, H, P)"]
    assert got.meta["dropped"]["outside_sensor"] == 1


def test_one_corrupt_word_is_singular(tmp_path):
    ev = _events(300, 64, 64, seed=1)
    path = Path(nd.write_evt2(tmp_path / "a.raw", ev, sensor_size=(64, 64)))
    raw = path.read_bytes()
    head = raw.index(b"% end\n") + 6
    words = np.frombuffer(raw[head:], "<u4").copy()
    victim = np.nonzero((words >> 28) <= 1)[0][100]
    words[victim] = (0x3 << 28) | (words[victim] & 0xFFFFFFF)  # type 0x3 does not exist
    path.write_bytes(raw[:head] + words.tobytes())
    got, msgs = _skip(path)
    assert len(msgs) == 1 and msgs[0].endswith("dropped 1 corrupt word"), msgs
    assert got.meta["dropped"]["corrupt_words"] == 1


def test_every_reader_spells_dropped_keys_in_snake_case(tmp_path):
    """A damaged file of each fixed-word format and of AEDAT 3.1 (packet keys)."""
    import struct

    ev = _events(1000, 128, 128, seed=13)
    aedat3 = Path(nd.write_aedat3(tmp_path / "a.aedat", ev, packet_events=100))
    raw = bytearray(aedat3.read_bytes())
    at = raw.index(b"#!END-HEADER\r\n") + 14 + 2 * (28 + 800)  # the 3rd packet
    struct.pack_into("<h", raw, at, 200)  # a packet type libcaer does not define
    aedat3.write_bytes(bytes(raw))
    got, msgs = _skip(aedat3)
    assert got.meta["dropped"]["undefined_type_packets"] == 1
    assert "dropped 1 packet of undefined type" in msgs[0]
    files = [aedat3]
    for writer, suffix, kw in ((nd.write_nmnist, ".bin", {}), (nd.write_aedat2, ".aedat", {}),
                               (nd.write_evt2, ".raw", {"sensor_size": (128, 128)}),
                               (nd.write_evt3, ".raw", {"sensor_size": (128, 128)})):
        p = Path(writer(tmp_path / f"w{len(files)}{suffix}", ev, **kw))
        p.write_bytes(p.read_bytes()[:-1])
        files.append(p)
    for p in files:
        got, _ = _skip(p)
        bad = [k for k in got.meta["dropped"] if not KEY.match(k)]
        assert not bad, (p.name, got.meta["dropped"])


@pytest.mark.parametrize(("name", "head", "says"), [
    ("rec.es", b"Event Stream\x02\x00\x00\x016\x00", "Event Stream (.es) file"),
    ("nas.aedat", b"\x00\x10\x00\x00\x00\x00\x01\x02" * 4, "without the '#!AER-DAT'"),
])
def test_unsupported_formats_are_named(tmp_path, name, head, says):
    """docs/data.md says UnknownFormatError names .es and headerless AEDAT files; it said
    only that it could not tell the format and to pass format=."""
    path = tmp_path / name
    path.write_bytes(head)
    with pytest.raises(UnknownFormatError, match=re.escape(says) + ".*not supported yet"):
        nd.read_events(path)


@pytest.mark.parametrize("rel", ["eventstream/test.es",
                                 "nas_audio/sound_mono_32ch_ONOFF_addr2b_ts02.aedat"])
def test_unsupported_real_recordings_are_named(rel):
    reason = missing_reason(rel)
    if reason:
        pytest.skip(reason)
    path = data_dir() / rel
    with pytest.raises(UnknownFormatError, match="not supported yet"):
        nd.read_events(path)
