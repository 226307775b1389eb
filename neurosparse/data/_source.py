"""The shape every format reader shares: a ``Source`` that reads all or yields blocks.

A format module parses the header in ``open_source(path, report, sensor_size, **opts)``
and returns a :class:`Source`. Fixed-size-word formats (N-MNIST, AEDAT 2, DAT, EVT 2/3)
use :class:`WordSource`, which decodes the data section in one kernel call (``read``) or
block by block through one reused buffer (``blocks``) with the kernel state carried
over, so both give identical events.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ImplausibleHeaderError, ParameterError, TruncatedFileError
from ._report import TRUNCATED_BYTES, Report
from .events import EVENT_DTYPE

#: Largest sensor side a header may declare. It is the widest address any supported
#: format can encode (DAT's 14-bit x / y), 12x the widest event camera sold today
#: (1280 px), and small enough that a dense [P, H, W] frame of it still fits in memory;
#: a header beyond it (e.g. ``% Width 2147483647``) is corrupt, not a sensor.
MAX_SIDE = 16384


def header_size(path: str, w, h, where: str, limit: int = MAX_SIDE, why: str = "") -> tuple:
    """``(W, H, 2)`` from header fields, or :class:`ImplausibleHeaderError` if impossible."""
    try:
        w, h = int(w), int(h)
    except (TypeError, ValueError):
        w = h = None
    if w is None or not (1 <= w <= limit and 1 <= h <= limit):
        raise ImplausibleHeaderError(
            f"{path}: the header's {where} gives a sensor of {w} x {h} pixels; each side must "
            f"be 1..{limit} ({why or f'neurosparse.data.MAX_SIDE = {MAX_SIDE}'}), so the "
            "header is corrupt; pass sensor_size=(W, H) to read the events with the right size"
        )
    return (w, h, 2)


class Source:
    """An opened recording: ``sensor_size``, ``meta``, and two ways to get the events.

    ``ordered``: the format's recordings are in time order, so events going backwards
    mean corruption. ``limit``: the format's largest sensor ``(W, H)``, used for the
    bounds check when the file states no size (N-MNIST / N-Caltech101).
    """

    fmt: str = ""
    unit: str = "word"  # what error positions count: words of the data section, or events
    ordered: bool = False
    limit: tuple[int, int] | None = None
    limit_name: str = ""
    #: where the kernel's ``stat[EARLY]`` events lie (formats whose words carry state)
    early: str = "before the state words they depend on"

    def __init__(
        self, path: str | os.PathLike, report: Report, sensor_size: tuple | None, meta: dict
    ) -> None:
        self.path = os.fspath(path)
        self.report = report
        report.unit = self.unit
        report.early = self.early
        self.sensor_size = sensor_size
        report.sensor_size = sensor_size
        if sensor_size is not None:
            report.bound = f"sensor_size={tuple(sensor_size)} (W, H, P)"
        elif self.limit is not None:
            report.bound = f"the largest {self.limit_name} sensor {self.limit}"
        self.meta = {"format": self.fmt, **meta}

    @property
    def width_height(self) -> tuple[int, int]:
        """Bounds for the kernels' check; (0, 0) when neither file nor format gives one."""
        if self.sensor_size is None:
            return self.limit if self.limit is not None else (0, 0)
        return int(self.sensor_size[0]), int(self.sensor_size[1])

    def read(self) -> np.ndarray:
        raise NotImplementedError

    def blocks(self, chunk_events: int) -> Iterator[np.ndarray]:
        raise NotImplementedError


_MAP_BYTES = 16 << 20  # files from this size on are memory-mapped by WordSource.read


