"""AEDAT 2.0 (jAER) event words: decode and encode kernels.

Each word is 8 bytes big-endian: uint32 address, uint32 timestamp (µs, wraps at 2**32).
Address layouts (raw jAER fields; no axis flips):

- ``LAYOUT_DVS128``: p = a & 1, x = (a >> 1) & 0x7F, y = (a >> 8) & 0x7F.
- ``LAYOUT_DAVIS``: a polarity event iff bit 31 = 0 and bit 10 = 0 (bit 31 marks APS/IMU
  samples, bit 10 external/special events); x = (a >> 12) & 0x3FF, y = (a >> 22) & 0x1FF,
  p = (a >> 11) & 1. Other words are counted in ``stat[OTHER]``.

The timestamp wrap is undone with a carried ``(last, wraps)`` state: a drop from the top
quarter of the 32-bit range to its bottom quarter counts as one wrap (``is_wrap``); any
other drop is left as time going backwards, which the reader reports as corruption.
"""

from __future__ import annotations

import numba
import numpy as np

from ._decode_common import FIRST_OUT, OTHER, OUTSIDE, is_wrap

LAYOUT_DVS128 = 0
LAYOUT_DAVIS = 1


@numba.njit(cache=True, nogil=True, inline="always")
def _be32(buf, j):
    return (
        (np.int64(buf[j]) << 24)
        | (np.int64(buf[j + 1]) << 16)
        | (np.int64(buf[j + 2]) << 8)
        | np.int64(buf[j + 3])
    )


@numba.njit(cache=True, nogil=True)
def decode_aedat2(buf, word0, layout, state, width, height, out, stat):
    """Decode ``len(buf) // 8`` words into ``out``; return the number of events.

    ``state``: ``new_wrap_state()`` = (last raw timestamp, wraps, the one before), carried
    across blocks.
    """
    n = buf.shape[0] // 8
    k = 0
    last = state[0]
    wraps = state[1]
    before = state[2]
    check = width > 0
    for i in range(n):
        a = _be32(buf, 8 * i)
        ts = _be32(buf, 8 * i + 4)
        if ts < last and is_wrap(before, last, ts, 32):
            wraps += 1
        before = last
        last = ts
        if layout == LAYOUT_DVS128:
            x = (a >> 1) & 0x7F
            y = (a >> 8) & 0x7F
            p = a & 1
        else:
            if (a >> 31) & 1 or (a >> 10) & 1:
                stat[OTHER] += 1
                continue
            x = (a >> 12) & 0x3FF
            y = (a >> 22) & 0x1FF
            p = (a >> 11) & 1
        if check and (x >= width or y >= height):
            if stat[FIRST_OUT] < 0:
                stat[FIRST_OUT] = word0 + i
            stat[OUTSIDE] += 1
            continue
        e = out[k]
        e.t = ts + (wraps << 32)
        e.x = x
        e.y = y
        e.p = p
        k += 1
    state[0] = last
    state[1] = wraps
    state[2] = before
    return k


@numba.njit(cache=True, nogil=True)
def encode_aedat2(ev, layout, buf):
    """Encode events into 8-byte big-endian words (t taken modulo 2**32)."""
    for i in range(ev.shape[0]):
        e = ev[i]
        x = np.int64(e.x)
        y = np.int64(e.y)
        p = np.int64(1 if e.p > 0 else 0)
        if layout == LAYOUT_DVS128:
            a = (y << 8) | (x << 1) | p
        else:
            a = (y << 22) | (x << 12) | (p << 11)
        t = np.int64(e.t) & 0xFFFFFFFF
        j = 8 * i
        for b in range(4):
            buf[j + b] = np.uint8((a >> (24 - 8 * b)) & 0xFF)
            buf[j + 4 + b] = np.uint8((t >> (24 - 8 * b)) & 0xFF)
    return 8 * ev.shape[0]
