"""Writers for N-MNIST ``.bin``, AEDAT 2.0, AEDAT 3.1, EVT 2.0, EVT 3.0 and HDF5.

Each writes what the matching reader reads back exactly (``read_events(write_x(p, ev))``
gives ``ev`` again, sensor size included where the format stores one). Inputs are checked
first: a value the format cannot hold raises :class:`~neurosparse.errors.InputValueError`
instead of being wrapped or truncated. Encoders are Numba kernels (``kernels/decode_*``),
so writing a 50 M-event test file takes seconds.
"""

from __future__ import annotations

import os
import struct

import numpy as np

from ..errors import InputValueError
from ..kernels.decode_aedat2 import LAYOUT_DAVIS, LAYOUT_DVS128, encode_aedat2
from ..kernels.decode_aedat3 import encode_aedat3_polarity
from ..kernels.decode_evt2 import encode_evt2
from ..kernels.decode_evt3 import encode_evt3
from ..kernels.decode_nmnist import count_nmnist_markers, encode_nmnist
from ._source import MAX_SIDE
from .events import as_event_array, sensor_size_of
from .fmt_nmnist import NMNISTSource
from .fmt_prophesee import EVT_SIDE

PathLike = str | os.PathLike


def _prepare(events, name: str, x_max: int, y_max: int, t_max: int | None = None) -> np.ndarray:
    ev = as_event_array(events)
    if ev.shape[0]:
        t = ev["t"]
        if int(t.min()) < 0:
            raise InputValueError(f"{name}: timestamps must be >= 0, got min {int(t.min())}")
        if np.any(np.diff(t) < 0):
            raise InputValueError(f"{name}: timestamps must be sorted (non-decreasing)")
        if t_max is not None and int(t.max()) > t_max:
            raise InputValueError(f"{name}: t max {int(t.max())} exceeds the format's {t_max}")
        for col, hi in (("x", x_max), ("y", y_max)):
            lo_v, hi_v = int(ev[col].min()), int(ev[col].max())
            if lo_v < 0 or hi_v > hi:
                raise InputValueError(f"{name}: {col} must lie in [0, {hi}], got [{lo_v}, {hi_v}]")
    return np.ascontiguousarray(ev)


def _write_header_and(path: PathLike, header: bytes, body: np.ndarray) -> str:
    p = os.fspath(path)
    with open(p, "wb") as f:
        f.write(header)
        body.tofile(f)
    return p


def write_nmnist(path: PathLike, events) -> str:
    """N-MNIST / N-Caltech101 ``.bin``; x < 240, y < 180, overflow markers as needed.

    The bound is the one the reader checks when no ``sensor_size`` is given (the largest
    N-Caltech101 recording), so every file written here reads back as it was.
    """
    w, h = NMNISTSource.limit
    ev = _prepare(events, "write_nmnist", w - 1, h - 1)
    n_markers = count_nmnist_markers(ev["t"].astype(np.int64)) if ev.shape[0] else 0
    buf = np.empty(5 * (ev.shape[0] + n_markers), dtype=np.uint8)
    used = encode_nmnist(ev, buf)
    return _write_header_and(path, b"", buf[:used])


_AEDAT2_CHIPS = {
    "dvs128": ("ch.unizh.ini.jaer.chip.retina.DVS128", LAYOUT_DVS128, 127, 127),
    "davis": ("eu.seebetter.ini.chips.davis.DAVIS240C", LAYOUT_DAVIS, 1023, 511),
}


def write_aedat2(path: PathLike, events, layout: str = "dvs128", chip: str | None = None) -> str:
    """AEDAT 2.0 with a jAER header; ``layout`` ``"dvs128"`` or ``"davis"`` (DVS words only).

    ``chip`` names the ``# AEChip:`` class (default DVS128 / DAVIS240C); t must be < 2**32.
    """
    if layout not in _AEDAT2_CHIPS:
        raise InputValueError(f"layout must be 'dvs128' or 'davis', got {layout!r}")
    default_chip, code, x_max, y_max = _AEDAT2_CHIPS[layout]
    ev = _prepare(events, "write_aedat2", x_max, y_max, t_max=(1 << 32) - 1)
    header = (
        "#!AER-DAT2.0\r\n"
        "# This is a raw AE data file - do not edit\r\n"
        "# Data format is int32 address, int32 timestamp (8 bytes total), "
        "repeated for each event\r\n"
        "# Timestamps tick: 1 us\r\n"
        f"# AEChip: {chip or default_chip}\r\n"
        "# written by neurosparse\r\n"
        "#End Of ASCII Header\r\n"  # jAER's end line: data starting with '#' stays data
    ).encode()
    buf = np.empty(8 * ev.shape[0], dtype=np.uint8)
    encode_aedat2(ev, code, buf)
    return _write_header_and(path, header, buf)


