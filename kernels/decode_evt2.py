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

from ._decode_common import OTHER, count_bad, put_event, unwrap

CD_OFF, CD_ON, TIME_HIGH, EXT_TRIGGER, OTHERS, CONTINUED = 0x0, 0x1, 0x8, 0xA, 0xE, 0xF


@numba.njit(cache=True, nogil=True)
def decode_evt2(words, word0, state, width, height, out, stat):
    """Decode uint32 ``words`` into ``out``; ``state`` = (time_high, wraps, previous time_high)."""
    th, wraps, before = state[0], state[1], state[2]
    k = 0
    for i in range(words.shape[0]):
        w = np.int64(words[i])
        typ = w >> 28
        if typ <= CD_ON:
            t = (wraps << 34) | (th << 6) | ((w >> 22) & 0x3F)
            k = put_event(out, k, t, (w >> 11) & 0x7FF, w & 0x7FF, typ, width, height,
                          word0 + i, stat)
        elif typ == TIME_HIGH:
            new = w & 0xFFFFFFF
            if new != th:  # TIME_HIGH repeats (every 64 µs): only a change is a step
                wraps, before, th = unwrap(before, th, new, wraps, 28)
        elif typ == EXT_TRIGGER or typ == OTHERS or typ == CONTINUED:
            stat[OTHER] += 1
        else:
            count_bad(stat, word0 + i)
    state[0], state[1], state[2] = th, wraps, before
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
