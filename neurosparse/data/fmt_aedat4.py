"""AEDAT 4.0 (iniVation DV): FlatBuffer header + compressed FlatBuffer packets.

Layout: ``#!AER-DAT4.0\\r\\n``, int32 header length, an ``IOHeader`` FlatBuffer
(compression: 0 none, 1 LZ4, 2 LZ4 high, 3 ZSTD, 4 ZSTD high; data-table position; XML
info node naming each stream's type and size). Then packets: int32 stream id, int32
byte size, compressed size-prefixed FlatBuffer. An ``EventPacket`` (identifier ``EVTS``)
holds a vector of 16-byte structs {int64 t, int16 x, int16 y, bool on}. The packets end
at the data table (or at the end of the file when it is absent, e.g. an interrupted
recording). Only the FlatBuffer fields needed here are parsed, by hand.

What is checked beyond the parse: the data-table position must lie after the header and
inside the file, and point at a data table (a compressed FlatBuffer with identifier
``FTAB``), else a table moved to a packet boundary would silently end the events early,
and a file cut between packets would read as a shorter recording; a packet must belong
to a stream the header declares (a damaged stream id would drop its events unseen); an
event packet must carry the identifier ``EVTS``; a compressed frame must be complete (a
ZSTD decompressor returns nothing for a cut frame, silently) and, in ZSTD, fill its
packet. Packets of declared non-event streams
(IMU, frames, triggers) and of other event streams are skipped quietly, counted in
``meta["skipped_packets"]``. With no sensor size in the header, events are checked
against ``MAX_SIDE`` (so a negative x or y is still out of range).
"""

from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import numpy as np

from ..errors import (
    CorruptDataError,
    EventFileError,
    ParameterError,
    TruncatedFileError,
    UnknownFormatError,
)
from ..kernels.decode_aedat4 import convert_aedat4
from ._report import (
    BYTES_AFTER_BAD_PACKET,
    BYTES_BEFORE_DATA_TABLE,
    CORRUPT_PACKETS,
    INCOMPLETE_LAST_PACKETS,
    TRUNCATED_BYTES,
    UNDECLARED_STREAM_PACKETS,
)
from ._source import MAX_SIDE, Source, alloc, header_size, opts_left, split

MAGIC = b"#!AER-DAT4.0\r\n"
COMPRESSION = {0: "none", 1: "lz4", 2: "lz4", 3: "zstd", 4: "zstd"}
EVENT_STRUCT = np.dtype(
    {
        "names": ["t", "x", "y", "on"],
        "formats": ["<i8", "<i2", "<i2", "u1"],  # bool `on` read as a byte: 0/1 or corrupt
        "offsets": [0, 8, 10, 12],
        "itemsize": 16,
    }
)


class FlatBufferError(ValueError):
    """A FlatBuffer offset points outside its buffer."""


class IncompleteFrameError(ValueError):
    """A packet's compressed frame stops before its end (the packet was cut short)."""


def _u32(b: bytes, pos: int) -> int:
    if pos < 0 or pos + 4 > len(b):
        raise FlatBufferError(f"offset {pos} outside a {len(b)}-byte buffer")
    return struct.unpack_from("<I", b, pos)[0]


def _fields(b: bytes, table: int) -> list[int]:
    """Absolute positions of a table's fields (0 where absent)."""
    vt = table - struct.unpack_from("<i", b, table)[0]
    if vt < 0 or vt + 4 > len(b):
        raise FlatBufferError(f"vtable at {vt} outside a {len(b)}-byte buffer")
    vsize = struct.unpack_from("<H", b, vt)[0]
    offs = struct.unpack_from(f"<{(vsize - 4) // 2}H", b, vt + 4)
    return [table + o if o else 0 for o in offs]


def _ref(b: bytes, pos: int) -> int:
    return pos + _u32(b, pos)


