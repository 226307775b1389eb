"""SequenceMemory (HTM temporal memory with Hebbian rewiring).

* the Numba kernel against the pure-Python twin (``_tm_reference``): identical cells,
  anomalies and synapse tables step for step, budgets and storage growth included;
* behaviour from Hawkins & Ahmad 2016: high-order sequences that share a middle are
  told apart, anomaly falls to ~0 on a learned sequence and jumps on a novel input;
* the learning rules on hand-computed cases: growth, reinforcement, punishment,
  decay, and pruning that really removes synapses and empty segments from storage.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurosparse.errors import InputValueError, ParameterError, ShapeError
from neurosparse.sdr import SDR, SequenceMemory
from neurosparse.sdr._tm_reference import ReferenceTemporalMemory


class _TinyStorage(SequenceMemory):
    # start with almost no room so that every growth and compaction path runs
    _INITIAL = (16, 4, 16)
    _COMPACT_MIN = 8


SMALL = dict(cells_per_column=4, activation_threshold=3, min_threshold=2, max_new_synapse_count=4)
BUDGET = dict(
    cells_per_column=3, activation_threshold=3, min_threshold=2, max_new_synapse_count=5,
    predicted_segment_decrement=0.05, max_segments_per_cell=2, max_synapses_per_segment=6,
    permanence_decrement=0.15,
)  # fmt: skip


def _stream(rng, columns, active, n_seq, steps, p_random):
    seq = [np.sort(rng.choice(columns, active, replace=False)) for _ in range(n_seq)]
    for t in range(steps):
        if rng.random() < p_random:
            yield np.sort(rng.choice(columns, active, replace=False)), rng.random() > 0.05
        else:
            yield seq[t % n_seq], rng.random() > 0.05


@pytest.mark.parametrize(
    ("cls", "params", "columns", "active", "seed"),
    [
        (SequenceMemory, SMALL, 32, 4, 0),
        (SequenceMemory, BUDGET, 24, 5, 1),
        (_TinyStorage, BUDGET, 24, 5, 3),
        (_TinyStorage, SMALL, 40, 6, 4),
    ],
)
def test_kernel_matches_python_reference_step_for_step(cls, params, columns, active, seed):
    tm = cls(columns, seed=seed, **params)
    ref = ReferenceTemporalMemory(columns, seed=seed, **params)
    rng = np.random.default_rng(seed)
    for t, (cols, learn) in enumerate(_stream(rng, columns, active, 6, 400, 0.2)):
        if t % 97 == 96:
            tm.reset()
            ref.prev_active, ref.prev_winners, ref.active_segs, ref.matching_segs = [], [], [], []
        a = tm.step(cols, learn=learn)
        b = ref.step(cols, learn=learn)
        assert np.array_equal(a.active_cells, b[0]), t
        assert np.array_equal(a.winner_cells, b[1]), t
        assert np.array_equal(a.predictive_cells, b[2]), t
        assert a.anomaly == pytest.approx(b[3], abs=1e-12)
        if t % 100 == 0:
            assert tm.synapse_table() == ref.synapse_table(), t
    assert tm.synapse_table() == ref.synapse_table()
    tm.check_integrity()
    stats = tm.stats()
    assert stats["synapses"] == stats["synapses_created"] - stats["synapses_destroyed"]
    assert stats["segments"] == stats["segments_created"] - stats["segments_destroyed"]
    if cls is _TinyStorage:
        assert stats["synapse_slots"] > 16 and stats["segment_slots"] > 4  # storage grew


def test_budgets_hold_and_pruned_synapses_leave_storage():
    tm = _TinyStorage(24, seed=2, **BUDGET)
    rng = np.random.default_rng(2)
    for cols, _ in _stream(rng, 24, 5, 5, 600, 0.3):
        tm.step(cols)
    table = tm.synapse_table()
    per_seg = np.bincount([row[0] for row in table])
    assert per_seg.max() <= BUDGET["max_synapses_per_segment"]
    for cell in range(tm.n_cells):
        assert len(tm.segments_of(cell)) <= BUDGET["max_segments_per_cell"]
    stats = tm.stats()
    assert stats["synapses_destroyed"] > 0 and stats["segments_destroyed"] > 0
    assert stats["compactions"] > 0
    # the out-lists the kernel walks hold exactly the live synapses (no tombstones)
    tm.check_integrity()
    assert len(table) == tm.num_synapses == stats["synapses"]


def _sdrs(rng, columns, active, names):
    return {n: np.sort(rng.choice(columns, active, replace=False)) for n in names}


@pytest.mark.parametrize("seed", [0, 1])
def test_high_order_sequences_sharing_a_middle_are_disambiguated(seed):
    rng = np.random.default_rng(seed)
    columns, active = 1024, 40
    e = _sdrs(rng, columns, active, "ABCDXY")
    # htm.core defaults except predicted_segment_decrement: with its default 0, a wrong
    # "C -> Y" link formed while B still bursts in early epochs is never unlearned
    # (htm.core documents the same and recommends a small positive value).
    tm = SequenceMemory(columns, cells_per_column=32, seed=seed, predicted_segment_decrement=0.05)
    for _ in range(30):
        for seq in ("ABCD", "XBCY"):
            tm.reset()
            for name in seq:
                tm.step(e[name], learn=True)
    outs = {}
    for seq in ("ABCD", "XBCY"):
        tm.reset()
        outs[seq] = [tm.step(e[name], learn=False) for name in seq]
    for seq, last, other in (("ABCD", "D", "Y"), ("XBCY", "Y", "D")):
        predicted = np.unique(outs[seq][2].predictive_cells // 32)  # after ...C
        assert np.array_equal(predicted, e[last])
        assert np.setdiff1d(e[other], e[last]).size > 0
        assert not np.intersect1d(predicted, np.setdiff1d(e[other], e[last])).size
        assert outs[seq][3].anomaly == 0.0
    # "B" and "C" get different cells in the two contexts (same columns)
    for i in (1, 2):
        a, b = outs["ABCD"][i].active_cells, outs["XBCY"][i].active_cells
        assert np.array_equal(np.unique(a // 32), np.unique(b // 32))
        assert not np.intersect1d(a, b).size


def test_anomaly_falls_on_a_learned_sequence_and_jumps_on_a_novel_input():
    rng = np.random.default_rng(1)
    columns, active = 1024, 40
    seq = [np.sort(rng.choice(columns, active, replace=False)) for _ in range(8)]
    tm = SequenceMemory(columns, cells_per_column=32, seed=0)
    laps = []
    for _ in range(30):
        tm.reset()  # sequence boundary, as in htm.core's usage
        laps.append([tm.step(x).anomaly for x in seq])
    assert laps[0] == [1.0] * 8
    # the first element has no context after a reset; everything after it is predicted
    assert laps[-1][0] == 1.0 and max(laps[-1][1:]) == 0.0
    tm.reset()
    tm.step(seq[0], learn=False)
    novel = np.sort(rng.choice(columns, active, replace=False))
    assert tm.step(novel, learn=False).anomaly >= 0.9


def test_anomaly_is_near_zero_on_a_repeating_stream_without_resets():
    # Without resets each lap is a longer context, so a column still bursts now and then
    # (the known behaviour of HTM on repeats); the mean anomaly still falls to ~0.
    rng = np.random.default_rng(1)
    seq = [np.sort(rng.choice(1024, 40, replace=False)) for _ in range(8)]
    tm = SequenceMemory(1024, cells_per_column=32, seed=0)
    anomalies = [tm.step(seq[t % 8]).anomaly for t in range(8 * 60)]
    assert np.mean(anomalies[:8]) == 1.0
    assert np.mean(anomalies[-80:]) < 0.1


def test_deterministic_for_a_seed():
    rng = np.random.default_rng(7)
    inputs = [np.sort(rng.choice(200, 10, replace=False)) for _ in range(60)]
    runs = {}
    for seed in (0, 0, 1):
        tm = SequenceMemory(200, cells_per_column=8, seed=seed)
        runs.setdefault(seed, []).append([tm.step(x).winner_cells for x in inputs])
    a, b = runs[0]
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert any(not np.array_equal(x, y) for x, y in zip(a, runs[1][0]))


# One cell per column: every choice is forced, so the rules can be followed by hand.
HAND = dict(
    cells_per_column=1, activation_threshold=2, min_threshold=1, max_new_synapse_count=2,
    initial_permanence=0.21, connected_permanence=0.5, permanence_increment=0.1,
    permanence_decrement=0.05, predicted_segment_decrement=0.04,
)  # fmt: skip


def _perms_of(tm, cell):
    """{presynaptic cell: permanence} of the synapses on ``cell``'s segments."""
    return {pre: round(p, 5) for _, c, pre, p in tm.synapse_table() if c == cell}


