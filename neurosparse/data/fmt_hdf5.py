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

from collections.abc import Iterator

import numpy as np

from ..errors import EventFileError, ParameterError
from ._source import Source, alloc, opts_left

SHD_SIZE = (700, 1, 1)


def _to_us(t: np.ndarray) -> np.ndarray:
    if np.issubdtype(t.dtype, np.floating):
        return np.rint(t.astype(np.float64) * 1e6).astype(np.int64)
    return t.astype(np.int64)


class HDF5Source(Source):
    fmt = "hdf5"

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
            out = alloc(t.shape[0])
            out["t"] = (t.astype(np.float64) * 1e6).astype(np.int64)
            out["x"], out["y"], out["p"] = u, 0, 1
            return out
        g = f[self.group]
        out = alloc(hi - lo)
        out["t"] = _to_us(g["t"][lo:hi])
        out["x"], out["y"], out["p"] = g["x"][lo:hi], g["y"][lo:hi], g["p"][lo:hi]
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

        with h5py.File(self.path, "r") as f:
            return self._check(self._columns(f, 0, self._length(f)), 0)

    def blocks(self, chunk_events: int) -> Iterator[np.ndarray]:
        import h5py

        with h5py.File(self.path, "r") as f:
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
        raise EventFileError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with f:
        meta: dict = {}
        for group in ("events", "raw_events"):
            if group in f and all(k in f[group] for k in "txyp"):
                n = {k: f[group][k].shape for k in "txyp"}
                if len(set(n.values())) != 1:
                    raise EventFileError(f"{path}: {group}/t, x, y, p differ in length: {n}")
                if sensor_size is None and "sensor_size" in f[group].attrs:
                    sensor_size = tuple(int(v) for v in f[group].attrs["sensor_size"])
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
