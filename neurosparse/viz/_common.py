"""Helpers shared by the plots: array conversion, axes creation, sample selection."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import DTypeError, ShapeError


def to_numpy(x: Any, name: str) -> np.ndarray:
    """A torch tensor, NumPy array or nested list as a float64 NumPy array."""
    if hasattr(x, "detach"):  # torch tensor without importing torch here
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DTypeError(
            f"{name} must be a torch tensor or a numeric NumPy array, got {type(x).__name__}"
        ) from exc
    return arr


def time_by_unit(x: Any, name: str, sample: int) -> np.ndarray:
    """``[T, N]`` from ``[T, N]`` or ``[T, B, ...]`` (batch element ``sample``, rest flattened)."""
    arr = to_numpy(x, name)
    if arr.ndim == 2:
        return arr
    if arr.ndim < 2:
        raise ShapeError(
            f"{name} must be [T, N] or [T, B, ...] (time first), got shape {arr.shape}"
        )
    if not -arr.shape[1] <= sample < arr.shape[1]:
        raise ShapeError(
            f"sample={sample} is out of range for {name} with batch size {arr.shape[1]} "
            f"(shape {arr.shape}, [T, B, ...])"
        )
    return arr[:, sample].reshape(arr.shape[0], -1)


def axes(ax, figsize: tuple[float, float]):
    """``(figure, axes)``: the given axes and its figure, or a new pyplot figure.

    pyplot picks a non-interactive backend (Agg) by itself when there is no display, so
    the plots run headless without forcing a backend on notebook users.
    """
    if ax is not None:
        return ax.figure, ax
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return fig, ax
