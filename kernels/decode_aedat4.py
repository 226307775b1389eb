"""AEDAT 4.0 event structs -> event records, with the bounds check (torch-free).

Decompression and FlatBuffer parsing happen in Python (``lz4`` / ``zstandard``); this
kernel converts the packets' 16-byte structs {int64 t, int16 x, int16 y, bool on} in one
pass instead of four NumPy field copies per packet.
"""

from __future__ import annotations

import numba
import numpy as np

from ._decode_common import count_bad, put_event


@numba.njit(cache=True, nogil=True)
def convert_aedat4(structs, word0, width, height, out, stat):
    """Copy ``structs`` (fields t, x, y, on) into ``out``; return the number written.

    ``on`` is the struct's bool read as a byte: a value other than 0 / 1 is a corrupt
    event (``stat[BAD]``), not ON.
    """
    k = 0
    for i in range(structs.shape[0]):
        s = structs[i]
        on = np.int64(s.on)
        if on > 1:
            count_bad(stat, word0 + i)
        else:
            k = put_event(out, k, s.t, np.int64(s.x), np.int64(s.y), on, width, height,
                          word0 + i, stat)
    return k
