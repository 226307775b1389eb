"""Prophesee EVT 3.0: decode and encode kernels.

16-bit little-endian words, type = w >> 12, decoded with carried state (y, base x,
polarity, time): 0x0 ADDR_Y (y = bits 10-0), 0x2 ADDR_X (one event, p = bit 11,
x = bits 10-0), 0x3 VECT_BASE_X (p = bit 11, base x = bits 10-0), 0x4 VECT_12 /
0x5 VECT_8 (bit i set: event at base x + i; then base x += 12 / 8), 0x6 TIME_LOW
(t[11:0]), 0x8 TIME_HIGH (t[23:12]), 0x7 / 0xF CONTINUED, 0xA EXT_TRIGGER, 0xE OTHERS
(no event: ``stat[OTHER]``); types 0x1, 0x9, 0xB, 0xC, 0xD are corrupt words.

t = wraps * 2**24 + TIME_HIGH * 2**12 + TIME_LOW (Prophesee's spec; the same as the
``evt3`` package). The wrap counter advances only when TIME_HIGH falls from near its
top to near 0 (a drop of at least ``WRAP_DROP`` = 0xFFF - 10 steps, the loop threshold of
Prophesee's OpenEB decoder, which ``evt3`` follows too); a smaller backward TIME_HIGH
step, like TIME_LOW stepping back a few µs, is sensor jitter, not a wrap. TIME_LOW jitter
(<= 11 µs) can cross at most one TIME_HIGH boundary, so a TIME_HIGH falling by more than
``TH_JITTER`` = 1 step without being a wrap is a corrupt word (counted in ``stat[BAD]``;
the new value is taken, so decoding resynchronises on it).

An event decoded before the words its fields come from (TIME_HIGH and TIME_LOW for t,
ADDR_Y for y, and VECT_BASE_X for the x and p of a vector word) would get 0 for the
unknown part: it is counted in ``stat[EARLY]`` and not written. ``state[S_KNOWN]`` holds
which of those words were seen (bits ``K_*``); recordings start with TIME_HIGH, TIME_LOW.
"""

from __future__ import annotations

import numba
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from ._decode_common import OTHER, count_bad, count_early, put_event

ADDR_Y, ADDR_X, VECT_BASE_X, VECT_12, VECT_8 = 0x0, 0x2, 0x3, 0x4, 0x5
TIME_LOW, CONTINUED_4, TIME_HIGH, EXT_TRIGGER, OTHERS, CONTINUED_12 = 0x6, 0x7, 0x8, 0xA, 0xE, 0xF

WRAP_DROP = 0xFFF - 10
TH_JITTER = 1

# state slots
S_Y, S_BASE_X, S_POL, S_TIME_LOW, S_TIME_HIGH, S_WRAPS, S_KNOWN = 0, 1, 2, 3, 4, 5, 6
N_STATE = 7
# S_KNOWN bits: which state words were seen; ADDR_X needs K_ADDR, a vector word K_VECT
K_TIME_HIGH, K_TIME_LOW, K_Y, K_BASE_X = 1, 2, 4, 8
K_ADDR = K_TIME_HIGH | K_TIME_LOW | K_Y
K_VECT = K_ADDR | K_BASE_X


def new_state() -> np.ndarray:
    return np.zeros(N_STATE, dtype=np.int64)


