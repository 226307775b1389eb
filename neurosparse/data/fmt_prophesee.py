"""Prophesee files: DAT (v2 CD events) and RAW EVT 2.0 / EVT 3.0, all with a ``%`` header."""

from __future__ import annotations

import re

from ..errors import CorruptDataError, TruncatedFileError, UnknownFormatError
from ..kernels._decode_common import new_wrap_state
from ..kernels.decode_dat import decode_dat
from ..kernels.decode_evt2 import decode_evt2
from ..kernels.decode_evt2 import new_state as new_evt2_state
from ..kernels.decode_evt3 import decode_evt3, new_state
from ._source import MAX_SIDE, WordSource, alloc, header_lines, header_size, opts_left

#: EVT 2.0 / 3.0 addresses are 11 bits: no RAW file can describe a wider sensor.
EVT_SIDE = 2048

# Sensor of a RAW file whose header names only the camera plugin (older Metavision).
PLUGIN_SIZES = (
    ("gen41", (1280, 720)),
    ("imx636", (1280, 720)),
    ("gen4", (1280, 720)),
    ("genx320", (320, 320)),
    ("gen31", (640, 480)),
    ("gen3", (640, 480)),
)


def parse_header(path: str) -> tuple[dict[str, str], int]:
    """``% key value`` lines -> dict (keys lower-case) and the offset of the data."""
    lines, offset = header_lines(path, b"%", stop=b"% end")
    keys: dict[str, str] = {}
    for line in lines:
        text = line[1:].decode("latin-1").strip()
        if not text:
            continue
        key, _, value = text.partition(" ")
        keys.setdefault(key.lower(), value.strip())
    return keys, offset


def raw_geometry(keys: dict[str, str]) -> tuple[tuple[int, int] | None, str]:
    """Sensor (W, H) of a RAW file and where it came from."""
    fmt = keys.get("format", "")
    w = re.search(r"width=(\d+)", fmt)
    h = re.search(r"height=(\d+)", fmt)
    if w and h:
        return (int(w.group(1)), int(h.group(1))), "format"
    m = re.match(r"(\d+)x(\d+)", keys.get("geometry", ""))
    if m:
        return (int(m.group(1)), int(m.group(2))), "geometry"
    plugin = keys.get("plugin_name", "").lower()
    for frag, size in PLUGIN_SIZES:
        if frag in plugin:
            return size, "plugin_name"
    return None, ""


def raw_version(keys: dict[str, str]) -> str | None:
    """``"evt2"``, ``"evt3"`` or None from ``% evt 3.0`` / ``% format EVT3;...``.

    Exact versions only: EVT 2.1 is another (64-bit, vectorised) encoding, so ``% evt 2.1``
    must not be read as 2.0; a header whose two lines disagree names no version.
    """
    evt = {"2.0": "evt2", "3.0": "evt3"}.get(keys.get("evt", "").strip())
    fmt = {"EVT2": "evt2", "EVT3": "evt3"}.get(keys.get("format", "").split(";")[0].upper())
    if evt and fmt and evt != fmt:
        return None
    return evt or fmt


_ENCODINGS = {"evt2": "EVT 2.0", "evt3": "EVT 3.0"}


def _named_by(keys: dict[str, str]) -> str:
    """The header lines that name the encoding, as written (for messages)."""
    named = [f"'% {k} {keys[k]}'" for k in ("evt", "format") if keys.get(k)]
    return " and ".join(named)


