"""Prophesee EVT 2.0: decode and encode kernels.

32-bit little-endian words, type = w >> 28:
0x0 CD_OFF / 0x1 CD_ON: t[5:0] = bits 27-22, x = bits 21-11, y = bits 10-0;
0x8 EVT_TIME_HIGH: bits 27-0 = t[33:6]; 0xA EXT_TRIGGER, 0xE OTHERS, 0xF CONTINUED: no
polarity event (counted in ``stat[OTHER]``); any other type is a corrupt word.
The 34-bit time wraps (~4.8 h); a TIME_HIGH that falls from the top quarter of its
28-bit range to the bottom quarter counts one wrap (``is_wrap``); any other fall is left as
time going backwards, which the reader reports as corruption.
"""

from __future__ import annotations

import numba
import numpy as np

from ._decode_common import BAD, FIRST_BAD, FIRST_OUT, OTHER, OUTSIDE, is_wrap

CD_OFF, CD_ON, TIME_HIGH, EXT_TRIGGER, OTHERS, CONTINUED = 0x0, 0x1, 0x8, 0xA, 0xE, 0xF


@numba.njit(cache=True, nogil=True)
def decode_evt2(words, word0, state, width, height, out, stat):
    """Decode uint32 ``words`` into ``out``; ``state`` = (time_high, wraps, previous time_high)."""
    k = 0
    th = state[0]
    wraps = state[1]
    before = state[2]
    check = width > 0
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        typ = w >> 28
        if typ <= CD_ON:
            x = (w >> 11) & 0x7FF
            y = w & 0x7FF
            if check and (x >= width or y >= height):
                if stat[FIRST_OUT] < 0:
                    stat[FIRST_OUT] = word0 + i
                stat[OUTSIDE] += 1
                continue
            e = out[k]
            e.t = (wraps << 34) | (th << 6) | ((w >> 22) & 0x3F)
            e.x = x
            e.y = y
            e.p = typ
            k += 1
        elif typ == TIME_HIGH:
            new = w & 0xFFFFFFF
            if new < th and is_wrap(before, th, new, 28):
                wraps += 1
            if new != th:
                before = th
            th = new
        elif typ == EXT_TRIGGER or typ == OTHERS or typ == CONTINUED:
            stat[OTHER] += 1
        else:
            if stat[FIRST_BAD] < 0:
                stat[FIRST_BAD] = word0 + i
            stat[BAD] += 1
    state[0] = th
    state[1] = wraps
    state[2] = before
    return k


@numba.njit(cache=True, nogil=True)
def encode_evt2(ev, words):
    """Encode events (t sorted, >= 0) into ``words``; return the number of words written.

    A TIME_HIGH word precedes the first event and every change of t >> 6; ``words`` needs
    room for ``2 * len(ev)`` words.
    """
    j = 0
    last = np.int64(-1)
    for i in range(ev.shape[0]):
        e = ev[i]
        t = np.int64(e.t)
        high = (t >> 6) & 0xFFFFFFF
        if (t >> 6) != last:
            words[j] = np.uint32((TIME_HIGH << 28) | high)
            j += 1
            last = t >> 6
        typ = CD_ON if e.p > 0 else CD_OFF
        words[j] = np.uint32(
            (typ << 28)
            | ((t & 0x3F) << 22)
            | ((np.int64(e.x) & 0x7FF) << 11)
            | (np.int64(e.y) & 0x7FF)
        )
        j += 1
    return j