def parse_io_header(h: bytes) -> tuple[int, int, str]:
    """(compression code, data-table position, info XML) of an IOHeader FlatBuffer."""
    f = _fields(h, _u32(h, 0)) + [0, 0, 0]
    comp = struct.unpack_from("<i", h, f[0])[0] if f[0] else 0
    table = struct.unpack_from("<q", h, f[1])[0] if f[1] else -1
    xml = ""
    if f[2]:
        s = _ref(h, f[2])
        xml = h[s + 4 : s + 4 + _u32(h, s)].decode("utf-8", "replace")
    return comp, table, xml


def parse_streams(xml: str) -> dict[int, dict]:
    """Stream id -> {type: 'EVTS'|..., sizeX, sizeY, ...} from the info node."""
    streams: dict[int, dict] = {}
    if not xml:
        return streams
    root = ET.fromstring(xml)
    for node in root.iter("node"):
        name = node.get("name", "")
        if not name.isdigit():
            continue
        info: dict = {}
        for attr in node.iter("attr"):
            key, val = attr.get("key"), (attr.text or "").strip()
            info[key] = int(val) if attr.get("type") in ("int", "long") else val
        info["type"] = info.pop("typeIdentifier", "")
        streams[int(name)] = info
    return streams


def event_packet(d: bytes) -> np.ndarray:
    """The event structs of a decompressed, size-prefixed EventPacket, as raw uint8 bytes.

    (Plain bytes concatenate at memcpy speed; the padded struct dtype does not.)
    """
    if len(d) < 8:
        raise FlatBufferError(f"it decompresses to {len(d)} bytes, too few for a FlatBuffer")
    if _u32(d, 0) + 4 > len(d):
        raise FlatBufferError(f"its size prefix {_u32(d, 0)} exceeds its {len(d)} bytes")
    if len(d) >= 12 and d[8:12] != b"EVTS":  # DV writes each packet's identifier
        raise FlatBufferError(f"identifier {bytes(d[8:12])!r}, not an event packet (b'EVTS')")
    root = 4 + _u32(d, 4)
    f = _fields(d, root)
    if not f or not f[0]:
        return np.empty(0, dtype=np.uint8)
    vec = _ref(d, f[0])
    n = _u32(d, vec)
    if vec + 4 + 16 * n > len(d):
        raise FlatBufferError(f"{n} events do not fit in a {len(d)}-byte packet")
    return np.frombuffer(d, dtype=np.uint8, count=16 * n, offset=vec + 4)


def _decompressor(code: int, path: str):
    kind = COMPRESSION.get(code)
    if kind == "none":
        return lambda b: b
    if kind == "lz4":
        import lz4.frame

        def lz4_frame(b: bytes) -> bytes:
            try:
                return lz4.frame.decompress(b)
            except RuntimeError as exc:  # lz4 says "Frame incomplete" / "..._incomplete"
                if "incomplete" in str(exc).lower():
                    raise IncompleteFrameError(
                        f"its {len(b)}-byte LZ4 frame stops before its end ({exc})"
                    ) from exc
                raise

        return lz4_frame
    if kind == "zstd":
        import zstandard

        dctx = zstandard.ZstdDecompressor()

        def zstd(b: bytes) -> bytes:
            # a decompressobj returns what it could and waits for more input, silently,
            # so a frame cut short would read as an empty or shorter packet
            obj = dctx.decompressobj()
            out = obj.decompress(b)
            if not obj.eof:
                raise IncompleteFrameError(f"its {len(b)}-byte ZSTD frame stops before its end")
            if obj.unused_data:  # DV writes one frame per packet: the rest would be lost
                raise FlatBufferError(
                    f"{len(obj.unused_data)} bytes follow its ZSTD frame inside the packet"
                )
            return out

        return zstd
    raise CorruptDataError(
        f"{path}: unknown AEDAT 4 compression code {code} in the header (expected 0..4); "
        "the header is corrupt"
    )


