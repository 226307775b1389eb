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

from ._report import Report
from .events import EVENT_DTYPE


class Source:
    """An opened recording: ``sensor_size``, ``meta``, and two ways to get the events."""

    fmt: str = ""

    def __init__(
        self, path: str | os.PathLike, report: Report, sensor_size: tuple | None, meta: dict
    ) -> None:
        self.path = os.fspath(path)
        self.report = report
        self.sensor_size = sensor_size
        report.sensor_size = sensor_size
        self.meta = {"format": self.fmt, **meta}

    @property
    def width_height(self) -> tuple[int, int]:
        """Bounds for the kernels' check; (0, 0) when the size is unknown."""
        if self.sensor_size is None:
            return 0, 0
        return int(self.sensor_size[0]), int(self.sensor_size[1])

    def read(self) -> np.ndarray:
        raise NotImplementedError

    def blocks(self, chunk_events: int) -> Iterator[np.ndarray]:
        raise NotImplementedError


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

    def reset(self) -> None:
        pass

    def decode(self, buf: np.ndarray, word0: int) -> np.ndarray:
        raise NotImplementedError

    def _tail(self, n_bytes: int) -> None:
        if n_bytes:
            self.report.corrupt(
                "truncated bytes",
                n_bytes,
                f"at the end: the file stops {n_bytes} byte(s) into a {self.word_size}-byte "
                "word (truncated download or copy?)",
            )

    def read(self) -> np.ndarray:
        self.reset()
        # Map the file instead of copying it: the kernel reads the page cache directly
        # (a copy of a 250 MB file costs as much as decoding it).
        if os.path.getsize(self.path) > self.offset:
            raw = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self.offset)
        else:
            raw = np.empty(0, dtype=np.uint8)
        n_full = raw.shape[0] - raw.shape[0] % self.word_size
        ev = self.decode(raw[:n_full], 0)
        self.report.check_stat()
        self._tail(raw.shape[0] - n_full)
        return ev

    def blocks(self, chunk_events: int) -> Iterator[np.ndarray]:
        self.reset()
        ws = self.word_size
        buf = np.empty(chunk_events * ws, dtype=np.uint8)
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
                yield from split(ev, chunk_events)
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


def header_lines(path: str, prefix: bytes, stop: bytes | None = None) -> tuple[list[bytes], int]:
    """Read the leading lines that start with ``prefix``; return them and the data offset.

    Stops after a line equal to ``stop`` (if given) or before the first line that does
    not start with ``prefix``. A last header line without a newline ends the file.
    """
    lines = []
    with open(path, "rb") as f:
        pos = 0
        while True:
            line = f.readline()
            if not line.startswith(prefix):
                break
            lines.append(line.rstrip(b"\r\n"))
            pos += len(line)
            if stop is not None and line.rstrip(b"\r\n") == stop:
                break
    return lines, pos


def opts_left(opts: dict[str, Any], fmt: str) -> None:
    from ..errors import ParameterError

    if opts:
        raise ParameterError(f"format {fmt!r} takes no option(s) {sorted(opts)}")
