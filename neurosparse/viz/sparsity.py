"""Sparsity over time: fraction of zero entries per time step, one line per layer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import DTypeError, ShapeError
from ._common import axes, to_numpy


def step_sparsity(x: Any, name: str = "activity") -> np.ndarray:
    """Fraction of zeros per time step of a ``[T, ...]`` tensor (all other dims pooled)."""
    arr = to_numpy(x, name)
    if arr.ndim < 2:
        raise ShapeError(f"{name} must be time first, [T, ...] with rank >= 2, got {arr.shape}")
    flat = arr.reshape(arr.shape[0], -1)
    return 1.0 - np.count_nonzero(flat, axis=1) / flat.shape[1]


def _series(activity: Any) -> dict[str, np.ndarray]:
    if hasattr(activity, "sparsity_over_time"):  # an energy Report
        sp = activity.sparsity_over_time()
        return {f"{k} sparsity": np.array([np.nan if v is None else v for v in vals])
                for k, vals in sp.items() if any(v is not None for v in vals)}
    if isinstance(activity, Mapping):
        return {str(k): step_sparsity(v, f"activity[{k!r}]") for k, v in activity.items()}
    if isinstance(activity, Sequence) and not isinstance(activity, str):
        return {f"layer {i}": step_sparsity(v, f"activity[{i}]") for i, v in enumerate(activity)}
    if hasattr(activity, "shape"):
        return {"activity": step_sparsity(activity)}
    raise DTypeError(
        "activity must be a dict {name: [T, ...] tensor}, a list of [T, ...] tensors, one "
        f"tensor, or an energy Report; got {type(activity).__name__}"
    )


def sparsity_over_time(activity: Any, ax=None, title: str | None = None,
                       label: str | None = None):
    """Plot per-step sparsity (fraction of zeros) of each layer.

    Parameters
    ----------
    activity
        ``{layer name: tensor [T, ...]}``, a list of ``[T, ...]`` tensors (named
        ``layer 0``, ...), one tensor, or an :class:`~neurosparse.energy.Report` (its
        activation and input sparsity per step). :func:`~neurosparse.viz.record_spikes`
        collects the spikes of every neuron layer of a model in this form.
    ax, title
        Axes to draw on (new figure when ``None``); axes title (default
        ``"Sparsity over time"``).
    label
        Prefix of every line's legend label (``"<label>: <layer>"``), to tell apart
        several models drawn on one axes.

    Returns
    -------
    matplotlib.axes.Axes
        One line per layer, labelled with its name, y in [0, 1].
    """
    _, ax = axes(ax, (7, 3.5))
    for name, ys in _series(activity).items():
        name = name if label is None else f"{label}: {name}"
        ax.plot(np.arange(len(ys)), ys, marker="o", ms=3, lw=1.2, label=name)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("time step")
    ax.set_ylabel("sparsity (fraction of zeros)")
    ax.set_title(title or "Sparsity over time")
    ax.legend(fontsize=7)
    return ax
