"""Energy per layer: grouped bars, one group per layer, one bar per hardware profile.

The full report figure (these bars beside the sparsity over time, saved to a file) is
:meth:`neurosparse.energy.Report.plot`; this function draws the bars on any axes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ParameterError
from ._common import axes


def energy_per_layer(report, ax=None, hardware: Sequence[str] | None = None,
                     log: bool = True, title: str | None = None):
    """Dynamic energy per inference of each layer on each hardware of a report.

    Parameters
    ----------
    report
        An :class:`~neurosparse.energy.Report` (``Meter.report(...)`` or
        ``Report.from_json(path)``).
    ax
        Axes to draw on; a new figure when ``None``.
    hardware
        Names of the report's hardware results to draw (default: all).
    log
        Logarithmic energy axis (layers often differ by orders of magnitude). A layer with
        zero energy has no bar on a log axis.
    title
        Axes title (default ``"Energy per layer"``).

    Returns
    -------
    matplotlib.axes.Axes
        One bar container per hardware (legend label = hardware name), one bar per layer.
    """
    results = list(report.hardware)
    if hardware is not None:
        known = [r.name for r in results]
        missing = [h for h in hardware if h not in known]
        if missing:
            raise ParameterError(f"hardware {missing} not in this report; it has {known}")
        results = [r for r in results if r.name in hardware]
    _, ax = axes(ax, (max(6.0, 0.9 * len(report.layers) + 3), 4))
    layers = [layer.name for layer in report.layers]
    width = 0.8 / max(len(results), 1)
    for i, r in enumerate(results):
        vals = np.array([r.layer_energy_j.get(name, 0.0) for name in layers], dtype=np.float64)
        if log:
            vals[vals <= 0] = np.nan
        xs = np.arange(len(layers)) + (i - (len(results) - 1) / 2) * width
        ax.bar(xs, vals, width=width, label=r.name)
    if log:
        ax.set_yscale("log")
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([f"{layer.name} {layer.type}" for layer in report.layers], rotation=45,
                       ha="right", fontsize=8)
    ax.set_xlabel("layer")
    ax.set_ylabel("dynamic energy per inference (J)")
    ax.set_title(title or "Energy per layer")
    if results:
        ax.legend(fontsize=7)
    return ax