class AEDAT4Source(Source):
    fmt = "aedat4"
    unit = "event"
    ordered = True  # DV writes each event stream in time order (all real files here are)
    limit = (MAX_SIDE, MAX_SIDE)  # used only when the header gives no size
    limit_name = "plausible (neurosparse.data.MAX_SIDE)"

    def __init__(
        self, path, report, sensor_size, meta, offset, end, stream, decompress, declared=()
    ):
        super().__init__(path, report, sensor_size, meta)
        self.offset, self.end, self.stream, self.decompress = offset, end, stream, decompress
        self.declared = frozenset(declared)  # stream ids of the header's info node
        self.size = os.path.getsize(self.path)
        self.meta["skipped_packets"] = 0

    def _payloads(self, data: bytes | None = None) -> Iterator[np.ndarray]:
        """Event structs of each packet of our stream, in file order.

        ``data``: the whole file, already read (``read``); else packets are read one by one
        (``blocks``, bounded memory).
        """
        f = None if data is not None else open(self.path, "rb")
        try:
            pos = self.offset
            if f is not None:
                f.seek(pos)
            while pos < self.end:
                head = data[pos : pos + 8] if f is None else f.read(8)
                if len(head) < 8:
                    self.report.corrupt(
                        TRUNCATED_BYTES,
                        len(head),
                        f"at byte {pos}: packet header cut off",
                        error=TruncatedFileError,
                    )
                    return
                sid, size = struct.unpack("<ii", head)
                if size < 0 or pos + 8 + size > self.end:
                    self.report.corrupt(
                        BYTES_AFTER_BAD_PACKET,
                        self.end - pos,
                        f"at byte {pos}: packet of stream {sid} claims {size} bytes, "
                        f"{self.end - pos - 8} left (truncated file?)",
                        error=TruncatedFileError if size >= 0 else CorruptDataError,
                    )
                    return
                at = pos
                pos += 8 + size
                if sid != self.stream:
                    if sid not in self.declared:
                        self.report.corrupt(
                            UNDECLARED_STREAM_PACKETS,
                            1,
                            f"at byte {at}: packet of stream {sid}, which the header does not "
                            f"declare (streams {sorted(self.declared)}): its stream id is damaged",
                        )
                    else:
                        self.meta["skipped_packets"] += 1
                    if f is not None:
                        f.seek(pos)
                    continue
                body = data[at + 8 : pos] if f is None else f.read(size)
                try:
                    structs = event_packet(self.decompress(body))
                except IncompleteFrameError as exc:
                    if pos >= self.size:  # the file's last bytes: where a copy stops
                        self.report.corrupt(
                            INCOMPLETE_LAST_PACKETS,
                            1,
                            f"at byte {at}: the last packet is incomplete ({exc}); the file "
                            "was cut (truncated download or copy, or an interrupted recording)",
                            error=TruncatedFileError,
                        )
                    else:
                        self.report.corrupt(
                            CORRUPT_PACKETS,
                            1,
                            f"at byte {at}: packet of stream {sid} is incomplete ({exc}), "
                            "though packets follow it: the packet or its size field is damaged",
                        )
                    continue
                except Exception as exc:  # lz4/zstd raise their own types; all mean corrupt
                    self.report.corrupt(
                        CORRUPT_PACKETS, 1, f"at byte {at}: cannot decode packet ({exc})"
                    )
                    continue
                yield structs
        finally:
            if f is not None:
                f.close()

    def _convert(self, raw: np.ndarray, first: int) -> np.ndarray:
        structs = raw.view(EVENT_STRUCT)
        out = alloc(structs.shape[0])
        w, h = self.width_height
        k = convert_aedat4(structs, first, w, h, out, self.report.stat)
        self.report.check_stat()
        return out[:k]

    def read(self) -> np.ndarray:
        with open(self.path, "rb") as f:
            data = f.read()
        parts = list(self._payloads(data))
        if not parts:
            return alloc(0)
        return self._convert(np.concatenate(parts), 0)

    def blocks(self, chunk_events: int) -> Iterator[np.ndarray]:
        seen = 0
        for structs in self._payloads():
            yield from split(self._convert(structs, seen), chunk_events)
            seen += structs.shape[0] // 16


