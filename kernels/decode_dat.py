"""Prophesee DAT (v2) CD events: decode kernel.

Each event is 8 bytes little-endian: uint32 t (µs, wraps at 2**32), uint32 w with
x = w & 0x3FFF, y = (w >> 14) & 0x3FFF, p = (w >> 28) & 1. A wrap is a fall from the top
to the bottom quarter of the 32-bit range (``is_wrap``); other drops stay backwards.
"""

from __future__ import annotations

import numba
import numpy as np

from ._decode_common import put_event, unwrap


@numba.njit(cache=True, nogil=True)
def decode_dat(words, word0, state, width, height, out, stat):
    """Decode uint32 pairs ``words[2i], words[2i+1]``; ``state`` = ``new_wrap_state()``."""
    last, wraps, before = state[0], state[1], state[2]
    k = 0
    for i in range(words.shape[0] // 2):
        ts = np.int64(words[2 * i])
        w = np.int64(words[2 * i + 1])
        wraps, before, last = unwrap(before, last, ts, wraps, 32)
        x, y, p = w & 0x3FFF, (w >> 14) & 0x3FFF, (w >> 28) & 1
        k = put_event(out, k, ts + (wraps << 32), x, y, p, width, height, word0 + i, stat)
    state[0], state[1], state[2] = last, wraps, before
    return k
