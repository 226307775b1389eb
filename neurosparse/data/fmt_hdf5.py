"""HDF5 event files (h5py).

Layouts recognised, first match wins:

- ``events/{t, x, y, p}`` (what :func:`~neurosparse.data.write_hdf5` writes; DSEC-like):
  integer t in µs, or float t in seconds;
- ``raw_events/{t, x, y, p}`` (same rule for t);
- SHD / SSC (Cramer et al. 2022): ``spikes/times`` (float s) and ``spikes/units``, one
  variable-length row per sample (``index=`` picks it; ``labels`` gives the label in
  ``meta``). As in Tonic's SHD: t = times * 1e6 truncated to µs, x = unit, y = 0, p = 1,
  sensor size (700, 1, 1).

Float times in seconds are rounded to the nearest µs, except SHD, which follows Tonic.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from ..errors import (
    CorruptDataError,
    EventFileError,
    NeurosparseError,
    ParameterError,
    TruncatedFileError,
)
from ._report import BAD_POLARITY_EVENTS
from ._source import MAX_SIDE, Source, alloc, header_size, opts_left
from .events import EVENT_DTYPE

SHD_SIZE = (700, 1, 1)
# h5py reports a damaged file body as any of these (and numpy casts as ValueError/TypeError)
H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError)


@contextlib.contextmanager
def h5_errors(path: str, what: str):
    """Turn h5py's errors on a damaged file into :class:`CorruptDataError` (cause kept)."""
    try:
        yield
    except NeurosparseError:
        raise
    except H5_ERRORS as exc:
        cls = TruncatedFileError if "truncated" in str(exc).lower() else CorruptDataError
        raise cls(
            f"{path}: cannot read {what} ({type(exc).__name__}: {exc}); the HDF5 file is "
            "damaged (truncated copy?) or was not written as an event file"
        ) from exc


def _to_us(t: np.ndarray, path: str, scale: float = 1e6, rint: bool = True) -> np.ndarray:
    if np.issubdtype(t.dtype, np.floating):
        t = t.astype(np.float64) * scale
        if not np.all(np.isfinite(t)) or (t.size and np.abs(t).max() >= 2.0**62):
            raise CorruptDataError(
                f"{path}: {int((~np.isfinite(t)).sum())} timestamp(s) are NaN/inf or beyond "
                "2**62 µs; the file is damaged"
            )
        return (np.rint(t) if rint else t).astype(np.int64)
    return t.astype(np.int64)


def _fit(col: np.ndarray, name: str, path: str, lo: int) -> np.ndarray:
    """``col`` unchanged in the event dtype, or an error: never a silently wrapped value."""
    dt = EVENT_DTYPE[name]
    if not np.issubdtype(col.dtype, np.integer) and not np.issubdtype(col.dtype, np.bool_):
        raise CorruptDataError(f"{path}: {name} has dtype {col.dtype}; expected integers")
    cast = col.astype(dt)
    if not np.array_equal(cast, col):
        i = int(np.argmax(cast != col))
        raise CorruptDataError(
            f"{path}: {name}[{lo + i}] = {col[i]} does not fit {dt} (the event field); the "
            "file is damaged or holds another kind of data"
        )
    return cast


