"""N-MNIST / N-Caltech101 40-bit events (Orchard et al. 2015): decode and encode kernels.

Record (5 bytes): b0 = x, b1 = y, b2 bit 7 = polarity, t = (b2 & 0x7F) << 16 | b3 << 8 | b4.
A record with y = 240 is a time-overflow marker: it is not an event, and every later
timestamp gets 2**13 added, exactly as Tonic's ``read_mnist_file`` does.
"""

from __future__ import annotations

import numba
import numpy as np

from ._decode_common import OTHER, put_event

OVERFLOW_Y = 240
OVERFLOW_STEP = 1 << 13
T_MAX = (1 << 23) - 1


@numba.njit(cache=True, nogil=True)
def decode_nmnist(buf, word0, t_offset, width, height, out, stat):
    """Decode ``len(buf) // 5`` records into ``out``; return ``(n_events, t_offset)``.

    ``word0``: index of the first record in the file (for error positions);
    ``t_offset``: overflow offset carried from earlier blocks.
    """
    k = 0
    for i in range(buf.shape[0] // 5):
        j = 5 * i
        x, y, b2 = np.int64(buf[j]), np.int64(buf[j + 1]), np.int64(buf[j + 2])
        if y == OVERFLOW_Y:
            t_offset += OVERFLOW_STEP
            stat[OTHER] += 1
            continue
        t = (((b2 & 0x7F) << 16) | (np.int64(buf[j + 3]) << 8) | np.int64(buf[j + 4])) + t_offset
        k = put_event(out, k, t, x, y, b2 >> 7, width, height, word0 + i, stat)
    return k, t_offset


@numba.njit(cache=True, nogil=True)
def count_nmnist_markers(t):
    """Number of overflow markers the encoder will insert (t sorted, >= 0)."""
    m = 0
    for i in range(t.shape[0]):
        need = (t[i] - T_MAX + OVERFLOW_STEP - 1) // OVERFLOW_STEP
        if need > m:
            m = need
    return m


@numba.njit(cache=True, nogil=True)
def encode_nmnist(ev, buf):
    """Encode events (t sorted, >= 0; x, y in 0..255, y != 240) into ``buf``; return bytes used.

    Overflow markers (x = 0, y = 240, zero time) are inserted whenever t no longer fits
    23 bits after the markers so far.
    """
    m = 0
    j = 0
    for i in range(ev.shape[0]):
        e = ev[i]
        t = np.int64(e.t)
        need = (t - T_MAX + OVERFLOW_STEP - 1) // OVERFLOW_STEP
        while m < need:
            buf[j] = 0
            buf[j + 1] = OVERFLOW_Y
            buf[j + 2] = 0
            buf[j + 3] = 0
            buf[j + 4] = 0
            j += 5
            m += 1
        r = t - m * OVERFLOW_STEP
        buf[j] = np.uint8(e.x)
        buf[j + 1] = np.uint8(e.y)
        buf[j + 2] = np.uint8(((r >> 16) & 0x7F) | (0x80 if e.p > 0 else 0))
        buf[j + 3] = np.uint8((r >> 8) & 0xFF)
        buf[j + 4] = np.uint8(r & 0xFF)
        j += 5
    return j