def test_hand_computed_growth_reinforcement_prediction_and_punishment():
    tm = SequenceMemory(4, seed=0, **HAND)
    first = tm.step([0, 1])  # two bursts, no previous winners: nothing grows
    assert tm.num_segments == 0 and first.anomaly == 1.0
    tm.step([2])  # burst: a new segment on cell 2 grows synapses to winners 0 and 1
    assert tm.segments_of(2) and _perms_of(tm, 2) == {0: 0.21, 1: 0.21}
    # [0, 1] makes the segment matching (2 potential ≥ 1) but not active (0.21 < 0.5);
    # the burst of column 2 trains it: both presynaptic cells were active, +0.1 each
    for expected in (0.31, 0.41, 0.51):
        tm.reset()
        assert tm.step([0, 1]).predictive_cells.size == 0
        assert tm.step([2]).anomaly == 1.0
        assert _perms_of(tm, 2) == {0: expected, 1: expected}
    # connected now: [0, 1] predicts cell 2, which then fires as predicted and learns
    tm.reset()
    assert tm.step([0, 1]).predictive_cells.tolist() == [2]
    assert tm.step([2]).anomaly == 0.0
    assert _perms_of(tm, 2) == {0: 0.61, 1: 0.61}
    # wrong prediction: column 3 comes instead; the segment on cell 2 loses 0.04
    tm.reset()
    tm.step([0, 1])
    assert tm.step([3]).anomaly == 1.0
    assert _perms_of(tm, 2) == {0: 0.57, 1: 0.57}
    assert _perms_of(tm, 3) == {0: 0.21, 1: 0.21}  # and column 3 grew its own segment


