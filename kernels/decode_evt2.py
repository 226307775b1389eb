"""Prophesee EVT 2.0: decode and encode kernels.

32-bit little-endian words, type = w >> 28:
0x0 CD_OFF / 0x1 CD_ON: t[5:0] = bits 27-22, x = bits 21-11, y = bits 10-0;
0x8 EVT_TIME_HIGH: bits 27-0 = t[33:6]; 0xA EXT_TRIGGER, 0xE OTHERS, 0xF CONTINUED: no
polarity event (counted in ``stat[OTHER]``); any other type is a corrupt word.
The 34-bit time wraps (~4.8 h); a TIME_HIGH that falls from the top quarter of its
28-bit range to the bottom quarter counts one wrap (``is_wrap``); any other fall is left as
time going backwards, which the reader reports as corruption.

An event before the first TIME_HIGH has no time (its upper 28 bits are unknown, not 0):
it is counted in ``stat[EARLY]`` and not written. Recordings, and files cut by
Prophesee's tools, start with a TIME_HIGH word.
"""

from __future__ import annotations

import numba
import numpy as np

from ._decode_common import OTHER, count_bad, count_early, put_event, unwrap

CD_OFF, CD_ON, TIME_HIGH, EXT_TRIGGER, OTHERS, CONTINUED = 0x0, 0x1, 0x8, 0xA, 0xE, 0xF


def new_state() -> np.ndarray:
    """Decoder state: the wrap state of ``new_wrap_state()`` plus "a TIME_HIGH was seen"."""
    return np.array([0, 0, -1, 0], dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def _decode_timed(words, word0, state, width, height, out, stat):
    """:func:`decode_evt2` from a TIME_HIGH on (the time of every event is known)."""
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
def decode_evt2(words, word0, state, width, height, out, stat):
    """Decode uint32 ``words`` into ``out``; return the number of events written.

    ``state`` = (time_high, wraps, previous time_high, TIME_HIGH seen), from
    :func:`new_state`, carried across blocks.
    """
    n = words.shape[0]
    start = 0
    # Words before the first TIME_HIGH are handled here, so the event loop carries no
    # "is the time known" test (a test there cost 5-15 %).
    while state[3] == 0 and start < n:
        typ = np.int64(words[start]) >> 28
        if typ == TIME_HIGH:
            state[3] = 1  # _decode_timed takes this word
        elif typ <= CD_ON:
            count_early(stat, word0 + start)
            start += 1
        else:
            if typ == EXT_TRIGGER or typ == OTHERS or typ == CONTINUED:
                stat[OTHER] += 1
            else:
                count_bad(stat, word0 + start)
            start += 1
    if start == n:
        return 0
    return _decode_timed(words[start:], word0 + start, state, width, height, out, stat)


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
