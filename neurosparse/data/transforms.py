"""Event transforms: Tonic-shaped frozen dataclasses whose ``__call__`` runs one kernel.

Each transform takes a structured event array (ours or Tonic's: fields are read by name)
and is picklable, so it runs in DataLoader workers. Where Tonic has the same transform,
ours returns the same values (tests hold them to Tonic's output); the work is done by a
Numba kernel in ``neurosparse.kernels.events_*`` where Tonic's NumPy version is the
bottleneck (``np.add.at`` scatters, a Python loop per event), and by Tonic's own slicers
or plain NumPy where those are already fast.

``ToSpikeTensor`` (events -> float32 torch tensor ``[T, C, H, W]``) is the entry point
to the rest of neurosparse; the others keep Tonic's NumPy outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..errors import InputValueError, ParameterError
from ..kernels.events_denoise import denoise_mask
from ..kernels.events_frames import bin_spikes, frames_from_slices
from ..kernels.events_timesurface import time_surfaces
from ..kernels.events_voxel import voxel_grid
from ..ops import registry
from .events import EventArray, as_event_array

registry.register("events_to_spikes", "cpu")


def _raise_outside(ev: np.ndarray, index: int, sensor_size: tuple[int, int, int]) -> None:
    if index >= 0:
        e = ev[index]
        raise InputValueError(
            f"events[{index}] has x={int(e['x'])}, y={int(e['y'])}, p={int(e['p'])}, outside "
            f"sensor_size={sensor_size} (W, H, P); pass the recording's real sensor_size, or "
            "crop the events first (neurosparse.data.Crop)"
        )


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX: no check
        return None


def _check_fits(who: str, n_frames: int, size: tuple, itemsize: int, t0: int, t_first: int,
                step_us: float, start_arg: str) -> None:  # fmt: skip
    """Refuse an output larger than the machine's memory, saying why it is that large.

    Absolute timestamps (AEDAT4 and EVT files count µs since 1970: ~1.6e15) with a start
    time of 0 ask for ~10^12 empty frames before the first event; numpy's own error
    ("Unable to allocate 1016. PiB") does not say that.
    """
    need = n_frames * size[0] * size[1] * size[2] * itemsize
    if need < 1 << 30:  # the usual call: no system call per sample
        return
    have = _memory_bytes()
    if have is None or need <= have:
        return
    if t_first > t0:
        lead = (f" {start_arg}={t0} lies {t_first - t0} µs before the first event "
                f"(t={t_first}), about {int((t_first - t0) // max(step_us, 1))} empty frames;"
                f" pass {start_arg}=None to start at the first event, or")  # fmt: skip
    else:
        lead = " pass"
    raise ParameterError(
        f"{who}: {n_frames} frames of {size[0]} x {size[1]} x {size[2]} need "
        f"{need / 2**30:.3g} GiB, more than this machine's {have / 2**30:.3g} GiB;{lead} a "
        "longer time bin, or cut the recording into pieces first"
    )


def _missing_size_message(events: object, who: str) -> str:
    arr = np.asarray(events)
    meta = getattr(events, "meta", None)
    if meta is None:
        where = ("a plain array carries no size (an EventArray from a reader or dataset "
                 "may); with a Tonic dataset pass its own: sensor_size=dataset.sensor_size")
    elif meta.get("format") == "nmnist":
        where = (
            "N-MNIST / N-Caltech101 .bin files have no header, so read_events leaves "
            "sensor_size None; N-MNIST is 34 x 34: pass sensor_size=(34, 34, 2) here or to "
            "read_events, or read with ns.data.NMNIST, which attaches it (N-Caltech101 "
            "recordings vary, up to 240 x 180)"
        )
    elif "format" in meta:
        where = f"the recording (format {meta['format']!r}) states no size"
    else:
        where = "this EventArray was made with sensor_size=None"
    seen = ""
    if arr.shape[0] and arr.dtype.names and {"x", "y"} <= set(arr.dtype.names):
        w, h = int(arr["x"].max()) + 1, int(arr["y"].max()) + 1
        seen = (
            f" It is not guessed from the largest x / y seen ({w} x {h} here): that differs "
            "from recording to recording, so shapes would differ and geometry shift."
        )
    return (
        f"{who} needs the sensor size and the events carry none: pass "
        f"sensor_size=(W, H, P) to {who}, or to read_events / the dataset so the events "
        f"carry it; {where}.{seen}"
    )


def _sensor_size(events: object, given: tuple | None, who: str) -> tuple[int, int, int]:
    """``(W, H, P)``: ``given`` if set, else the size the events carry (readers attach the
    header's, datasets their sensor's). Never guessed from the coordinates: the largest
    x / y of one recording is not the sensor, and differs between recordings."""
    size = given if given is not None else getattr(events, "sensor_size", None)
    if size is None:
        raise ParameterError(_missing_size_message(events, who))
    s = tuple(int(v) for v in size)
    if len(s) == 2:
        s = (*s, 2)
    if len(s) != 3 or min(s) < 1:
        raise ParameterError(f"{who}: sensor_size must be (W, H[, P]) >= 1, got {tuple(size)}")
    return s


def _check_time_order(ev: np.ndarray, what: str) -> None:
    """Refuse events out of time order where the result depends on it (slicing by time
    looks events up by binary search: out of order, frames would silently miss events)."""
    t = ev["t"]
    if t.shape[0] > 1:
        back = np.flatnonzero(t[1:] < t[:-1])
        if back.size:
            i = int(back[0]) + 1
            raise InputValueError(
                f"{what} needs events in time order, but events[{i}].t = {t[i]} comes "
                f"after events[{i - 1}].t = {t[i - 1]} ({back.size} such place(s)); sort "
                "them first: events = np.sort(events, order='t', kind='stable')"
            )


def _check_whole_times(t: np.ndarray) -> None:
    """Spike binning counts time in whole units (µs): float timestamps with fractions
    (float µs, or seconds) would be cut to integers and land in the wrong bins."""
    if t.dtype.kind != "f" or t.size == 0:
        return
    if not np.isfinite(t).all():
        raise InputValueError("ToSpikeTensor: the events' t holds NaN or infinite values")
    if (t != np.floor(t)).any():
        raise InputValueError(
            f"ToSpikeTensor bins whole time units (µs), but the events' t ({t.dtype}) has "
            f"fractional values (e.g. {float(t[t != np.floor(t)][0])}): convert first, e.g. "
            "ev['t'] = np.round(ev['t'] * 1e6) for seconds, np.floor(ev['t']) for µs "
            "(ToFrame takes float times as they are)"
        )


def _check_positive(name: str, value: float | None) -> None:
    if value is not None and not value > 0:
        raise ParameterError(f"{name} must be > 0, got {value!r}")


class _Checked:
    """Base of the transforms: the fields named in ``_positive`` must be > 0 (or None)."""

    _positive: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name in self._positive:
            _check_positive(name, getattr(self, name))


def _rewrap(events: object, out: np.ndarray, sensor_size: tuple | None = None) -> np.ndarray:
    # Keep our metadata when the input carried it; plain arrays stay plain (like Tonic).
    if isinstance(events, EventArray):
        return EventArray(out, sensor_size or events.sensor_size, events.meta)
    return out


def spikes_reference(
    events: np.ndarray,
    sensor_size: tuple[int, int, int],
    n_bins: int,
    t0: int,
    num: int,
    den: int,
    binary: bool,
) -> torch.Tensor:
    """Pure-torch reference of :func:`~neurosparse.kernels.events_frames.bin_spikes`."""
    w, h, c = sensor_size
    ev = as_event_array(events)
    t = torch.as_tensor(ev["t"].astype(np.int64))
    x = torch.as_tensor(ev["x"].astype(np.int64))
    y = torch.as_tensor(ev["y"].astype(np.int64))
    p = torch.as_tensor(ev["p"].astype(np.int64))
    bad = (x < 0) | (x >= w) | (y < 0) | (y >= h)
    if bool(bad.any()):
        _raise_outside(ev, int(torch.nonzero(bad)[0, 0]), sensor_size)
    b = torch.div((t - t0) * num, den, rounding_mode="floor")
    ch = (p > 0).long() if c == 2 else torch.zeros_like(p)
    keep = (b >= 0) & (b < n_bins)
    out = torch.zeros(n_bins, c, h, w, dtype=torch.float32)
    idx = (b[keep], ch[keep], y[keep], x[keep])
    out.index_put_(idx, torch.ones(int(keep.sum()), dtype=torch.float32), accumulate=True)
    return out.clamp_(max=1.0) if binary else out


@dataclass(frozen=True)
class ToSpikeTensor(_Checked):
    """Events -> float32 spike tensor ``[T, C, H, W]`` (C: OFF=0 / ON=1, H: y rows, W: x cols).

    Parameters
    ----------
    sensor_size
        ``(W, H, P)``; ``None`` takes the one the events carry (readers attach the
        header's, datasets their sensor's, e.g. ``NMNIST``: 34 x 34). When neither gives
        one, :class:`~neurosparse.errors.ParameterError`: it is never guessed from the
        largest x / y seen, which differs between recordings. ``P = 1`` merges
        polarities into one channel.
    dt_us
        Bin width in the events' time unit (µs). Alone: ``T = ceil(span / dt_us)`` with
        ``span = t_last - t_first + 1``, the bins starting at the first event.
    n_time_bins
        Alone: ``T = n_time_bins`` bins of equal width spread over the span (bin =
        ``(t - t_first) * T // span``). With ``dt_us``: ``T`` fixed, bins of ``dt_us``,
        events after ``T * dt_us`` left out (a time window; padding when shorter).
    binary
        1.0 where a pixel fired in a bin (spikes); ``False`` gives event counts, equal to
        Tonic's ``ToFrame(time_window=dt_us, include_incomplete=True)`` except when the
        span ``t_last - t_first`` is a multiple of ``dt_us``: Tonic's last window then
        ends at ``t_last`` and drops the events there, this one has a bin for them.
    start_time
        Time of the start of bin 0; default the first event's time.

    Times are counted in whole units (µs): float ``t`` with fractional values (float µs,
    seconds) is refused with :class:`~neurosparse.errors.InputValueError` rather than cut
    to integers; whole-valued floats are binned as integers.
    """

    sensor_size: tuple[int, int, int] | None = None
    dt_us: float | None = None
    n_time_bins: int | None = None
    binary: bool = True
    start_time: int | None = None

    _positive = ("dt_us", "n_time_bins")

    def __post_init__(self) -> None:
        if self.dt_us is None and self.n_time_bins is None:
            raise ParameterError(
                "ToSpikeTensor needs dt_us (bin width in µs) or n_time_bins (number of bins); "
                "got neither"
            )
        super().__post_init__()
        # whole numbers: a fractional bin width or count would be cut to an int later
        for name in ("dt_us", "n_time_bins"):
            v = getattr(self, name)
            if v is not None and int(v) != v:
                raise ParameterError(f"{name} must be a whole number, got {v!r}")

    def __call__(self, events: np.ndarray) -> torch.Tensor:
        ev = as_event_array(events)
        size = _sensor_size(events, self.sensor_size, "ToSpikeTensor")
        n = ev.shape[0]
        _check_whole_times(ev["t"])
        t_first = int(ev["t"].min()) if n else 0
        t0 = t_first if self.start_time is None else int(self.start_time)
        span = (int(ev["t"].max()) - t0 + 1) if n else 1
        if self.dt_us is not None:
            dt = int(self.dt_us)
            if dt != self.dt_us:
                raise ParameterError(f"dt_us must be a whole number of µs, got {self.dt_us!r}")
            n_bins = self.n_time_bins or max(1, -(-span // dt))
            num, den = 1, dt
        else:
            n_bins, num, den = int(self.n_time_bins), int(self.n_time_bins), max(span, 1)
        if n and max(abs(int(ev["t"].max()) - t0), abs(t_first - t0)) * num >= 2**63:
            # the bin (t - t0) * num // den is computed in 64-bit integers: past this it
            # wraps, and the events would land outside every bin unseen
            raise ParameterError(
                f"ToSpikeTensor: start_time={t0} is {abs(t_first - t0)} µs from the first "
                f"event (t={t_first}); with n_time_bins={n_bins} the bin arithmetic overflows "
                "64-bit integers. Pass a start_time near the events (default: the first "
                "event's time), or dt_us for fixed-width bins"
            )
        _check_fits("ToSpikeTensor", n_bins, size, 4, t0, t_first, den / num, "start_time")
        if not registry.use_kernel("events_to_spikes", "cpu"):
            return spikes_reference(ev, size, n_bins, t0, num, den, self.binary)
        out = np.zeros((n_bins, size[2], size[1], size[0]), dtype=np.float32)
        bad, _ = bin_spikes(ev, t0, num, den, out, self.binary)
        _raise_outside(ev, bad, size)
        return torch.from_numpy(out)


@dataclass(frozen=True)
class ToFrame:
    """Events -> int16 frames ``[S, P, H, W]``; same arguments and values as Tonic's ToFrame.

    The slicing is Tonic's own (its slicers only run ``searchsorted``); the counting,
    Tonic's ``np.add.at`` per slice, is one Numba pass here. Exactly one of
    ``time_window``, ``event_count``, ``n_time_bins``, ``n_event_bins`` must be set.
    ``sensor_size=None`` takes the one the events carry; with neither,
    :class:`~neurosparse.errors.ParameterError` (never guessed from the coordinates).
    Counts are int16 as Tonic's: past 32767 events on one pixel in one frame they wrap
    (as there); use shorter frames or ``ToSpikeTensor`` (float32 counts) for such
    streams.
    """

    sensor_size: tuple[int, int, int] | None = None
    time_window: float | None = None
    event_count: int | None = None
    n_time_bins: int | None = None
    n_event_bins: int | None = None
    overlap: float = 0
    include_incomplete: bool = False
    start_time: float | None = None
    end_time: float | None = None

    def __post_init__(self) -> None:
        given = [
            k
            for k in ("time_window", "event_count", "n_time_bins", "n_event_bins")
            if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ParameterError(
                "ToFrame needs exactly one of time_window, event_count, n_time_bins, "
                f"n_event_bins; got {given or 'none'}"
            )
        # Tonic's slicers would fail with a bare AssertionError or ZeroDivisionError
        size = getattr(self, given[0])
        _check_positive(given[0], size)
        window = size if given[0] in ("time_window", "event_count") else None
        if self.overlap < 0 or (window is not None and self.overlap >= window) or (
                window is None and self.overlap >= 1):  # fmt: skip
            limit = f"{given[0]} = {window}" if window is not None else "1 (a fraction of a bin)"
            raise ParameterError(
                f"overlap must be >= 0 and below {limit}, got {self.overlap!r}"
            )

    def _slices(self, ev: np.ndarray) -> np.ndarray:
        from tonic import slicers  # lazy: importing tonic costs ~1 s

        if self.time_window is not None:
            s = slicers.SliceByTime(
                self.time_window,
                self.overlap,
                self.include_incomplete,
                self.start_time,
                self.end_time,
            )
        elif self.event_count is not None:
            s = slicers.SliceByEventCount(self.event_count, self.overlap, self.include_incomplete)
        elif self.n_time_bins is not None:
            s = slicers.SliceByTimeBins(self.n_time_bins, self.overlap)
        else:
            s = slicers.SliceByEventBins(self.n_event_bins, self.overlap)
        meta = s.get_slice_metadata(ev, None)
        # Tonic's event-count and event-bin slicers can end a slice past the last event
        # (its own ``events[s:e]`` clamps); the frame kernel reads exactly what it is given
        return np.clip(np.asarray(meta, dtype=np.int64).reshape(-1, 2), 0, ev.shape[0])

    def __call__(self, events: np.ndarray) -> np.ndarray:
        ev = as_event_array(events)
        size = _sensor_size(events, self.sensor_size, "ToFrame")
        if ev.shape[0] == 0:
            n = self.n_time_bins or self.n_event_bins or 1
            return np.zeros((n, size[2], size[1], size[0]), dtype=np.int16)
        if self.time_window is not None or self.n_time_bins is not None:
            _check_time_order(ev, "ToFrame slicing by time")
        if self.time_window is not None:  # before Tonic's slicer lays out the windows
            t_first, t_last = int(ev["t"][0]), int(ev["t"][-1])
            start = t_first if self.start_time is None else int(self.start_time)
            end = t_last if self.end_time is None else int(self.end_time)
            stride = self.time_window - self.overlap
            _check_fits("ToFrame", max(1, int(-(-(end - start) // stride))), size, 2, start,
                        t_first, stride, "start_time")  # fmt: skip
        sl = self._slices(ev)
        out = np.zeros((sl.shape[0], size[2], size[1], size[0]), dtype=np.int16)
        bad = frames_from_slices(
            ev, np.ascontiguousarray(sl[:, 0]), np.ascontiguousarray(sl[:, 1]), out
        )
        _raise_outside(ev, bad, size)
        return out


@dataclass(frozen=True)
class ToVoxelGrid(_Checked):
    """Events -> voxel grid ``[n_time_bins, 1, H, W]`` (float64), as Tonic's ToVoxelGrid.

    Bilinear in time over ``n_time_bins * (t - t_first) / (t_last - t_first)``, polarity 0
    counted as -1. The input's polarity column is left untouched (as Tonic's transform
    class, which copies; its functional form rewrites ``p``), and ``t_first`` /
    ``t_last`` are the earliest / latest times, so events out of time order give the grid
    of the same events sorted (Tonic indexes outside its grid there).
    ``sensor_size=None`` takes the one the events carry (as ``ToSpikeTensor``).
    """

    sensor_size: tuple[int, int, int] | None
    n_time_bins: int

    _positive = ("n_time_bins",)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        ev = as_event_array(events)
        size = _sensor_size(events, self.sensor_size, "ToVoxelGrid")
        w, h = size[0], size[1]
        out = np.zeros((self.n_time_bins, h, w), dtype=np.float64)
        _raise_outside(ev, voxel_grid(ev, out), size)
        return out.reshape(self.n_time_bins, 1, h, w)


@dataclass(frozen=True)
class ToTimeSurface(_Checked):
    """Events -> global time surfaces ``[S, P, H, W]`` every ``dt``, as Tonic's ToTimesurface.

    Surface ``k`` is ``exp(-(t_k - last_t) / tau)`` at ``t_k = t_first + (k + 1) * dt`` for
    each pixel and polarity (0 where it never fired). Polarity is the channel index.
    ``sensor_size=None`` takes the one the events carry (as ``ToSpikeTensor``).
    """

    sensor_size: tuple[int, int, int] | None
    dt: float
    tau: float

    _positive = ("dt", "tau")

    def __call__(self, events: np.ndarray) -> np.ndarray:
        from tonic import slicers

        ev = as_event_array(events)
        size = _sensor_size(events, self.sensor_size, "ToTimeSurface")
        w, h, c = size
        if ev.shape[0] == 0:
            raise InputValueError(
                "ToTimeSurface got no events: its surfaces are timed from the first event; "
                "skip empty recordings (or windows) before this transform"
            )
        sl = np.asarray(
            slicers.SliceByTime(time_window=self.dt).get_slice_metadata(ev, None), np.int64
        ).reshape(-1, 2)
        out = np.empty((sl.shape[0], c, h, w), dtype=np.float64)
        bad = time_surfaces(
            ev,
            sl[:, 0].copy(),
            sl[:, 1].copy(),
            float(self.dt),
            float(self.tau),
            float(ev["t"][0]),
            out,
        )
        _raise_outside(ev, bad, size)
        return out


@dataclass(frozen=True)
class Denoise(_Checked):
    """Drop events with no 4-neighbour event within ``filter_time`` before them (Tonic's rule)."""

    filter_time: float

    _positive = ("filter_time",)

    def __call__(self, events: np.ndarray) -> np.ndarray:
        ev = as_event_array(events)
        if ev.shape[0] == 0:
            return events
        if int(ev["x"].min()) < 0 or int(ev["y"].min()) < 0:
            raise InputValueError("Denoise needs x, y >= 0; got negative coordinates")
        w, h = int(ev["x"].max()) + 1, int(ev["y"].max()) + 1
        return _rewrap(events, ev[denoise_mask(ev, float(self.filter_time), w, h)])


@dataclass(frozen=True)
class Downsample:
    """Scale time by ``time_factor`` and x, y by ``spatial_factor`` (truncating, as Tonic does).

    ``sensor_size`` of an :class:`EventArray` input is scaled too (rounded up).
    """

    time_factor: float = 1.0
    spatial_factor: float | tuple[float, float] = 1.0

    def __call__(self, events: np.ndarray) -> np.ndarray:
        ev = as_event_array(events).copy()
        fx, fy = (
            self.spatial_factor
            if isinstance(self.spatial_factor, tuple)
            else (self.spatial_factor,) * 2
        )
        # Same float products and truncation as Tonic (time_skew, then x * f cast back).
        ev["t"] = ev["t"] * self.time_factor
        ev["x"] = ev["x"] * fx
        ev["y"] = ev["y"] * fy
        size = getattr(events, "sensor_size", None)
        if size is not None:
            size = (int(np.ceil(size[0] * fx)), int(np.ceil(size[1] * fy)), size[2])
        return _rewrap(events, ev, size)


@dataclass(frozen=True)
class Crop(_Checked):
    """Keep events inside the box ``[x0, x0 + width) x [y0, y0 + height)``, shifted to 0."""

    x0: int
    y0: int
    width: int
    height: int

    _positive = ("width", "height")

    def __call__(self, events: np.ndarray) -> np.ndarray:
        ev = as_event_array(events)
        x, y = ev["x"], ev["y"]
        keep = (x >= self.x0) & (x < self.x0 + self.width) & (y >= self.y0)
        keep &= y < self.y0 + self.height
        out = ev[keep]
        out["x"] -= self.x0
        out["y"] -= self.y0
        old = getattr(events, "sensor_size", None)
        size = None if old is None else (self.width, self.height, old[2])
        return _rewrap(events, out, size)


@dataclass(frozen=True)
class TimeWindow:
    """Keep events with ``start <= t < end`` (µs); ``relative=True``: from the first event."""

    start: int = 0
    end: int | None = None
    relative: bool = False

    def __call__(self, events: np.ndarray) -> np.ndarray:
        ev = as_event_array(events)
        t = ev["t"]
        off = int(t.min()) if (self.relative and t.shape[0]) else 0
        keep = t >= self.start + off
        if self.end is not None:
            keep &= t < self.end + off
        return _rewrap(events, ev[keep])


__all__ = [
    "ToSpikeTensor",
    "ToFrame",
    "ToVoxelGrid",
    "ToTimeSurface",
    "Denoise",
    "Downsample",
    "Crop",
    "TimeWindow",
]  # spikes_reference, ToSpikeTensor's plain-NumPy oracle, is imported from here by name
