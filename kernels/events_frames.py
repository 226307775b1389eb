"""Numba kernels that scatter events into dense count / spike tensors (torch-free).

Every kernel takes a 1-D structured event array (any dtype with fields t, x, y, p; Numba
specialises per dtype, so Tonic's arrays go in without a copy) and writes into a
preallocated output. Coordinates are checked inside the loop: a kernel returns the index
of the first event outside the sensor (or -1), and the caller turns that into an error;
nothing is written out of bounds and nothing is dropped without the caller knowing.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _channel(p, n_pol):
    # Two channels: OFF (p <= 0) -> 0, ON (p > 0) -> 1; one channel: everything -> 0.
    if n_pol == 1:
        return 0
    return 1 if p > 0 else 0


@numba.njit(cache=True, nogil=True)
def bin_spikes(ev, t0, num, den, out, binary):
    """Scatter events into ``out[T, C, H, W]`` (float32), time bin = (t - t0) * num // den.

    ``num/den`` is ``1/dt`` for fixed-width bins, ``n_bins/span`` for a fixed count.
    Events whose bin falls outside ``[0, T)`` are not written and counted.

    Returns
    -------
    (first_bad, n_outside)
        Index of the first event with x/y outside the sensor (-1 if none), and the number
        of events outside the time range.
    """
    n_t, n_c, h, w = out.shape
    outside = 0
    for i in range(ev.shape[0]):
        e = ev[i]
        x = np.int64(e.x)
        y = np.int64(e.y)
        if x < 0 or x >= w or y < 0 or y >= h:
            return i, outside
        b = (np.int64(e.t) - t0) * num // den
        if b < 0 or b >= n_t:
            outside += 1
            continue
        c = _channel(e.p, n_c)
        if binary:
            out[b, c, y, x] = 1.0
        else:
            out[b, c, y, x] += 1.0
    return -1, outside


@numba.njit(cache=True, nogil=True)
def frames_from_slices(ev, starts, ends, out):
    """Count events of slice ``k`` (``ev[starts[k]:ends[k]]``) into ``out[k, P, H, W]``.

    Slices may overlap (Tonic's ``overlap``); returns the index of the first event outside
    the sensor, or -1.
    """
    n_s, n_c, h, w = out.shape
    n = ev.shape[0]
    for k in range(n_s):
        # clamped: a slice past the last event must not read beyond the array
        for i in range(max(starts[k], 0), min(ends[k], n)):
            e = ev[i]
            x = np.int64(e.x)
            y = np.int64(e.y)
            if x < 0 or x >= w or y < 0 or y >= h:
                return i
            out[k, _channel(e.p, n_c), y, x] += 1
    return -1
