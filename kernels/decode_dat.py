"""Prophesee DAT (v2) CD events: decode kernel.

Each event is 8 bytes little-endian: uint32 t (µs, wraps at 2**32), uint32 w with
x = w & 0x3FFF, y = (w >> 14) & 0x3FFF, p = (w >> 28) & 1. A wrap is a fall from the top
to the bottom quarter of the 32-bit range (``is_wrap``); other drops stay backwards.
"""

from __future__ import annotations

import numba
import numpy as np

from ._decode_common import FIRST_OUT, OUTSIDE, is_wrap


@numba.njit(cache=True, nogil=True)
def decode_dat(words, word0, state, width, height, out, stat):
    """Decode uint32 pairs ``words[2i], words[2i+1]``; ``state`` = ``new_wrap_state()``."""
    n = words.shape[0] // 2
    k = 0
    last = state[0]
    wraps = state[1]
    before = state[2]
    check = width > 0
    for i in range(n):
        ts = np.int64(words[2 * i])
        w = np.int64(words[2 * i + 1])
        if ts < last and is_wrap(before, last, ts, 32):
            wraps += 1
        before = last
        last = ts
        x = w & 0x3FFF
        y = (w >> 14) & 0x3FFF
        if check and (x >= width or y >= height):
            if stat[FIRST_OUT] < 0:
                stat[FIRST_OUT] = word0 + i
            stat[OUTSIDE] += 1
            continue
        e = out[k]
        e.t = ts + (wraps << 32)
        e.x = x
        e.y = y
        e.p = (w >> 28) & 1
        k += 1
    state[0] = last
    state[1] = wraps
    state[2] = before
    return k