class HDF5Source(Source):
    fmt = "hdf5"
    unit = "event"
    # events/ and raw_events/ files state no sensor: check coordinates against the largest
    # side any supported format declares
    limit = (MAX_SIDE, MAX_SIDE)
    limit_name = "plausible (neurosparse.data.MAX_SIDE)"

    def __init__(self, path, report, sensor_size, meta, group: str | None, index: int | None):
        super().__init__(path, report, sensor_size, meta)
        self.group, self.index = group, index

    def _columns(self, f, lo: int, hi: int) -> np.ndarray:
        if self.group is None:  # SHD
            times = f["spikes/times"]
            units = f["spikes/units"]
            if self.index is None:
                t, u = times[lo:hi], units[lo:hi]
            else:
                t, u = times[self.index][lo:hi], units[self.index][lo:hi]
            if t.shape != u.shape:
                raise CorruptDataError(
                    f"{self.path}: spikes/times and spikes/units differ in length "
                    f"({t.shape} vs {u.shape}) for sample {self.index}"
                )
            out = alloc(t.shape[0])
            out["t"] = _to_us(np.asarray(t, dtype=np.float64), self.path, rint=False)
            out["x"], out["y"], out["p"] = _fit(np.asarray(u), "x", self.path, lo), 0, 1
            return out
        g = f[self.group]
        out = alloc(hi - lo)
        out["t"] = _to_us(g["t"][lo:hi], self.path)
        for k in "xyp":
            out[k] = _fit(g[k][lo:hi], k, self.path, lo)
        p = out["p"]
        if p.size and (p.min() < 0 or p.max() > 1):
            p[p == -1] = 0  # the +-1 convention: -1 is OFF (documented in docs/data.md)
            bad = (p < 0) | (p > 1)
            if bad.any():
                i = int(np.argmax(bad))
                self.report.corrupt(
                    BAD_POLARITY_EVENTS,
                    int(bad.sum()),
                    f"at event {lo + i} ({self.group}/p = {int(p[i])})",
                )
                out = out[~bad]
        return out

    def _check(self, ev: np.ndarray, lo: int) -> np.ndarray:
        w, h = self.width_height
        if not w:
            return ev
        bad = (ev["x"] < 0) | (ev["x"] >= w) | (ev["y"] < 0) | (ev["y"] >= h)
        if bad.any():
            stat = self.report.stat
            if stat[3] < 0:
                stat[3] = lo + int(np.argmax(bad))
            stat[2] += int(bad.sum())
            self.report.check_stat()
            ev = ev[~bad]
        return ev

    def _length(self, f) -> int:
        if self.group is None:
            times = f["spikes/times"]
            return len(times[self.index]) if self.index is not None else times.shape[0]
        return f[self.group]["t"].shape[0]

    def read(self) -> np.ndarray:
        import h5py

        with h5_errors(self.path, "the events"), h5py.File(self.path, "r") as f:
            return self._check(self._columns(f, 0, self._length(f)), 0)

    def blocks(self, chunk_events: int) -> Iterator[np.ndarray]:
        import h5py

        with h5_errors(self.path, "the events"), h5py.File(self.path, "r") as f:
            n = self._length(f)
            for lo in range(0, n, chunk_events):
                yield self._check(self._columns(f, lo, min(n, lo + chunk_events)), lo)


def open_source(path, report, sensor_size, index: int | None = None, **opts) -> HDF5Source:
    """``index``: sample of a multi-sample SHD file (required there)."""
    import h5py

    opts_left(opts, "hdf5")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        cls = TruncatedFileError if "truncated" in str(exc).lower() else CorruptDataError
        raise cls(
            f"{path}: not a readable HDF5 file ({exc}); truncated copy, or not HDF5?"
        ) from exc
    with h5_errors(path, "the layout (groups, shapes, attributes)"), f:
        return _open(f, path, report, sensor_size, index)


def _open(f, path, report, sensor_size, index) -> HDF5Source:
    meta: dict = {}
    for group in ("events", "raw_events"):
        if group in f and all(k in f[group] for k in "txyp"):
            n = {k: f[group][k].shape for k in "txyp"}
            if len(set(n.values())) != 1 or len(n["t"]) != 1:
                raise CorruptDataError(
                    f"{path}: {group}/t, x, y, p must be 1-D and of one length, got {n}"
                )
            if sensor_size is None and "sensor_size" in f[group].attrs:
                size = np.asarray(f[group].attrs["sensor_size"]).ravel()
                if size.shape[0] not in (2, 3):
                    raise CorruptDataError(
                        f"{path}: {group}.attrs['sensor_size'] = {size!r}; expected (W, H[, P])"
                    )
                w_h_p = header_size(path, size[0], size[1], f"{group} sensor_size attribute")
                p = int(size[2]) if size.shape[0] == 3 else 2
                if p not in (1, 2):
                    raise CorruptDataError(f"{path}: sensor_size polarity count {p}, not 1 or 2")
                sensor_size = (*w_h_p[:2], p)
            meta["layout"] = group
            return HDF5Source(path, report, sensor_size, meta, group, index)
    if "spikes" in f and "times" in f["spikes"] and "units" in f["spikes"]:
        times = f["spikes/times"]
        multi = times.dtype.kind == "O"
        if multi and index is None:
            raise ParameterError(
                f"{path} is an SHD-style file with {times.shape[0]} samples; pass index= "
                "(0 .. n-1) to read one, or use neurosparse.data.SHD for the whole set"
            )
        if multi and not 0 <= index < times.shape[0]:
            raise ParameterError(f"index must be in [0, {times.shape[0]}), got {index}")
        meta["layout"] = "spikes"
        if multi and "labels" in f:
            meta["label"] = int(f["labels"][index])
        return HDF5Source(
            path, report, sensor_size or SHD_SIZE, meta, None, index if multi else None
        )
    raise EventFileError(
        f"{path}: no event datasets found; expected events/{{t,x,y,p}}, "
        f"raw_events/{{t,x,y,p}} or spikes/{{times,units}}; top-level keys: {list(f)}"
    )