def test_hand_computed_decay_and_pruning_of_a_synapse():
    tm = SequenceMemory(4, seed=0, **dict(HAND, permanence_decrement=0.11))
    tm.step([0])
    tm.step([2])  # segment on cell 2: one synapse from cell 0
    assert _perms_of(tm, 2) == {0: 0.21}
    tm.reset()
    tm.step([0, 1])
    tm.step([2])  # matching via cell 0: +0.1; grows the missing synapse to winner 1
    assert _perms_of(tm, 2) == {0: 0.31, 1: 0.21}
    # only cell 1 precedes now: the synapse from 0 decays by 0.11, the one from 1 grows
    for p0, p1 in ((0.20, 0.31), (0.09, 0.41)):
        tm.reset()
        tm.step([1])
        tm.step([2])
        assert _perms_of(tm, 2) == {0: p0, 1: p1}
    tm.reset()
    tm.step([1])
    tm.step([2])  # 0.09 − 0.11 < 0: the synapse is destroyed, not kept at zero
    assert _perms_of(tm, 2) == {1: 0.51}
    assert tm.num_synapses == 1 and tm.stats()["synapses_destroyed"] == 1
    tm.check_integrity()  # and it is gone from the presynaptic out-lists too


def test_punished_segment_left_empty_is_destroyed():
    tm = SequenceMemory(4, seed=0, **dict(HAND, predicted_segment_decrement=0.3))
    tm.step([0])
    tm.step([1])  # segment on cell 1 with one synapse from cell 0 at 0.21
    assert _perms_of(tm, 1) == {0: 0.21}
    tm.reset()
    tm.step([0])  # the segment matches (1 potential ≥ 1)
    tm.step([3])  # column 1 stays off: punished by 0.3 → below 0 → synapse and segment go
    assert tm.segments_of(1) == [] and _perms_of(tm, 1) == {}
    assert tm.stats()["segments_destroyed"] == 1
    assert _perms_of(tm, 3) == {0: 0.21}  # column 3 burst and grew its own segment
    assert tm.num_segments == 1
    tm.check_integrity()


def test_inputs_and_parameters_are_checked():
    tm = SequenceMemory(10, cells_per_column=2)
    out = tm.step(SDR(10, [1, 2]))
    assert out.active_cells.tolist() == [2, 3, 4, 5]
    assert tm.step(np.array([False] * 9 + [True])).active_cells.tolist() == [18, 19]
    with pytest.raises(InputValueError, match=r"\[0, 9\]"):
        tm.step([10])
    with pytest.raises(ParameterError, match="cells_per_column"):
        SequenceMemory(10, cells_per_column=0)
    assert tm.step([]).anomaly == 0.0


def test_max_synapses_per_segment_is_bounded_by_the_packed_counts():
    # the kernel packs a segment's active-synapse counts in 13 bits
    SequenceMemory(10, max_synapses_per_segment=8191)
    with pytest.raises(ParameterError, match="at most 8191"):
        SequenceMemory(10, max_synapses_per_segment=8192)


def test_index_arrays_in_any_order_give_the_same_step():
    # sorted unique arrays take a fast path; the others go through SDR: same result
    a, b = (
        SequenceMemory(16, cells_per_column=2, seed=0),
        SequenceMemory(16, cells_per_column=2, seed=0),
    )
    for cols in ([3, 7, 9], [1, 2, 12], [3, 7, 9]):
        x = a.step(np.array(cols, np.int64))
        y = b.step(np.array(cols[::-1] + cols[:1], np.int32))  # reversed, one repeated
        assert np.array_equal(x.active_cells, y.active_cells)
        assert np.array_equal(x.predictive_cells, y.predictive_cells)
    with pytest.raises(InputValueError, match=r"\[0, 15\]"):
        a.step(np.array([2, 16]))
    with pytest.raises(InputValueError):
        a.step(np.array([-1, 2]))


def test_a_dense_bool_list_selects_the_masked_columns():
    # a list used to be cast to int64, so a bool mask became the "indices" 0 and 1
    mask = [False, True, False, True, True, False, False, False]
    tm = SequenceMemory(8, cells_per_column=2, seed=0)
    out = tm.step(mask, learn=False)
    assert out.active_cells.tolist() == [2, 3, 6, 7, 8, 9]  # columns 1, 3, 4 burst
    assert np.array_equal(tm.step(np.array(mask), learn=False).active_cells, out.active_cells)
    # a list of floats is a dense vector (as_sdr's rule), not indices truncated to ints
    with pytest.raises(ShapeError, match="expected 8"):
        tm.step([1.0, 2.7])
    assert tm.step([], learn=False).active_cells.size == 0
