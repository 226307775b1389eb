"""Bookkeeping of what a reader could not decode: an error, or a counted warning.

Readers never drop data silently. With ``errors="raise"`` (default) the first problem
raises a specific :mod:`neurosparse.errors` exception naming the file, the position and
the fix; with ``errors="skip"`` the bad words / packets / events are left out, counted,
and one :class:`~neurosparse.errors.CorruptDataWarning` at the end says how many of each.
"""

from __future__ import annotations

import os
import warnings
from typing import NamedTuple

import numpy as np

from ..errors import (
    CorruptDataError,
    CorruptDataWarning,
    EventFileError,
    EventOutsideSensorError,
    ParameterError,
    TimestampOrderError,
)
from ..kernels._decode_common import (
    BAD,
    EARLY,
    FIRST_BAD,
    FIRST_EARLY,
    FIRST_OUT,
    OTHER,
    OUTSIDE,
    first_backward,
    new_stat,
)

ERROR_MODES = ("raise", "skip")
SKIP_HINT = 'pass errors="skip" to drop them with a warning that counts them'


def plural(n: int, one: str, many: str) -> str:
    """``"1 corrupt word"``, ``"2 corrupt words"``."""
    return f"{n} {one if n == 1 else many}"


class Dropped(NamedTuple):
    """A kind of damage a reader drops and counts: its ``meta["dropped"]`` key (snake_case,
    like the kernels' ``corrupt_words``, ``outside_sensor``, ...) and its words in the
    message, for one and for several."""

    key: str
    one: str
    many: str

    def words(self, n: int) -> str:
        return self.one if n == 1 else self.many


TRUNCATED_BYTES = Dropped("truncated_bytes", "truncated byte", "truncated bytes")
CORRUPT_PACKETS = Dropped("corrupt_packets", "corrupt packet", "corrupt packets")
BYTES_AFTER_BAD_PACKET = Dropped(
    "bytes_after_bad_packet", "byte from a bad packet to the end",
    "bytes from a bad packet to the end")  # fmt: skip
UNDECLARED_STREAM_PACKETS = Dropped(
    "undeclared_stream_packets", "packet of an undeclared stream",
    "packets of undeclared streams")  # fmt: skip
INCOMPLETE_LAST_PACKETS = Dropped(
    "incomplete_last_packets", "incomplete packet at the end of the file",
    "incomplete packets at the end of the file")  # fmt: skip
BYTES_BEFORE_DATA_TABLE = Dropped(
    "bytes_before_data_table", "byte cut off before the data table",
    "bytes cut off before the data table")  # fmt: skip
UNDEFINED_TYPE_PACKETS = Dropped(
    "undefined_type_packets", "packet of undefined type", "packets of undefined type")
UNCLOSED_HEADERS = Dropped("unclosed_headers", "header", "headers")
BAD_POLARITY_EVENTS = Dropped(
    "bad_polarity_events", "event with a polarity other than 0 / 1 / -1",
    "events with a polarity other than 0 / 1 / -1")  # fmt: skip


def check_errors(errors: str) -> str:
    if errors not in ERROR_MODES:
        raise ParameterError(f"errors must be one of {list(ERROR_MODES)}, got {errors!r}")
    return errors


def _behind(t: np.ndarray, prev: int | None) -> np.ndarray:
    """Mask of events earlier than the latest event before them (or ``prev``)."""
    before = np.empty(t.shape[0], dtype=np.int64)
    if t.shape[0] == 0:
        return before.astype(bool)
    before[0] = t[0] if prev is None else prev
    np.maximum.accumulate(t[:-1], out=before[1:])
    if prev is not None:
        np.maximum(before, prev, out=before)
    return t < before


