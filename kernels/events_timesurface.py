"""Numba kernel for global time surfaces (Lagorce et al. 2016, as Tonic computes them)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def time_surfaces(ev, starts, ends, dt, tau, start_t, out):
    """Fill ``out[S, P, H, W]`` with exp(-(end_k - last_t) / tau) at the end of each slice.

    ``end_k = (k + 1) * dt + start_t``; ``last_t`` is the latest event time of that pixel
    and polarity up to slice ``k`` (-inf before its first event, giving 0). Polarity is
    used as the channel index, as Tonic does. Returns first bad index or -1.
    """
    n_s, n_c, h, w = out.shape
    memory = np.full((n_c, h, w), -np.inf)
    for k in range(n_s):
        for i in range(starts[k], ends[k]):
            e = ev[i]
            x = np.int64(e.x)
            y = np.int64(e.y)
            c = np.int64(e.p)
            if x < 0 or x >= w or y < 0 or y >= h or c < 0 or c >= n_c:
                return i
            memory[c, y, x] = np.float64(e.t)
        t_end = (k + 1) * dt + start_t
        for c in range(n_c):
            for y in range(h):
                for x in range(w):
                    out[k, c, y, x] = np.exp(-(t_end - memory[c, y, x]) / tau)
    return -1
