"""AEDAT 3.1 (cAER / libcaer): text header, then packets of a 28-byte header + events.

Packet header (little-endian): int16 type, int16 source, int32 event size, int32 ts
offset, int32 ts overflow, int32 capacity, int32 number, int32 valid; the body holds
``capacity * event size`` bytes of which the first ``number`` events are used. Polarity
packets (type 1, 8-byte events) are decoded; other packet types (frames, IMU, special)
are skipped and counted in ``meta["skipped_packets"]``; invalidated events are counted in
``meta["invalid_events"]``. A type libcaer does not define (0-13) is a damaged packet
(a polarity packet whose type field was hit would otherwise vanish unseen); a fixed-size
type with another event size (special and polarity 8 bytes, IMU6 36, IMU9 48) is a
corrupt packet header.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

import numpy as np

from ..errors import CorruptDataError, TruncatedFileError, UnknownFormatError
from ..kernels._decode_common import OTHER
from ..kernels.decode_aedat3 import decode_aedat3_polarity
from ._report import (
    BYTES_AFTER_BAD_PACKET,
    TRUNCATED_BYTES,
    UNCLOSED_HEADERS,
    UNDEFINED_TYPE_PACKETS,
)
from ._source import Source, alloc, header_lines, opts_left, split

MAGIC = b"#!AER-DAT3.1"
END = b"#!END-HEADER"
HEADER = struct.Struct("<hhiiiiii")
POLARITY = 1
#: libcaer's event types (SPECIAL .. MATRIX4x4); others are damage
TYPES = range(14)
#: event size of each fixed-size type: SPECIAL, POLARITY, IMU6, IMU9
EVENT_SIZES = {0: 8, 1: 8, 3: 36, 4: 48}
SOURCES = (("dvs128", (128, 128)), ("davis240", (240, 180)), ("davis346", (346, 260)))


class AEDAT3Source(Source):
    fmt = "aedat3"
    unit = "event"

    def __init__(self, path, report, sensor_size, meta, offset: int) -> None:
        super().__init__(path, report, sensor_size, meta)
        self.offset = offset
        self.meta.update(skipped_packets=0, invalid_events=0)

    def _packets(self) -> Iterator[np.ndarray]:
        size = os.path.getsize(self.path)
        w, h = self.width_height
        stat = self.report.stat
        seen = 0  # polarity events so far: what error positions count
        with open(self.path, "rb") as f:
            pos = self.offset
            f.seek(pos)
            while pos < size:
                head = f.read(HEADER.size)
                if len(head) < HEADER.size:
                    self.report.corrupt(
                        TRUNCATED_BYTES,
                        len(head),
                        f"at byte {pos}: a packet header is cut off",
                        error=TruncatedFileError,
                    )
                    return
                typ, _src, esize, _tso, overflow, cap, number, valid = HEADER.unpack(head)
                body = cap * esize
                sane = (
                    0 < esize <= 1 << 16
                    and 0 <= number <= cap
                    and 0 <= valid <= number
                    and overflow >= 0
                    # a fixed-size type with another size: the size (or type) is damaged,
                    # and the body length computed from it cannot be trusted
                    and EVENT_SIZES.get(typ, esize) == esize
                )
                if not sane or pos + HEADER.size + body > size:
                    what = "corrupt packet header" if not sane else "truncated packet"
                    self.report.corrupt(
                        BYTES_AFTER_BAD_PACKET,
                        size - pos,
                        f"at byte {pos}: {what} (type {typ}, event size {esize}, capacity "
                        f"{cap}, number {number}, valid {valid}); packets cannot be resynced",
                        error=CorruptDataError if not sane else TruncatedFileError,
                    )
                    return
                data = f.read(body)
                at = pos
                pos += HEADER.size + body
                if typ not in TYPES:
                    self.report.corrupt(
                        UNDEFINED_TYPE_PACKETS,
                        1,
                        f"at byte {at}: packet type {typ} ({number} events of {esize} bytes) "
                        "is no libcaer type (0-13): its header is damaged",
                    )
                    continue
                if typ != POLARITY:
                    self.meta["skipped_packets"] += 1
                    continue
                words = np.frombuffer(data, dtype="<u4", count=2 * number)
                out = alloc(number)
                before = int(stat[OTHER])
                k = decode_aedat3_polarity(words, number, overflow, seen, w, h, out, stat)
                seen += number
                self.meta["invalid_events"] += int(stat[OTHER]) - before
                self.report.check_stat()
                yield out[:k]

    def read(self) -> np.ndarray:
        parts = list(self._packets())
        return np.concatenate(parts) if parts else alloc(0)

    def blocks(self, chunk_events: int) -> Iterator[np.ndarray]:
        pending: list[np.ndarray] = []
        n = 0
        for ev in self._packets():
            pending.append(ev)
            n += ev.shape[0]
            if n >= chunk_events:
                yield from split(np.concatenate(pending), chunk_events)
                pending, n = [], 0
        if pending:
            yield from split(np.concatenate(pending), chunk_events)


def open_source(path, report, sensor_size, **opts) -> AEDAT3Source:
    opts_left(opts, "aedat3")
    # the end line is mandatory (its absence raises), so a non-ASCII header line is kept
    lines, offset = header_lines(path, b"#", stop=END, text=False)
    if not lines or not lines[0].startswith(MAGIC):
        raise UnknownFormatError(f"{path}: not an AEDAT 3.1 file (first line must be {MAGIC!r})")
    if lines[-1] != END:
        report.corrupt(
            UNCLOSED_HEADERS,
            1,
            "is not closed by '#!END-HEADER' (truncated file?)",
            error=TruncatedFileError,
        )
    source = ""
    for line in lines:
        text = line.decode("latin-1")
        if text.lower().startswith("#source"):
            source = text.split(":", 1)[-1].strip()
    if sensor_size is None:
        for frag, size in SOURCES:
            if frag in source.lower():
                sensor_size = (*size, 2)
    return AEDAT3Source(path, report, sensor_size, {"source": source}, offset)
