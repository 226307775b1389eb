"""EVT 3.0 kernel paths the real sample does not reach: output growth and the sensor edge.

Expected events are computed by hand from the format (Prophesee's EVT 3.0 spec: a vector
word's bit i is an event at base x + i), independently of the kernel's bit loop.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import neurosparse.data as nd
from neurosparse.errors import CorruptDataWarning, EventOutsideSensorError

HEADER = b"% evt 3.0\n% format EVT3;height=720;width=1280\n% end\n"


def write(tmp_path, words):
    path = tmp_path / "w.raw"
    path.write_bytes(HEADER + np.array(words, "<u2").tobytes())
    return path


def test_all_bits_set_vectors_grow_the_output_and_match_the_spec(tmp_path):
    """12 events per word is more than the one-per-word first guess: the reader grows
    its buffer and resumes mid-file without losing or repeating an event."""
    rows, per_row = 40, 100  # 40 rows of x 0..1199, each from 100 VECT_12 words
    words = [0x8000 | 0x001, 0x6000 | 0x002]
    for y in range(rows):
        words += [0x0000 | y, 0x3000 | (1 << 11) | 0] + [0x4000 | 0xFFF] * per_row
    ev = nd.read_events(write(tmp_path, words))
    assert len(ev) == rows * 12 * per_row
    assert np.array_equal(ev["x"].astype(np.int64), np.tile(np.arange(12 * per_row), rows))
    assert np.array_equal(ev["y"].astype(np.int64), np.repeat(np.arange(rows), 12 * per_row))
    assert set(ev["t"]) == {(0x001 << 12) | 0x002} and set(ev["p"]) == {1}


def test_vector_at_the_sensor_edge_counts_each_event_outside(tmp_path):
    # sensor 110 wide: VECT_12 at base 100 sets bits 0, 5, 9, 10, 11 -> x 100, 105, 109 in,
    # 110, 111 out; then VECT_8 at base 112 (bits 0 and 7) -> 112, 119 out; ADDR_X 3 in
    words = [0x8000, 0x6000 | 0x010, 0x0000 | 4, 0x3000 | 100,
             0x4000 | 0b111000100001, 0x5000 | 0b10000001, 0x2000 | 3]  # fmt: skip
    path = write(tmp_path, words)
    with pytest.raises(EventOutsideSensorError, match=r"4 event\(s\).*word 4 of the data"):
        nd.read_events(path, sensor_size=(110, 720))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ev = nd.read_events(path, sensor_size=(110, 720), errors="skip")
    assert list(ev["x"]) == [100, 105, 109, 3]
    assert ev.meta["dropped"]["outside_sensor"] == 4 and ev.meta["dropped"]["corrupt_words"] == 0
    assert [str(w.message).split(": ", 1)[1] for w in caught
            if issubclass(w.category, CorruptDataWarning)] == [
        "dropped 4 events outside sensor_size=(110, 720, 2) (W, H, P)"]  # fmt: skip
    # without a size no event is outside: the header's 1280 x 720 holds them all
    assert list(nd.read_events(path)["x"]) == [100, 105, 109, 110, 111, 112, 119, 3]