def open_source(path, report, sensor_size, stream: int | None = None, **opts) -> AEDAT4Source:
    """``stream``: id of the event stream to read; default the lowest-numbered ``EVTS``."""
    opts_left(opts, "aedat4")
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            raise UnknownFormatError(f"{path}: not an AEDAT 4.0 file (starts with {magic!r})")
        raw = f.read(4)
        hlen = struct.unpack("<i", raw)[0] if len(raw) == 4 else -1
        if hlen <= 0 or len(MAGIC) + 4 + hlen > size:
            cls = TruncatedFileError if hlen > 0 else CorruptDataError
            raise cls(
                f"{path}: AEDAT 4 header length {hlen} (bytes 14-17) does not fit the "
                f"{size}-byte file (truncated or corrupt file)"
            )
        try:
            comp, table, xml = parse_io_header(f.read(hlen))
            streams = parse_streams(xml)
        except (FlatBufferError, struct.error, ET.ParseError, ValueError) as exc:
            raise CorruptDataError(
                f"{path}: corrupt AEDAT 4 header at bytes 18-{18 + hlen} ({exc})"
            ) from exc
    events = sorted(k for k, v in streams.items() if v.get("type") == "EVTS")
    if stream is None:
        if not events:
            raise EventFileError(f"{path}: no event stream (EVTS) among streams {streams}")
        stream = events[0]
    elif stream not in events:
        raise ParameterError(f"stream must be one of the event streams {events}, got {stream!r}")
    info = streams[stream]
    if sensor_size is None and "sizeX" in info and "sizeY" in info:
        where = f"stream {stream} sizeX/sizeY"
        sensor_size = header_size(path, info["sizeX"], info["sizeY"], where)
    offset = len(MAGIC) + 4 + hlen
    decompress = _decompressor(comp, path)  # first: an unknown code explains the rest
    end = _data_end(path, report, table, offset, size, comp)
    meta = {
        "compression": COMPRESSION.get(comp, comp),
        "stream": stream,
        "streams": {k: v.get("type") for k, v in streams.items()},
        "source": info.get("source"),
    }
    return AEDAT4Source(
        path, report, sensor_size, meta, offset, end, stream, decompress, declared=streams
    )


_FRAME_MAGIC = {"lz4": b"\x04\x22\x4d\x18", "zstd": b"\x28\xb5\x2f\xfd"}


def _data_end(path: str, report, table: int, offset: int, size: int, comp: int) -> int:
    """Where the packets end: the header's data-table position, checked.

    Parameters
    ----------
    path : str
        The file.
    report : Report
        Where a table beyond the end of the file is reported (``errors="skip"``: counted).
    table : int
        The header's ``dataTablePosition`` (-1 or 0: none, e.g. an interrupted recording).
    offset, size : int
        Where the packets start, and the file size.
    comp : int
        The header's compression code (the table is compressed like the packets).

    Returns
    -------
    int
        The byte offset where the packets end.

    Raises
    ------
    CorruptDataError
        The position lies inside the header, or the bytes there are no data table (the
        position is damaged: reading up to it could end the events early).
    TruncatedFileError
        The position lies beyond the end of the file: the file was cut (``errors="skip"``:
        the packets are read to the end of the file, and the cut is counted).
    """
    if table <= 0:
        return size
    if table < offset:
        raise CorruptDataError(
            f"{path}: the AEDAT 4 header puts the data table at byte {table}, inside the "
            f"header (bytes 0-{offset}); the header is corrupt"
        )
    if table >= size:
        report.corrupt(
            BYTES_BEFORE_DATA_TABLE,
            table - size,
            f"(at least): the file ends at byte {size}, but its header puts the data table "
            f"at byte {table}; the file was cut (truncated download or copy)",
            error=TruncatedFileError,
        )
        return size
    with open(path, "rb") as f:
        f.seek(table)
        head = f.read(12)
    kind = COMPRESSION.get(comp)
    magic = _FRAME_MAGIC.get(kind or "")
    ok = head.startswith(magic) if magic else head[8:12] == b"FTAB"
    if not ok:
        raise CorruptDataError(
            f"{path}: the AEDAT 4 header puts the data table at byte {table}, but no "
            f"{kind}-compressed data table starts there (bytes {head!r}): the position (or the "
            "compression code) in the header is damaged, and reading the packets up to it "
            "could lose the rest"
        )
    return table