class WrapWordSource(WordSource):
    """DAT and EVT 2.0: a uint32-word kernel whose state is a wrapping time counter."""

    ordered = True  # both are written in time order: events going backwards are corrupt

    def reset(self) -> None:
        self.state = new_wrap_state()

    def decode(self, buf, word0):
        out = alloc(buf.shape[0] // self.word_size)  # at most one event per word
        w, h = self.width_height
        k = self.kernel(buf.view("<u4"), word0, self.state, w, h, out, self.report.stat)
        return out[:k]


class DATSource(WrapWordSource):
    fmt = "dat"
    word_size = 8  # (t, w) uint32 pairs
    kernel = staticmethod(decode_dat)


class EVT2Source(WrapWordSource):
    fmt = "evt2"
    word_size = 4
    kernel = staticmethod(decode_evt2)
    early = "before the first TIME_HIGH word (their time is unknown)"

    def reset(self) -> None:
        self.state = new_evt2_state()


class EVT3Source(WordSource):
    fmt = "evt3"
    word_size = 2
    early = (
        "before the first TIME_HIGH, TIME_LOW or ADDR_Y word (or, in a vector word, "
        "VECT_BASE_X), so their time, row or column is unknown"
    )

    def reset(self) -> None:
        self.state = new_state()

    def decode(self, buf, word0):
        words = buf.view("<u2")
        w, h = self.width_height
        # Real recordings give < 1 event per word; grow in the rare vector-heavy case.
        out = alloc(words.shape[0] + 12)
        i, k = 0, 0
        while True:
            i, k = decode_evt3(words, i, word0, self.state, w, h, out, k, self.report.stat)
            if i >= words.shape[0]:
                return out[:k]
            bigger = alloc(2 * out.shape[0])
            bigger[:k] = out[:k]
            out = bigger


# ``_header``: the ``parse_header`` result when format detection already parsed it.


def open_dat(path, report, sensor_size, _header=None, **opts) -> DATSource:
    opts_left(opts, "dat")
    keys, offset = _header or parse_header(path)
    with open(path, "rb") as f:
        f.seek(offset)
        ts = f.read(2)
    if len(ts) == 0:
        raise TruncatedFileError(
            f"{path}: DAT file ends after its header at byte {offset} (no event type/size bytes)"
        )
    if len(ts) < 2 or ts[1] != 8:
        version = raw_version(keys)
        if version:  # a RAW file named or forced as DAT: say what its header says
            raise UnknownFormatError(
                f"{path}: read as DAT, but its header names the RAW encoding "
                f"{_ENCODINGS[version]} ({_named_by(keys)}), and its first data bytes "
                f"{ts!r} are not a DAT event type/size (size 8); it is a Prophesee RAW "
                f"file: pass format={version!r}"
            )
        raise CorruptDataError(
            f"{path}: DAT event size byte is {ts[1] if len(ts) > 1 else None}, expected 8 "
            "(CD events, 'Version 2'); not a Prophesee DAT v2 file?"
            + (" It has no Prophesee header ('%' lines) either: pass format=None to detect "
               f"its format{_detected_hint(path, 'dat')}" if offset == 0 else "")
        )
    if sensor_size is None and "width" in keys and "height" in keys:
        why = "x and y are 14-bit fields"
        w, h = keys["width"], keys["height"]
        sensor_size = header_size(path, w, h, "% Width/% Height", MAX_SIDE, why)
    meta = {"header": keys, "event_type": int(ts[0])}
    return DATSource(path, report, sensor_size, meta, offset + 2)


def _detected_hint(path, forced: str) -> str:
    """``" (detected: 'nmnist')"`` when format detection finds another format, else ``""``."""
    from .io import detect_format  # io imports this module

    try:
        found = detect_format(path)
    except Exception:  # only a hint: detection's own error is not this one
        return ""
    return f" (detected: {found!r})" if found != forced else ""


def open_raw(path, report, sensor_size, _header=None, _forced="evt2 or evt3",
             **opts) -> WordSource:
    opts_left(opts, "raw")
    keys, offset = _header or parse_header(path)
    version = raw_version(keys)
    if version is None and offset == 0:
        raise UnknownFormatError(
            f"{path}: format={_forced!r} reads Prophesee RAW files, but this file has no "
            f"Prophesee RAW header (its first bytes are not '%' lines such as '% evt 3.0'), "
            f"so it is not a RAW file; pass format=None to detect its format"
            f"{_detected_hint(path, _forced)}, or the format it is in"
        )
    if version is None:
        said = " and ".join(f"'% {k} {keys[k]}'" for k in ("evt", "format") if k in keys)
        raise UnknownFormatError(
            f"{path}: Prophesee RAW header names no supported encoding ('% evt 2.0', "
            f"'% evt 3.0' or '% format EVT3;...'); "
            + (f"it says {said}" if said else "it has no '% evt' or '% format' line")
            + " (EVT 2.1 and EVT 4 are not supported)"
        )
    size, source = raw_geometry(keys)
    if sensor_size is None and size is not None:
        why = "EVT addresses are 11-bit fields"
        sensor_size = header_size(path, *size, f"'% {source}' line", EVT_SIDE, why)
    meta = {"header": keys, "sensor_size_from": source or None}
    cls = EVT2Source if version == "evt2" else EVT3Source
    return cls(path, report, sensor_size, meta, offset)


def open_evt(version: str):
    def opener(path, report, sensor_size, **opts):
        src = open_raw(path, report, sensor_size, _forced=version, **opts)
        if src.fmt != version:
            raise UnknownFormatError(f"{path}: header says {src.fmt}, but format={version!r}")
        return src

    return opener
