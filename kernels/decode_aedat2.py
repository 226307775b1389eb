"""AEDAT 2.0 (jAER) event words: decode and encode kernels.

Each event is 8 bytes big-endian: uint32 address, uint32 timestamp (µs, wraps at 2**32).
Address layouts (raw jAER fields; no axis flips):

- ``LAYOUT_DVS128``: p = a & 1, x = (a >> 1) & 0x7F, y = (a >> 8) & 0x7F. jAER marks
  special (sync) events with bit 15 (``SYNC_EVENT_BITMASK``) or bit 31: counted in
  ``stat[OTHER]``. Bits 16-30 are in no DVS128 address: such a word is corrupt
  (``stat[BAD]``), not an event whose high bits could be masked away (8 bytes of
  garbage would otherwise become one more event).
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

from ._decode_common import OTHER, count_bad, put_event, unwrap

LAYOUT_DVS128 = 0
LAYOUT_DAVIS = 1
#: DVS128 address bits jAER never sets (corrupt), and its special-event marks (15, 31)
DVS128_UNUSED = 0x7FFF0000
DVS128_SPECIAL = 0x80008000
DVS128_NOT_EVENT = DVS128_UNUSED | DVS128_SPECIAL


@numba.njit(cache=True, nogil=True, inline="always")
def _be(v):
    """Byte-swap a big-endian uint32 read as ``<u4`` (Numba takes native order only).

    LLVM compiles the shifts into one ``bswap`` instruction.
    """
    v = np.int64(v)
    return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | (v >> 24)


@numba.njit(cache=True, nogil=True)
def decode_aedat2(words, word0, layout, state, width, height, out, stat):
    """Decode (address, timestamp) pairs of big-endian uint32 ``words`` (viewed as ``<u4``).

    Returns the number of events. ``state``: ``new_wrap_state()`` = (last raw timestamp,
    wraps, the one before), carried across blocks.
    """
    last, wraps, before = state[0], state[1], state[2]
    k = 0
    # one loop per layout: the layout is tested once per call, not once per word
    if layout == LAYOUT_DVS128:
        for i in range(words.shape[0] // 2):
            a = _be(words[2 * i])
            ts = _be(words[2 * i + 1])
            if a & DVS128_NOT_EVENT:  # rare: one test for both kinds in the hot loop
                if a & DVS128_UNUSED:
                    # its timestamp is as suspect as its address: kept out of the wrap
                    # state, where a damaged low one after two high ones would be a wrap
                    count_bad(stat, word0 + i)
                    continue
                wraps, before, last = unwrap(before, last, ts, wraps, 32)
                stat[OTHER] += 1
                continue
            wraps, before, last = unwrap(before, last, ts, wraps, 32)
            x, y, p = (a >> 1) & 0x7F, (a >> 8) & 0x7F, a & 1
            k = put_event(out, k, ts + (wraps << 32), x, y, p, width, height, word0 + i, stat)
    else:
        for i in range(words.shape[0] // 2):
            a = _be(words[2 * i])
            ts = _be(words[2 * i + 1])
            wraps, before, last = unwrap(before, last, ts, wraps, 32)
            if (a >> 31) & 1 or (a >> 10) & 1:
                stat[OTHER] += 1
                continue
            x, y, p = (a >> 12) & 0x3FF, (a >> 22) & 0x1FF, (a >> 11) & 1
            k = put_event(out, k, ts + (wraps << 32), x, y, p, width, height, word0 + i, stat)
    state[0], state[1], state[2] = last, wraps, before
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