class WordSource(Source):
    """A data section of fixed-size words starting at ``offset``.

    Subclasses set ``word_size`` and implement ``reset()`` (fresh kernel state) and
    ``decode(buf, word0) -> events`` (``buf``: whole words as uint8, ``word0``: index of
    its first word in the data section).
    """

    word_size: int = 1

    def __init__(self, path, report, sensor_size, meta, offset: int) -> None:
        super().__init__(path, report, sensor_size, meta)
        self.offset = offset
        report.offset, report.word_size = offset, self.word_size

    def reset(self) -> None:
        pass

    def decode(self, buf: np.ndarray, word0: int) -> np.ndarray:
        raise NotImplementedError

    def _tail(self, n_bytes: int) -> None:
        if n_bytes:
            self.report.corrupt(
                TRUNCATED_BYTES,
                n_bytes,
                f"at byte {os.path.getsize(self.path) - n_bytes}: the file stops {n_bytes} "
                f"byte(s) into a {self.word_size}-byte word (truncated download or copy?)",
                error=TruncatedFileError,
            )

    def read(self) -> np.ndarray:
        self.reset()
        # Map a large file instead of copying it: the kernel reads the page cache directly
        # (a copy of a 250 MB file costs as much as decoding it). A small file is read:
        # mapping and unmapping cost more than the copy (0.6 MB EVT3 file: ~0.15 ms of
        # ~2 ms).
        size = os.path.getsize(self.path) - self.offset
        if size >= _MAP_BYTES:
            raw = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self.offset)
        elif size > 0:
            raw = np.fromfile(self.path, dtype=np.uint8, offset=self.offset)
        else:
            raw = np.empty(0, dtype=np.uint8)
        n_full = raw.shape[0] - raw.shape[0] % self.word_size
        ev = self.decode(raw[:n_full], 0)
        self.report.check_stat()
        self._tail(raw.shape[0] - n_full)
        return ev

    def blocks(self, chunk_events: int) -> Iterator[np.ndarray]:
        # A block of ``chunk_events`` words decodes to fewer events (EVT 3: ~0.3-0.7 per
        # word; time words everywhere), so decoded blocks are gathered until a chunk is
        # full: every chunk but the last holds exactly ``chunk_events``.
        held: list[np.ndarray] = []  # fewer than chunk_events events, in order
        n_held = 0
        for ev in self._decoded_blocks(chunk_events):
            if n_held:
                need = chunk_events - n_held
                if ev.shape[0] < need:
                    held.append(ev)
                    n_held += ev.shape[0]
                    continue
                yield np.concatenate([*held, ev[:need]])
                held, n_held, ev = [], 0, ev[need:]
            full = ev.shape[0] - ev.shape[0] % chunk_events
            yield from split(ev[:full], chunk_events)
            if full < ev.shape[0]:  # a copy: a view would keep the whole block alive
                held, n_held = [ev[full:].copy()], ev.shape[0] - full
        if n_held:
            yield np.concatenate(held)

    def _decoded_blocks(self, words: int) -> Iterator[np.ndarray]:
        """The events of each block of ``words`` words, in file order."""
        self.reset()
        ws = self.word_size
        buf = np.empty(words * ws, dtype=np.uint8)
        word0 = 0
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            while True:
                n = f.readinto(memoryview(buf))
                if not n:
                    break
                n_full = n - n % ws
                ev = self.decode(buf[:n_full], word0)
                self.report.check_stat()
                word0 += n_full // ws
                yield ev
                if n_full != n:
                    # readinto fills the buffer except at EOF, so a partial word is the end
                    self._tail(n - n_full)
                    break


def split(ev: np.ndarray, chunk_events: int) -> Iterator[np.ndarray]:
    """Yield ``ev`` in pieces of at most ``chunk_events`` (nothing for an empty array)."""
    for s in range(0, ev.shape[0], chunk_events):
        yield ev[s : s + chunk_events]


def alloc(n: int) -> np.ndarray:
    return np.empty(n, dtype=EVENT_DTYPE)


_HEADER_READ = 1 << 14
# Header lines are printable ASCII, tabs and line ends. Binary event words almost always
# hold a control or high byte before the next 0x0A, so they fail this even when their
# first byte happens to be the header prefix.
_TEXT = bytes(range(0x20, 0x7F)) + b"\t\r\n"
_NOT_TEXT = bytes(0 if c in _TEXT else 1 for c in range(256))  # a translate() table


