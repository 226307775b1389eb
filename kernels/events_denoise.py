"""Numba kernel for the nearest-neighbour background-activity filter (Tonic's Denoise)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def denoise_mask(ev, filter_time, width, height):
    """Keep an event iff a 4-neighbour fired within ``filter_time`` before it.

    Same rule and the same start state as Tonic's ``denoise_numpy`` (every pixel's memory
    starts at ``filter_time``, so a neighbour "fired" at t = 0); the grid is
    ``width x height`` = max coordinate + 1, as there.
    """
    memory = np.full((width, height), np.float64(filter_time))
    keep = np.zeros(ev.shape[0], dtype=np.bool_)
    for i in range(ev.shape[0]):
        e = ev[i]
        x = np.int64(e.x)
        y = np.int64(e.y)
        t = np.float64(e.t)
        memory[x, y] = t + filter_time
        if (
            (x > 0 and memory[x - 1, y] > t)
            or (x < width - 1 and memory[x + 1, y] > t)
            or (y > 0 and memory[x, y - 1] > t)
            or (y < height - 1 and memory[x, y + 1] > t)
        ):
            keep[i] = True
    return keep
