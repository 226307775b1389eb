"""Spike raster: one dot per spike (spike tensor) or per event (event array)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import axes, time_by_unit


def _event_raster(ax, events, max_points: int | None) -> int:
    from ..data.events import as_event_array, sensor_size_of

    ev = as_event_array(events)
    width = sensor_size_of(events, None)[0]
    if max_points is not None and ev.shape[0] > max_points:
        # an even stride keeps the time structure; random picks would blur it
        ev = ev[:: -(-ev.shape[0] // max_points)]
    t_ms = (ev["t"].astype(np.float64) - (ev["t"][0] if ev.shape[0] else 0)) / 1000.0
    pixel = ev["y"].astype(np.int64) * width + ev["x"].astype(np.int64)
    on = ev["p"].astype(np.int64) > 0
    ax.scatter(t_ms[on], pixel[on], s=2, c="tab:red", marker=".", linewidths=0, label="ON")
    ax.scatter(t_ms[~on], pixel[~on], s=2, c="tab:blue", marker=".", linewidths=0, label="OFF")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("pixel (y * width + x)")
    ax.legend(loc="upper right", fontsize=7, markerscale=8)
    return int(ev.shape[0])


def raster(
    spikes: Any,
    ax=None,
    sample: int = 0,
    title: str | None = None,
    max_points: int | None = 200_000,
    color: str = "black",
):
    """Spike raster of a spike tensor, or an event raster of a DVS recording.

    Parameters
    ----------
    spikes
        Spike tensor ``[T, N]`` or ``[T, B, ...]`` (torch or NumPy; trailing dimensions
        are flattened into neurons, batch element ``sample`` is drawn), or an event
        array with fields t (µs), x, y, p (drawn with time in ms from the first event on
        x, pixel index ``y * W + x`` on y,
        ON red / OFF blue).
    ax
        Axes to draw on; a new figure when ``None``.
    sample
        Batch element drawn from a ``[T, B, ...]`` tensor.
    title
        Axes title (default: ``"Spike raster"`` or ``"Event raster"``).
    max_points
        Events drawn at most (an even subsample of longer recordings); spike tensors are
        always drawn in full.
    color
        Dot colour for spike tensors.

    Returns
    -------
    matplotlib.axes.Axes
        The axes; one scatter point per non-zero entry (spike tensor) or per event drawn.
    """
    _, ax = axes(ax, (8, 4))
    names = getattr(getattr(spikes, "dtype", None), "names", None)
    if names:
        _event_raster(ax, spikes, max_points)
        ax.set_title(title or "Event raster")
        return ax
    s = time_by_unit(spikes, "spikes", sample)
    t, n = np.nonzero(s)
    ax.scatter(t, n, s=4, c=color, marker="|", linewidths=0.8)
    ax.set_xlim(-0.5, s.shape[0] - 0.5)
    ax.set_ylim(-0.5, s.shape[1] - 0.5)
    ax.set_xlabel("time step")
    ax.set_ylabel("neuron")
    ax.set_title(title or "Spike raster")
    return ax