class Report:
    """Collects problems met while decoding ``path``; ``stat`` is shared with the kernels."""

    def __init__(self, path: str | os.PathLike, errors: str, unit: str = "word") -> None:
        self.path = os.fspath(path)
        self.errors = check_errors(errors)
        self.unit = unit
        self.stat = new_stat()
        self.sensor_size: tuple[int, int, int] | None = None
        #: what the bounds check used, for messages ("sensor_size=(34, 34, 2)", ...)
        self.bound = ""
        #: where ``stat[EARLY]`` events lie, for messages (set by the Source)
        self.early = "before the state words they depend on"
        #: data offset and word size (fixed-word formats) to turn word indices into bytes
        self.offset = 0
        self.word_size = 0
        self.counts: dict[Dropped, int] = {}
        self.finished = False
        # per-file time order: largest t so far, events seen, events out of order
        self.t_max: int | None = None
        self.n_seen = 0
        self.backward = 0

    @property
    def skip(self) -> bool:
        return self.errors == "skip"

    def corrupt(
        self,
        what: Dropped,
        count: int,
        where: str,
        hint: str = "",
        error: type[EventFileError] = CorruptDataError,
    ) -> None:
        """A piece of the file is not valid for its format (``count`` of ``what`` lost)."""
        if not self.skip:
            raise error(
                f"{self.path}: {what.words(count)} {where}"
                + (f"; {hint}" if hint else "")
                + '; pass errors="skip" to drop it with a warning'
            )
        self.counts[what] = self.counts.get(what, 0) + count

    def where(self, word: int) -> str:
        """``"word 12 (byte 96)"``: position of a word of the data section."""
        at = f"{self.unit} {word}" + (" of the data section" if self.unit == "word" else "")
        if self.word_size:
            at += f" (byte {self.offset + word * self.word_size})"
        return at

    def check_stat(self) -> None:
        """Raise on the first corrupt word or out-of-sensor event the kernels counted."""
        if self.skip:
            return
        s = self.stat
        if s[BAD]:
            raise CorruptDataError(
                f"{self.path}: {int(s[BAD])} corrupt {self.unit}(s) (invalid for the format), "
                f"the first at {self.where(int(s[FIRST_BAD]))}; the file is "
                f"damaged or not in this format; {SKIP_HINT}"
            )
        if s[EARLY]:
            raise CorruptDataError(
                f"{self.path}: {int(s[EARLY])} event(s) lie {self.early}, the first at "
                f"{self.where(int(s[FIRST_EARLY]))}; recordings start with these words, so "
                f"the file was cut between them and its events (or the words are damaged); "
                f"cut it at a TIME_HIGH word, or {SKIP_HINT}"
            )
        if s[OUTSIDE]:
            raise EventOutsideSensorError(
                f"{self.path}: {int(s[OUTSIDE])} event(s) lie outside {self.bound}, the first "
                f"at {self.where(int(s[FIRST_OUT]))}; pass the right sensor_size=(W, H), or "
                f"{SKIP_HINT}"
            )

    def in_order(self, ev: np.ndarray, fmt: str) -> np.ndarray:
        """Check that ``ev`` continues the file's non-decreasing time; drop (skip) or raise.

        An event earlier than the latest kept one before it is out of order. With
        ``errors="skip"`` the out-of-order events are dropped and counted, except that a
        single event far *ahead* of both neighbours (a spike: its successor is in order
        with its predecessor) is dropped instead of everything after it. Called block
        after block with the running maximum carried over (a spike that is the last event
        of a streaming block cannot see its successor and is kept).
        """
        n = ev.shape[0]
        if n == 0:
            return ev
        t = ev["t"]
        prev = self.t_max
        first = self.n_seen
        self.n_seen += n
        i = int(first_backward(t, np.iinfo(np.int64).min if prev is None else prev))
        if i < 0:
            self.t_max = int(t[-1])  # in order: the last is the largest
            return ev
        t = t.astype(np.int64)
        if not self.skip:
            before = max(([int(t[:i].max())] if i else []) + ([prev] if prev is not None else []))
            raise TimestampOrderError(
                f"{self.path}: timestamps go backwards at decoded event {first + i} "
                f"(t = {int(t[i])} µs after {before} µs: this event or an earlier one is "
                f"wrong). {fmt} recordings are in time order, "
                f"so the file is corrupt (flipped or overwritten bytes) or not a {fmt} file; "
                f"{SKIP_HINT}"
            )
        drop = np.zeros(n, dtype=bool)
        if n > 1:  # spikes: t[j] > t[j+1] >= t[j-1]
            cur, nxt = t[:-1], t[1:]
            prv = np.empty(n - 1, dtype=np.int64)
            prv[0] = np.iinfo(np.int64).min if prev is None else prev
            prv[1:] = t[:-2]
            drop[:-1] = (cur > nxt) & (nxt >= prv)
        rest = np.nonzero(~drop)[0]
        drop[rest[_behind(t[rest], prev)]] = True
        kept = t[~drop]
        if kept.shape[0]:
            self.t_max = int(kept.max()) if prev is None else max(prev, int(kept.max()))
        self.backward += int(drop.sum())
        return ev[~drop]

    @property
    def other(self) -> int:
        return int(self.stat[OTHER])

    def finish(self) -> None:
        """Warn once with everything that was dropped (``errors="skip"``)."""
        # in raise mode nothing is dropped: what the kernels counted before the error
        # (e.g. a streaming block's events outside the sensor) is in the exception
        if self.finished or not self.skip:
            return
        self.finished = True
        parts = [plural(n, kind.one, kind.many) for kind, n in self.counts.items()]
        if self.stat[BAD]:
            parts.append(plural(int(self.stat[BAD]), f"corrupt {self.unit}",
                                f"corrupt {self.unit}s"))
        if self.stat[EARLY]:
            parts.append(plural(int(self.stat[EARLY]), "event", "events") + f" {self.early}")
        if self.stat[OUTSIDE]:
            parts.append(plural(int(self.stat[OUTSIDE]), "event", "events")
                         + f" outside {self.bound}")
        if self.backward:
            parts.append(plural(self.backward, "event whose timestamp goes backwards",
                                "events whose timestamps go backwards"))
        if parts:
            warnings.warn(f"{self.path}: dropped {', '.join(parts)}", CorruptDataWarning,
                          stacklevel=4)

    def dropped(self) -> dict[str, int]:
        """``meta["dropped"]``: counts by snake_case key (docs/data.md lists them)."""
        out = {kind.key: n for kind, n in self.counts.items()}
        out["corrupt_" + self.unit + "s"] = int(self.stat[BAD])
        out["outside_sensor"] = int(self.stat[OUTSIDE])
        if self.stat[EARLY]:  # only formats whose words carry state have these
            out["before_state_words"] = int(self.stat[EARLY])
        out["backward_timestamps"] = self.backward
        return out
