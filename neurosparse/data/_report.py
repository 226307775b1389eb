"""Bookkeeping of what a reader could not decode: an error, or a counted warning.

Readers never drop data silently. With ``errors="raise"`` (default) the first problem
raises a specific :mod:`neurosparse.errors` exception naming the file, the position and
the fix; with ``errors="skip"`` the bad words / packets / events are left out, counted,
and one :class:`~neurosparse.errors.CorruptDataWarning` at the end says how many of each.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import (
    CorruptDataError,
    CorruptDataWarning,
    EventFileError,
    EventOutsideSensorError,
    ParameterError,
    TimestampOrderError,
)
from ..kernels._decode_common import BAD, FIRST_BAD, FIRST_OUT, OTHER, OUTSIDE, new_stat

ERROR_MODES = ("raise", "skip")
SKIP_HINT = 'pass errors="skip" to drop them with a warning that counts them'


def check_errors(errors: str) -> str:
    if errors not in ERROR_MODES:
        raise ParameterError(f"errors must be one of {list(ERROR_MODES)}, got {errors!r}")
    return errors


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
        self.counts: dict[str, int] = {}
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
        what: str,
        count: int,
        where: str,
        hint: str = "",
        error: type[EventFileError] = CorruptDataError,
    ) -> None:
        """A piece of the file is not valid for its format (``count`` of ``what`` lost)."""
        if not self.skip:
            raise error(
                f"{self.path}: {what} {where}"
                + (f"; {hint}" if hint else "")
                + '; pass errors="skip" to drop it with a warning'
            )
        self.counts[what] = self.counts.get(what, 0) + count

    def check_stat(self) -> None:
        """Raise on the first corrupt word or out-of-sensor event the kernels counted."""
        if self.skip:
            return
        s = self.stat
        if s[BAD]:
            raise CorruptDataError(
                f"{self.path}: {int(s[BAD])} corrupt {self.unit}(s) (invalid for the format), "
                f"the first at {self.unit} {int(s[FIRST_BAD])} of the data section; the file is "
                f"damaged or not in this format; {SKIP_HINT}"
            )
        if s[OUTSIDE]:
            raise EventOutsideSensorError(
                f"{self.path}: {int(s[OUTSIDE])} event(s) lie outside {self.bound} (W, H, P), "
                f"the first at {self.unit} {int(s[FIRST_OUT])} of the data section; pass the "
                f"right sensor_size, or {SKIP_HINT}"
            )

    def in_order(self, ev: np.ndarray, fmt: str) -> np.ndarray:
        """Check that ``ev`` continues the file's non-decreasing time; drop (skip) or raise.

        An event earlier than the latest one before it is out of order; with
        ``errors="skip"`` it is dropped and counted. Called block after block, so
        streaming and whole-file reads agree.
        """
        n = ev.shape[0]
        if n == 0:
            return ev
        t = ev["t"]
        run = np.maximum.accumulate(t)
        before = np.empty(n, dtype=np.int64)
        before[0] = t[0] if self.t_max is None else self.t_max
        before[1:] = run[:-1]
        if self.t_max is not None:
            np.maximum(before, self.t_max, out=before)
        bad = t < before
        first = self.n_seen
        self.n_seen += n
        self.t_max = int(max(run[-1], before[0]))
        if not bad.any():
            return ev
        i = int(np.argmax(bad))
        if not self.skip:
            raise TimestampOrderError(
                f"{self.path}: timestamps go backwards at decoded event {first + i} "
                f"(t = {int(t[i])} µs after {int(before[i])} µs; {int(bad.sum())} such event(s) "
                f"in this block). {fmt} recordings are in time order, so the file is corrupt "
                f"(flipped or overwritten bytes) or not a {fmt} file; {SKIP_HINT}"
            )
        self.backward += int(bad.sum())
        return ev[~bad]

    @property
    def other(self) -> int:
        return int(self.stat[OTHER])

    def finish(self) -> None:
        """Warn once with everything that was dropped (``errors="skip"``)."""
        if self.finished:
            return
        self.finished = True
        counts = dict(self.counts)
        if self.stat[BAD]:
            counts[f"corrupt {self.unit}s"] = int(self.stat[BAD])
        if self.stat[OUTSIDE]:
            counts[f"events outside {self.bound}"] = int(self.stat[OUTSIDE])
        if self.backward:
            counts["events whose timestamps go backwards"] = self.backward
        if counts:
            what = ", ".join(f"{v} {k}" for k, v in counts.items())
            warnings.warn(f"{self.path}: dropped {what}", CorruptDataWarning, stacklevel=4)

    def dropped(self) -> dict[str, int]:
        out = dict(self.counts)
        out["corrupt_" + self.unit + "s"] = int(self.stat[BAD])
        out["outside_sensor"] = int(self.stat[OUTSIDE])
        out["backward_timestamps"] = self.backward
        return out