def header_lines(
    path: str, prefix: bytes, stop: bytes | None = None, text: bool = True
) -> tuple[list[bytes], int]:
    """Read a file's leading header lines; return them (line ends removed) and the data offset.

    Parameters
    ----------
    path : str
        The file.
    prefix : bytes
        What every header line starts with (``b"#"``, ``b"%"``).
    stop : bytes, optional
        A line that ends the header (``b"#End Of ASCII Header"``, ``b"% end"``), compared
        without its line end and, for letters, without case. When the file has it, the
        header is every line up to it.
    text : bool
        Without ``stop`` (or when the file lacks it), the header ends before the first line
        that does not start with ``prefix`` *or* is not text (printable ASCII, tabs): event
        data may begin with the prefix byte (an AEDAT 2 DAVIS word with y = 140..143
        starts with ``#``, an EVT word with 0x25 with ``%``), and taking it for a header
        line would swallow events up to the next 0x0A byte. ``False`` keeps any line
        that starts with ``prefix`` (AEDAT 3.1, whose end line is mandatory).

    Returns
    -------
    tuple of (list of bytes, int)
        The header lines, and the byte offset where the data starts.

    Raises
    ------
    TruncatedFileError
        The file ends inside its header: its last line has no line end, and no end line
        and no data come before it (in ``errors="skip"`` mode too: such a file holds no
        events to keep, and its format or layout may be cut off with it). A header that
        ends with a complete line and no data is a valid file of 0 events (a writer's
        header-only file; older files have no end line).
    """
    lines: list[bytes] = []
    stop_n = len(stop) if stop is not None else -1
    stop_low = stop.lower() if stop is not None else None
    pos = 0
    unterminated = -1  # start of a last header line that the end of the file cuts off
    with open(path, "rb") as f:
        buf = f.read(_HEADER_READ)  # one read holds a typical header (< 2 KB): no readline
        while True:
            end = buf.find(b"\n", pos)
            if end < 0:
                more = f.read(_HEADER_READ)
                if more:  # a line longer than what was read so far
                    buf += more
                    continue
                if pos >= len(buf):
                    break
                end = len(buf) - 1  # the last line, without a newline, ends the file
                unterminated = pos
            if not buf.startswith(prefix, pos):
                break
            line = buf[pos : end + 1].rstrip(b"\r\n")
            lines.append(line)
            pos = end + 1
            if len(line) == stop_n and line.lower() == stop_low:
                return lines, pos  # the end line vouches for every line before it
    if text:
        # one pass over the whole header instead of a test per line (jAER headers run to
        # thousands of lines); the header ends before the line of the first non-text byte
        head = buf[:pos]
        if head.translate(None, _TEXT):
            bad = head.translate(_NOT_TEXT).find(1)
            k = head.count(b"\n", 0, bad)  # lines before it: each ends with a newline
            return lines[:k], head.rfind(b"\n", 0, bad) + 1
    if unterminated >= 0 and pos == len(buf):
        # Every writer ends a header line with a line end, so a last line without one,
        # with nothing after it, is where a copy stopped: reading it as a header-only file
        # would return 0 events with no word of the loss (and a cut "% evt 3.0" or
        # "# AEChip:" line would be blamed as an unknown encoding or chip).
        raise TruncatedFileError(
            f"{path}: the file ends inside its header, at byte {len(buf)}: its last line "
            f"{bytes(buf[unterminated : unterminated + 60])!r} has no line end"
            + (f", and no {stop.decode('latin-1')!r} line" if stop is not None else "")
            + " and no events follow; the file was cut (truncated download or copy): "
            "copy or download it again"
        )
    return lines, pos


def opts_left(opts: dict[str, Any], fmt: str) -> None:
    if opts:
        raise ParameterError(f"format {fmt!r} takes no option(s) {sorted(opts)}")


__all__ = ["MAX_SIDE"]  # what neurosparse.data re-exports; the rest serves the readers
