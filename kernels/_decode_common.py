"""Conventions shared by the ``decode_*`` kernels (torch-free).

Every decoder writes events into a preallocated structured array ``out`` (fields t, x,
y, p) and keeps its bookkeeping in a small int64 ``stat`` array, updated in place so a
file can be decoded in blocks (streaming) with the same counts as in one call:

``stat[BAD]``        words that are not valid for the format (corrupt data);
``stat[FIRST_BAD]``  index (in words, from the start of the file) of the first one, -1;
``stat[OUTSIDE]``    events with x >= width or y >= height (not written);
``stat[FIRST_OUT]``  word index of the first of those, -1;
``stat[OTHER]``      valid words that carry no polarity event (triggers, APS, IMU, ...);
``stat[EARLY]``      events decoded before the state words they depend on (EVT 2.0 / 3.0:
                     an event before the first TIME_HIGH has no time; not written);
``stat[FIRST_EARLY]`` word index of the first of those, -1.

``width = height = 0`` disables the bounds check. The Python readers turn ``BAD`` and
``OUTSIDE`` into an error, or, with ``errors="skip"``, into a warning with the counts.
The decoders write through :func:`put_event` (bounds check, counting, the record write),
count corrupt words with :func:`count_bad` and step wrapping counters with :func:`unwrap`,
so these rules live here once.

Numba's on-disk cache checks only the file of the function it compiled: after editing a
helper here, clear ``kernels/__pycache__`` (or touch the decoders) so they recompile.

Time counters that wrap (AEDAT 2 / DAT 32-bit µs, EVT 2.0 TIME_HIGH) count a wrap only
when the counter falls from its top quarter to its bottom quarter *and* the value before
was in the top quarter too (:func:`is_wrap`; state ``WRAP_STATE`` = (last, wraps, the
value before last, -1 at the start)). A corrupt value then shows up as time running
backwards (an error) instead of as a wrap that would silently shift every later event
by a whole period: a single damaged timestamp that jumps into the top quarter is
followed by a fall, but its predecessor was not in the top quarter. A real recording
crosses a wrap with many values near the top (events arrive every few µs; EVT 2.0
writes TIME_HIGH every 64 µs).
"""

from __future__ import annotations

import numba
import numpy as np

BAD, FIRST_BAD, OUTSIDE, FIRST_OUT, OTHER, EARLY, FIRST_EARLY = 0, 1, 2, 3, 4, 5, 6
N_STAT = 7


@numba.njit(cache=True, nogil=True, inline="always")
def is_wrap(before, old, new, bits):
    """True when a ``bits``-bit counter going ``before`` -> ``old`` -> ``new`` wrapped
    between ``old`` and ``new`` (``before`` < 0: unknown, at the start of a file)."""
    quarter = np.int64(1) << (bits - 2)
    return old >= 3 * quarter and new < quarter and (before < 0 or before >= 3 * quarter)


@numba.njit(cache=True, nogil=True, inline="always")
def unwrap(before, last, new, wraps, bits):
    """One step of a ``bits``-bit wrapping counter: ``(wraps, before, last)`` after ``new``.

    ``wraps`` grows by one where :func:`is_wrap` says the counter wrapped between ``last``
    and ``new``; any other fall is left alone (the reader reports time going backwards).
    """
    if new < last and is_wrap(before, last, new, bits):
        wraps += 1
    return wraps, last, new


@numba.njit(cache=True, nogil=True, inline="always")
def count_bad(stat, word):
    """Count one corrupt word at ``word`` (its index in the data section)."""
    if stat[FIRST_BAD] < 0:
        stat[FIRST_BAD] = word
    stat[BAD] += 1


@numba.njit(cache=True, nogil=True, inline="always")
def count_early(stat, word):
    """Count one event at ``word`` decoded before the state words it depends on."""
    if stat[FIRST_EARLY] < 0:
        stat[FIRST_EARLY] = word
    stat[EARLY] += 1


@numba.njit(cache=True, nogil=True, inline="always")
def count_outside(stat, word):
    """Count one event outside the sensor, from the word at ``word``."""
    if stat[FIRST_OUT] < 0:
        stat[FIRST_OUT] = word
    stat[OUTSIDE] += 1


@numba.njit(cache=True, nogil=True, inline="always")
def put_event(out, k, t, x, y, p, width, height, word, stat):
    """Write event ``(t, x, y, p)`` at ``out[k]`` and return ``k + 1``; if it lies outside a
    ``width`` x ``height`` sensor (``width`` > 0), count it instead and return ``k``."""
    # as unsigned, a negative x or y (AEDAT 4's int16 fields) is huge: one compare each
    if width > 0 and (np.uint64(x) >= np.uint64(width) or np.uint64(y) >= np.uint64(height)):
        count_outside(stat, word)
        return k
    e = out[np.uint64(k)]  # unsigned: Numba adds no negative-index fix-up (k >= 0)
    e.t = t
    e.x = x
    e.y = y
    e.p = p
    return k + 1


@numba.njit(cache=True, nogil=True)
def first_backward(t, prev):
    """Index of the first ``t[i]`` below ``prev`` or an earlier ``t``; -1 if in order.

    One pass without temporaries: the common case (an intact file) costs ~1 ns / event.
    """
    m = prev
    for i in range(t.shape[0]):
        if t[i] < m:
            return i
        m = t[i]
    return -1


def new_wrap_state() -> np.ndarray:
    """(last value, wraps, value before last) for the kernels that undo wraps."""
    return np.array([0, 0, -1], dtype=np.int64)


def new_stat() -> np.ndarray:
    stat = np.zeros(N_STAT, dtype=np.int64)
    stat[FIRST_BAD] = -1
    stat[FIRST_OUT] = -1
    stat[FIRST_EARLY] = -1
    return stat