def write_aedat3(path: PathLike, events, source: str = "DVS128", packet_events: int = 4096) -> str:
    """AEDAT 3.1 polarity packets (type 1) of ``packet_events`` events each.

    The ts-overflow field of each packet carries t >> 31, so any t >= 0 round-trips as long
    as one packet does not straddle a 2**31 µs boundary (packets are cut there).
    """
    ev = _prepare(events, "write_aedat3", 0x7FFF, 0x7FFF)
    header = f"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: {source}\r\n#!END-HEADER\r\n".encode()
    p = os.fspath(path)
    t = ev["t"].astype(np.int64)
    with open(p, "wb") as f:
        f.write(header)
        start = 0
        while start < ev.shape[0]:
            overflow = int(t[start] >> 31)
            stop = min(ev.shape[0], start + packet_events)
            stop = start + int(np.searchsorted(t[start:stop] >> 31, overflow, side="right"))
            n = stop - start
            words = np.empty(2 * n, dtype="<u4")
            encode_aedat3_polarity(ev[start:stop], words)
            f.write(struct.pack("<hhiiiiii", 1, 1, 8, 4, overflow, n, n, n))
            words.tofile(f)
            start = stop
    return p


def _raw_header(version: str, sensor_size) -> bytes:
    w, h = int(sensor_size[0]), int(sensor_size[1])
    if not (1 <= w <= EVT_SIDE and 1 <= h <= EVT_SIDE):
        raise InputValueError(
            f"write_evt{version[0]}: sensor_size {w} x {h} does not fit EVT's 11-bit addresses "
            f"(each side 1..{EVT_SIDE})"
        )
    return (
        f"% evt {version}\n% format EVT{version[0]};height={h};width={w}\n"
        f"% geometry {w}x{h}\n% integrator_name neurosparse\n% end\n"
    ).encode()


def write_evt2(path: PathLike, events, sensor_size=None) -> str:
    """Prophesee EVT 2.0 RAW; x, y < 2048; geometry in the header.

    The 34-bit time wraps every ~4.8 h; the reader counts a wrap when TIME_HIGH falls
    from the top quarter of its range to the bottom quarter after two values in the top
    quarter (see ``kernels/_decode_common.py``), so sorted events round-trip across a wrap
    as long as no gap near it exceeds ~1.2 h (real sensors write TIME_HIGH every 64 µs).
    """
    ev = _prepare(events, "write_evt2", 2047, 2047)
    size = sensor_size_of(events, sensor_size)
    words = np.empty(2 * ev.shape[0], dtype="<u4")
    n = encode_evt2(ev, words)
    return _write_header_and(path, _raw_header("2.0", size), words[:n])


def write_evt3(path: PathLike, events, sensor_size=None) -> str:
    """Prophesee EVT 3.0 RAW (ADDR_X words, time wraps made explicit); x, y < 2048."""
    ev = _prepare(events, "write_evt3", 2047, 2047)
    size = sensor_size_of(events, sensor_size)
    t_hi = int(ev["t"].max()) >> 24 if ev.shape[0] else 0
    words = np.empty(4 * ev.shape[0] + 2 * t_hi + 1, dtype="<u2")
    n = encode_evt3(ev, words)
    return _write_header_and(path, _raw_header("3.0", size), words[:n])


def write_hdf5(path: PathLike, events, sensor_size=None, compression: str | None = None) -> str:
    """HDF5 ``events/{t, x, y, p}`` (t int64 µs) with ``sensor_size`` as a group attribute."""
    import h5py

    ev = as_event_array(events)
    p = os.fspath(path)
    size = sensor_size if sensor_size is not None else getattr(events, "sensor_size", None)
    if size is not None and not all(1 <= int(s) <= MAX_SIDE for s in tuple(size)[:2]):
        raise InputValueError(f"write_hdf5: sensor_size {tuple(size)} outside 1..{MAX_SIDE}")
    with h5py.File(p, "w") as f:
        g = f.create_group("events")
        for k, dt in (("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")):
            g.create_dataset(k, data=ev[k].astype(dt), compression=compression)
        if size is not None:
            g.attrs["sensor_size"] = np.asarray(size, dtype=np.int64)
    return p


__all__ = [
    "write_nmnist",
    "write_aedat2",
    "write_aedat3",
    "write_evt2",
    "write_evt3",
    "write_hdf5",
]
