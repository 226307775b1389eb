"""The event record every reader returns: a Tonic-compatible structured NumPy array.

Fields are addressed by name (``ev["t"]``), never by position, exactly as Tonic's
transforms do, so Tonic transforms run on our events unchanged and ours on Tonic's.

``EventArray`` is a plain ``np.ndarray`` subclass that also carries ``sensor_size``
``(W, H, P)`` and a ``meta`` dict (format, header fields, counts of skipped words).
Slicing keeps both; pickling keeps both (DataLoader workers).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DTypeError

#: t: microseconds (int64, absolute as recorded); x, y: pixel column / row (int16, like
#: Tonic's DVSGesture and AEDAT 4's own struct); p: polarity 0 = OFF, 1 = ON (int8, so
#: Tonic's voxel grid, which maps 0 to -1 in place, works on it).
EVENT_DTYPE = np.dtype([("t", "<i8"), ("x", "<i2"), ("y", "<i2"), ("p", "i1")])


class EventArray(np.ndarray):
    """Structured array of events with ``sensor_size`` and ``meta`` attached.

    Parameters
    ----------
    events
        Anything ``np.asarray`` turns into a structured array with fields t, x, y, p.
    sensor_size
        ``(width, height, n_polarities)`` or ``None`` when the file does not state it.
    meta
        Free-form facts about the recording (format, header fields, skipped words).
    """

    sensor_size: tuple[int, int, int] | None
    meta: dict[str, Any]

    def __new__(
        cls,
        events: Any,
        sensor_size: tuple[int, int, int] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> EventArray:
        obj = np.asarray(events).view(cls)
        obj.sensor_size = None if sensor_size is None else tuple(int(s) for s in sensor_size)
        obj.meta = dict(meta or {})
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.sensor_size = getattr(obj, "sensor_size", None)
        self.meta = getattr(obj, "meta", {})

    def __reduce__(self):  # keep sensor_size / meta through pickle (DataLoader workers)
        base = super().__reduce__()
        return base[0], base[1], (base[2], self.sensor_size, self.meta)

    def __setstate__(self, state):
        super().__setstate__(state[0])
        self.sensor_size, self.meta = state[1], state[2]


def empty_events(n: int = 0) -> np.ndarray:
    """An uninitialised event array of length ``n`` in :data:`EVENT_DTYPE`."""
    return np.empty(n, dtype=EVENT_DTYPE)


def make_events(t: Any, x: Any, y: Any, p: Any) -> np.ndarray:
    """Build an :data:`EVENT_DTYPE` array from four equal-length columns."""
    t = np.asarray(t)
    out = empty_events(t.shape[0])
    out["t"], out["x"], out["y"], out["p"] = t, x, y, p
    return out


def as_event_array(events: Any, name: str = "events") -> np.ndarray:
    """Return ``events`` as a base-class structured ndarray, checking it has t, x, y, p.

    Accepts any field order and integer/bool field types (ours, Tonic's datasets'); Numba
    kernels read the record fields by name, so no copy is made.
    """
    arr = np.asarray(events)
    names = arr.dtype.names or ()
    missing = [f for f in ("t", "x", "y", "p") if f not in names]
    if missing or arr.ndim != 1:
        raise DTypeError(
            f"{name} must be a 1-D structured array with fields t, x, y, p; got dtype "
            f"{arr.dtype} and shape {arr.shape} (missing {missing}); build one with "
            "neurosparse.data.make_events(t, x, y, p)"
        )
    return arr


def sensor_size_of(events: Any, sensor_size: tuple[int, ...] | None) -> tuple[int, int, int]:
    """Resolve a sensor size: the argument, else the array's own, else max coordinate + 1."""
    if sensor_size is None:
        sensor_size = getattr(events, "sensor_size", None)
    if sensor_size is None:
        arr = np.asarray(events)
        if arr.shape[0] == 0:
            return (1, 1, 2)
        return (int(arr["x"].max()) + 1, int(arr["y"].max()) + 1, 2)
    s = tuple(int(v) for v in sensor_size)
    return s if len(s) == 3 else (s[0], s[1], 2)


__all__ = ["EVENT_DTYPE", "EventArray", "make_events"]
