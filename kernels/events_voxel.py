"""Numba kernel for the event voxel grid (Zhu et al. 2019), torch-free.

Same arithmetic as Tonic's ``to_voxel_grid_numpy`` (bilinear in time over
``n_bins * (t - t_first) / (t_last - t_first)``; polarity 0 counts as -1), without its
``np.add.at`` passes and without writing -1 into the caller's polarity column. ``t_first``
and ``t_last`` are the earliest and latest times (Tonic's first and last events, for
events in time order).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def voxel_grid(ev, out):
    """Accumulate ``ev`` into ``out[n_bins, H, W]`` (float64); return first bad index or -1."""
    n_b, h, w = out.shape
    n = ev.shape[0]
    if n == 0:
        return -1
    # the first and last *times*, not the first and last events: on time-ordered input
    # the same (Tonic's arithmetic), and events out of order (AEDAT 3.1 / HDF5 are not
    # checked for order) stay in bins [0, n_bins] instead of indexing before the array
    t_first = np.float64(ev[0].t)
    t_last = t_first
    for i in range(1, n):
        t = np.float64(ev[i].t)
        if t < t_first:
            t_first = t
        elif t > t_last:
            t_last = t
    span = t_last - t_first
    if span <= 0.0:  # one timestamp: Tonic divides by zero here; put everything in bin 0
        span = 1.0
    for i in range(n):
        e = ev[i]
        x = np.int64(e.x)
        y = np.int64(e.y)
        if x < 0 or x >= w or y < 0 or y >= h:
            return i
        ts = n_b * (np.float64(e.t) - t_first) / span
        ti = np.int64(ts)
        dts = ts - ti
        pol = np.float64(e.p)
        if pol == 0.0:
            pol = -1.0
        if ti < n_b:
            out[ti, y, x] += pol * (1.0 - dts)
        if ti + 1 < n_b:
            out[ti + 1, y, x] += pol * dts
    return -1
