"""Which GPU event-Linear forward a call takes (kernels/event_linear_cuda.gather_path).

The limits are H100 measurements (the module's docstring); this holds the rule that
uses them: the fused gather only for a weight readable as int64 words, and the row tile
or the event lists everywhere else.
"""

import pytest

from neurosparse.kernels import event_linear_cuda as kc


@pytest.mark.parametrize("rows,words,want", [
    (1, True, "tile"), (7, True, "tile"), (8, True, "fused"), (64, True, "fused"),
    (127, True, "fused"), (128, True, "lists wide"), (4096, True, "lists wide"),
    (1, False, "tile"), (8, False, "tile"), (15, False, "tile"), (16, False, "lists"),
    (64, False, "lists"), (256, False, "lists"),
])  # fmt: skip
def test_default_design_per_row_count(rows, words, want):
    assert (kc.FUSED_FROM, kc.LISTS_FROM, kc.SPLIT_ROWS) == (8, 128, 16)
    assert kc.gather_path(rows, words) == want
    # a call that takes anything but the tile must have been offered the word view
    assert kc.wants_lists(rows) or want == "tile"


@pytest.mark.parametrize("rows", [1, 8, 15, 16, 64, 128, 300])
def test_switches_turn_designs_off(monkeypatch, rows):
    monkeypatch.setattr(kc, "FUSED", False)
    assert kc.gather_path(rows, True) == ("tile" if rows < 16 else "lists wide")
    assert kc.wants_lists(rows) == (rows >= 16)
    monkeypatch.setattr(kc, "WIDE", False)
    assert kc.gather_path(rows, True) == ("tile" if rows < 16 else "lists")