@numba.njit(cache=True, nogil=True)
def decode_evt3(words, start, word0, state, width, height, out, k, stat):
    """Decode ``words[start:]`` into ``out[k:]`` until the words or the room run out.

    Stops before a word that could overflow ``out`` (a vector word writes up to 12
    events), so a caller can grow ``out`` and resume. Returns ``(next_word, k)``.
    """
    y, bx, pol, tl, th, wraps, known = state  # slots S_Y .. S_KNOWN
    t = (wraps << 24) | (th << 12) | tl
    cap = out.shape[0]
    i = start
    n = words.shape[0]
    while i < n:
        # each word writes at most 12 events: check the room once per block of words
        stop = min(n, i + (cap - k - 12) // 12 + 1) if k + 12 <= cap else i
        if stop == i:
            break
        while i < stop:
            w = np.int64(words[np.uint64(i)])  # unsigned: no negative-index fix-up
            typ = w >> 12
            # Plain branches on the type (ADDR_X 64 %, ADDR_Y 19 % of real words): writing a
            # candidate event for both and selecting y without a branch measured 20 % slower.
            if typ == ADDR_X:
                if (known & K_ADDR) == K_ADDR:
                    k = put_event(out, k, t, w & 0x7FF, y, (w >> 11) & 1, width, height,
                                  word0 + i, stat)
                else:
                    count_early(stat, word0 + i)
            elif typ == ADDR_Y:
                y = w & 0x7FF
                known |= K_Y
            elif typ > ADDR_X:
                if typ == VECT_12 or typ == VECT_8:
                    nbits = 12 if typ == VECT_12 else 8
                    mask = w & ((1 << nbits) - 1)
                    if known == K_VECT:
                        while mask:  # ~0.8 bits set per word: visit only those
                            k = put_event(out, k, t, bx + trailing_zeros(mask), y, pol, width,
                                          height, word0 + i, stat)
                            mask &= mask - 1
                    else:
                        while mask:
                            count_early(stat, word0 + i)
                            mask &= mask - 1
                    bx += nbits
                elif typ == VECT_BASE_X:
                    pol = (w >> 11) & 1
                    bx = w & 0x7FF
                    known |= K_BASE_X
                elif typ == TIME_LOW:
                    tl = w & 0xFFF
                    t = (wraps << 24) | (th << 12) | tl
                    known |= K_TIME_LOW
                elif typ == TIME_HIGH:
                    new = w & 0xFFF
                    if th - new >= WRAP_DROP:
                        wraps += 1
                    elif th - new > TH_JITTER:
                        count_bad(stat, word0 + i)
                    th = new
                    t = (wraps << 24) | (th << 12) | tl
                    known |= K_TIME_HIGH
                elif (typ == CONTINUED_4 or typ == CONTINUED_12 or typ == EXT_TRIGGER
                      or typ == OTHERS):
                    stat[OTHER] += 1
                else:
                    count_bad(stat, word0 + i)
            elif typ == 1:  # the only undefined type below ADDR_X
                count_bad(stat, word0 + i)
            i += 1
    state[S_Y], state[S_BASE_X], state[S_POL] = y, bx, pol
    state[S_TIME_LOW], state[S_TIME_HIGH], state[S_WRAPS] = tl, th, wraps
    state[S_KNOWN] = known
    return i, k


@numba.njit(cache=True, nogil=True)
def encode_evt3(ev, words):
    """Encode events (t sorted, >= 0) into uint16 ``words``; return the number written.

    TIME_HIGH / TIME_LOW / ADDR_Y words are written when their value changes, then one
    ADDR_X word per event. A TIME_HIGH is always followed by a TIME_LOW, as cameras emit
    them: some decoders (the ``evt3`` package) reset TIME_LOW to 0 on TIME_HIGH, others
    (this one, Prophesee's bit-field reading) keep it; such files decode the same in both.
    Each 2**24 µs wrap crossed is written as TIME_HIGH 0xFFF then 0x000 (a drop that every
    decoder counts as one wrap), so long gaps round-trip.
    ``words`` needs room for ``4 * len(ev) + 2 * (t_max >> 24) + 1`` words.
    """
    j = 0
    th = np.int64(-1)
    tl = np.int64(-1)
    yy = np.int64(-1)
    wraps = np.int64(0)
    for i in range(ev.shape[0]):
        e = ev[i]
        t = np.int64(e.t)
        ew = t >> 24
        while wraps < ew:
            words[j] = np.uint16((TIME_HIGH << 12) | 0xFFF)
            words[j + 1] = np.uint16(TIME_HIGH << 12)
            j += 2
            wraps += 1
            th = 0
        h = (t >> 12) & 0xFFF
        if h != th:
            words[j] = np.uint16((TIME_HIGH << 12) | h)
            j += 1
            th = h
            tl = -1  # always follow TIME_HIGH with TIME_LOW, as sensors do (see docstring)
        low = t & 0xFFF
        if low != tl:
            words[j] = np.uint16((TIME_LOW << 12) | low)
            j += 1
            tl = low
        y = np.int64(e.y)
        if y != yy:
            words[j] = np.uint16((ADDR_Y << 12) | (y & 0x7FF))
            j += 1
            yy = y
        p = np.int64(1 if e.p > 0 else 0)
        words[j] = np.uint16((ADDR_X << 12) | (p << 11) | (np.int64(e.x) & 0x7FF))
        j += 1
    return j
