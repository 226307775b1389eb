"""AEDAT 3.1 (libcaer) polarity packets: decode and encode kernels.

A polarity event (packet type 1, event size 8) is little-endian uint32 data + int32 t:
bit 0 valid, bit 1 polarity, y = bits 2-16, x = bits 17-31; the full timestamp is
``ts_overflow << 31 | t``. Invalid events (bit 0 clear) are counted in ``stat[OTHER]``;
libcaer timestamps are non-negative int32, so a t word with bit 31 set is a corrupt event
(``stat[BAD]``), never masked into another time.
"""

from __future__ import annotations

import numba
import numpy as np

from ._decode_common import OTHER, count_bad, put_event


@numba.njit(cache=True, nogil=True)
def decode_aedat3_polarity(words, n_events, ts_overflow, word0, width, height, out, stat):
    """Decode ``n_events`` (data, t) uint32 pairs; return the number written to ``out``."""
    base = np.int64(ts_overflow) << 31
    k = 0
    for i in range(n_events):
        d = np.int64(words[2 * i])
        tw = np.int64(words[2 * i + 1])
        if (d & 1) == 0:
            stat[OTHER] += 1
        elif tw >> 31:
            count_bad(stat, word0 + i)
        else:
            x, y, p = (d >> 17) & 0x7FFF, (d >> 2) & 0x7FFF, (d >> 1) & 1
            k = put_event(out, k, base | tw, x, y, p, width, height, word0 + i, stat)
    return k


@numba.njit(cache=True, nogil=True)
def encode_aedat3_polarity(ev, words):
    """Encode events as valid polarity events (t modulo 2**31) into uint32 pairs."""
    for i in range(ev.shape[0]):
        e = ev[i]
        p = np.int64(1 if e.p > 0 else 0)
        words[2 * i] = np.uint32((np.int64(e.x) << 17) | (np.int64(e.y) << 2) | (p << 1) | 1)
        words[2 * i + 1] = np.uint32(np.int64(e.t) & 0x7FFFFFFF)
