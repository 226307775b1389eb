"""Bookkeeping of what a reader could not decode: an error, or a counted warning.

Readers never drop data silently. With ``errors="raise"`` (default) the first problem
raises a specific :mod:`neurosparse.errors` exception naming the file and the position;
with ``errors="skip"`` the bad words / packets / events are left out, counted, and one
:class:`~neurosparse.errors.CorruptDataWarning` at the end says how many of each.
"""

from __future__ import annotations

import os
import warnings

from ..errors import CorruptDataWarning, EventFileError, InputValueError, ParameterError
from ..kernels._decode_common import BAD, FIRST_BAD, FIRST_OUT, OTHER, OUTSIDE, new_stat

ERROR_MODES = ("raise", "skip")


class Report:
    """Collects problems met while decoding ``path``; ``stat`` is shared with the kernels."""

    def __init__(self, path: str | os.PathLike, errors: str, unit: str = "word") -> None:
        if errors not in ERROR_MODES:
            raise ParameterError(f"errors must be one of {list(ERROR_MODES)}, got {errors!r}")
        self.path = os.fspath(path)
        self.errors = errors
        self.unit = unit
        self.stat = new_stat()
        self.sensor_size: tuple[int, int, int] | None = None
        self.counts: dict[str, int] = {}
        self.finished = False

    @property
    def skip(self) -> bool:
        return self.errors == "skip"

    def corrupt(self, what: str, count: int, where: str, hint: str = "") -> None:
        """A piece of the file is not valid for its format (``count`` of ``what`` lost)."""
        if not self.skip:
            raise EventFileError(
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
            raise EventFileError(
                f"{self.path}: {int(s[BAD])} corrupt {self.unit}(s) (unknown type), the first at "
                f"{self.unit} {int(s[FIRST_BAD])} of the data section; "
                'pass errors="skip" to drop them with a warning'
            )
        if s[OUTSIDE]:
            raise InputValueError(
                f"{self.path}: {int(s[OUTSIDE])} event(s) lie outside sensor_size="
                f"{self.sensor_size} (W, H, P), the first at {self.unit} {int(s[FIRST_OUT])}; "
                'pass the right sensor_size, or errors="skip" to drop them with a warning'
            )

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
            counts[f"events outside sensor {self.sensor_size}"] = int(self.stat[OUTSIDE])
        if counts:
            what = ", ".join(f"{v} {k}" for k, v in counts.items())
            warnings.warn(f"{self.path}: dropped {what}", CorruptDataWarning, stacklevel=4)

    def dropped(self) -> dict[str, int]:
        out = dict(self.counts)
        out["corrupt_" + self.unit + "s"] = int(self.stat[BAD])
        out["outside_sensor"] = int(self.stat[OUTSIDE])
        return out
