"""Membrane traces: potential over time of a few neurons, spikes and threshold marked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import ShapeError
from ._common import axes, time_by_unit


def membrane_traces(
    v: Any,
    spikes: Any = None,
    threshold: float | None = None,
    neurons: Sequence[int] | int = 5,
    ax=None,
    sample: int = 0,
    title: str | None = None,
):
    """Plot membrane potentials over time.

    Parameters
    ----------
    v
        Membrane potential ``[T, N]`` or ``[T, B, ...]`` (see
        :func:`~neurosparse.viz.record_membrane` to collect it from a neuron).
    spikes
        Spikes of the same shape; each spike is marked with a dot on its trace.
    threshold
        Firing threshold, drawn as a dashed line.
    neurons
        Indices of the neurons to draw, or how many of the first ones (default 5).
    ax, sample, title
        Axes to draw on (new figure when ``None``), the batch element of a
        ``[T, B, ...]`` input, the axes title (default ``"Membrane potential"``).

    Returns
    -------
    matplotlib.axes.Axes
        The axes; one line per neuron drawn, labelled ``"neuron i"``.
    """
    _, ax = axes(ax, (8, 3.5))
    vv = time_by_unit(v, "v", sample)
    idx = list(range(min(int(neurons), vv.shape[1]))) if isinstance(neurons, int) else [
        int(i) for i in neurons]
    bad = [i for i in idx if not 0 <= i < vv.shape[1]]
    if bad:
        raise ShapeError(f"neurons {bad} are out of range for {vv.shape[1]} neurons in v")
    ss = None
    if spikes is not None:
        ss = time_by_unit(spikes, "spikes", sample)
        if ss.shape != vv.shape:
            raise ShapeError(
                f"spikes must have the shape of v, got {ss.shape} and {vv.shape} ([T, N] after "
                "selecting the sample)"
            )
    steps = np.arange(vv.shape[0])
    for i in idx:
        (line,) = ax.plot(steps, vv[:, i], lw=1.2, label=f"neuron {i}")
        if ss is not None:
            fired = np.nonzero(ss[:, i])[0]
            ax.plot(fired, vv[fired, i], "o", ms=4, color=line.get_color())
    if threshold is not None:
        ax.axhline(float(threshold), color="grey", ls="--", lw=1, label="threshold")
    ax.set_xlabel("time step")
    ax.set_ylabel("membrane potential")
    ax.set_title(title or "Membrane potential")
    ax.legend(fontsize=7, loc="upper right")
    return ax
