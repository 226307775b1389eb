"""AEDAT 4.0 event structs -> event records, with the bounds check (torch-free).

Decompression and FlatBuffer parsing happen in Python (``lz4`` / ``zstandard``); this
kernel converts the packets' 16-byte structs {int64 t, int16 x, int16 y, bool on} in one
pass instead of four NumPy field copies per packet.
"""

from __future__ import annotations

import numba
import numpy as np

from ._decode_common import BAD, FIRST_BAD, FIRST_OUT, OUTSIDE


@numba.njit(cache=True, nogil=True)
def convert_aedat4(structs, word0, width, height, out, stat):
    """Copy ``structs`` (fields t, x, y, on) into ``out``; return the number written.

    ``on`` is the struct's bool read as a byte: a value other than 0 / 1 is a corrupt
    event (``stat[BAD]``), not ON.
    """
    k = 0
    check = width > 0
    for i in range(structs.shape[0]):
        s = structs[i]
        on = np.int64(s.on)
        if on > 1:
            if stat[FIRST_BAD] < 0:
                stat[FIRST_BAD] = word0 + i
            stat[BAD] += 1
            continue
        x = np.int64(s.x)
        y = np.int64(s.y)
        if check and (x < 0 or y < 0 or x >= width or y >= height):
            if stat[FIRST_OUT] < 0:
                stat[FIRST_OUT] = word0 + i
            stat[OUTSIDE] += 1
            continue
        e = out[k]
        e.t = s.t
        e.x = x
        e.y = y
        e.p = on
        k += 1
    return k
