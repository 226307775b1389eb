"""Sequence memory: HTM temporal memory with Hebbian rewiring on flat arrays.

Columns × cells; each cell grows distal dendritic segments whose synapses (with
permanences in [0, 1], *connected* at ≥ ``connected_permanence``) listen to other
cells. Each :meth:`SequenceMemory.step`:

1. **activates** cells: in each active column the cells that were predicted (had an
   active segment) fire; an unpredicted column *bursts* (all its cells fire);
2. **learns** (``learn=True``) — Hebbian rewiring: segments that predicted correctly
   reinforce synapses from previously active cells (+increment) and weaken the rest
   (−decrement); a bursting column trains its best matching segment, or grows a new
   segment on its least-used cell; every learning segment grows synapses to
   previous *winner* cells up to ``max_new_synapse_count``; segments that predicted
   a column that did not come are punished by ``predicted_segment_decrement``;
   synapses whose permanence reaches 0 are destroyed, and so are segments left empty
   (and the least recently used segment when a cell is full);
3. **predicts**: segments with ≥ ``activation_threshold`` connected active synapses
   make their cell predictive for the next step; ≥ ``min_threshold`` potential ones
   make the segment *matching*.

The anomaly score is the fraction of active columns that no cell predicted.

Defaults are htm.core's ``TemporalMemory`` defaults (REFERENCES §5). The state lives
in flat arrays (CSR-like segment/synapse pools with a reverse index from presynaptic
cells) stepped by the Numba kernel ``kernels/sdr_temporal_memory.py``; a pure-Python
twin (``_tm_reference.ReferenceTemporalMemory``) reproduces it cell for cell.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._counters import OpCounter
from ..errors import ParameterError
from ..ops import sdr_temporal_memory as ops
from .sdr import SDRLike, as_sdr

_kernels = ops.kernels


class TMOutput(NamedTuple):
    """Result of one :meth:`SequenceMemory.step` (cell ids are ``column · K + i``)."""

    active_cells: np.ndarray
    """Cells active now (sorted ``int64``)."""
    winner_cells: np.ndarray
    """Cells that learn for this input: predicted active cells, and one per burst."""
    predictive_cells: np.ndarray
    """Cells predicted for the *next* step."""
    anomaly: float
    """Fraction of this step's active columns that were not predicted (0 … 1)."""


class SequenceMemory(OpCounter):
    """HTM temporal memory (sequence memory) with Hebbian rewiring.

    Parameters
    ----------
    columns : int
        Number of columns (the size of the input SDR).
    cells_per_column : int
        Cells per column ``K``.
    activation_threshold : int
        Connected active synapses that make a segment active (predictive).
    initial_permanence : float
        Permanence of a newly grown synapse.
    connected_permanence : float
        Permanence at which a synapse counts as connected.
    min_threshold : int
        Potential active synapses that make a segment matching (eligible to learn).
    max_new_synapse_count : int
        Synapses a learning segment may grow per step (to previous winner cells).
    permanence_increment, permanence_decrement : float
        Hebbian reinforcement / weakening of a learning segment's synapses.
    predicted_segment_decrement : float
        Punishment of matching segments in columns that did not become active.
    max_segments_per_cell, max_synapses_per_segment : int
        Budgets; a full cell evicts its least recently used segment, a full segment
        drops its weakest synapses to make room. ``max_synapses_per_segment`` is at
        most 8,191.
    seed : int
        Seed of the generator that breaks ties and picks growth targets; one seed
        gives one exact history.

    Examples
    --------
    >>> tm = SequenceMemory(columns=64, cells_per_column=4, seed=0)
    >>> out = tm.step([1, 5, 9], learn=True)
    >>> out.anomaly
    1.0
    """

    # Initial room (synapses, segments, pool entries) and the hole count that triggers
    # compaction; everything grows on demand, tests shrink these to exercise growth.
    _INITIAL = (1 << 14, 1 << 10, 1 << 15)
    _COMPACT_MIN = 1 << 16
    # Storage grows 4x at a time: the copy of the rows in use is the cost of a growth,
    # and the untouched tail of np.empty costs address space, not memory.
    _GROWTH = 4

    def __init__(
        self,
        columns: int,
        cells_per_column: int = 32,
        activation_threshold: int = 13,
        initial_permanence: float = 0.21,
        connected_permanence: float = 0.50,
        min_threshold: int = 10,
        max_new_synapse_count: int = 20,
        permanence_increment: float = 0.10,
        permanence_decrement: float = 0.10,
        predicted_segment_decrement: float = 0.0,
        max_segments_per_cell: int = 255,
        max_synapses_per_segment: int = 255,
        seed: int = 0,
    ) -> None:
        ints = {
            "columns": columns, "cells_per_column": cells_per_column,
            "activation_threshold": activation_threshold, "min_threshold": min_threshold,
            "max_new_synapse_count": max_new_synapse_count,
            "max_segments_per_cell": max_segments_per_cell,
            "max_synapses_per_segment": max_synapses_per_segment,
        }  # fmt: skip
        for name, v in ints.items():
            if int(v) != v or v < (0 if name == "max_new_synapse_count" else 1):
                raise ParameterError(f"{name} must be a positive integer, got {v}")
        for name, v in (
            ("initial_permanence", initial_permanence),
            ("connected_permanence", connected_permanence),
            ("permanence_increment", permanence_increment),
            ("permanence_decrement", permanence_decrement),
            ("predicted_segment_decrement", predicted_segment_decrement),
        ):
            if not 0.0 <= float(v) <= 1.0:
                raise ParameterError(f"{name} must lie in [0, 1], got {v}")
        if columns * cells_per_column >= 2**31:
            raise ParameterError("columns × cells_per_column must stay below 2**31")
        cap = _kernels().MAX_SYNAPSES_PER_SEGMENT
        if max_synapses_per_segment > cap:
            raise ParameterError(
                f"max_synapses_per_segment must be at most {cap} (a segment's active-synapse "
                f"counts are packed in 13 bits), got {max_synapses_per_segment}"
            )
        self.columns = int(columns)
        self.cells_per_column = int(cells_per_column)
        self.n_cells = self.columns * self.cells_per_column
        self.params = dict(
            ints,
            initial_permanence=float(initial_permanence),
            connected_permanence=float(connected_permanence),
            permanence_increment=float(permanence_increment),
            permanence_decrement=float(permanence_decrement),
            predicted_segment_decrement=float(predicted_segment_decrement),
            seed=int(seed),
        )
        self._params_i = np.array(
            [cells_per_column, activation_threshold, min_threshold, max_new_synapse_count,
             max_segments_per_cell, max_synapses_per_segment, 0, 0], np.int64,
        )  # fmt: skip
        self._params_f = np.array(
            [initial_permanence, connected_permanence, permanence_increment,
             permanence_decrement, predicted_segment_decrement], np.float64,
        )  # fmt: skip
        self._alloc(int(seed))

    # ------------------------------------------------------------------ storage
    def _alloc(self, seed: int) -> None:
        k = _kernels()
        n = self.n_cells
        ns, ng, pool = self._INITIAL
        self._syn_i32 = np.full((ns, 4), -1, np.int32)
        self._syn_free = np.zeros(ns, np.int32)
        self._seg_i32 = np.zeros((ng, k.SEG_COLS), np.int32)
        self._seg_i32[:, k.S_CELL] = -1
        self._seg_i64 = np.zeros((ng, 2), np.int64)
        self._seg_cnt = np.zeros(ng, np.int32)
        self._seg_free = np.zeros(ng, np.int32)
        self._seg_data = np.zeros(pool, np.int32)
        self._cell_i32 = np.zeros((n, 4), np.int32)
        self._cell_i32[:, k.C_HEAD] = -1
        self._cell_i64 = np.zeros(n, np.int64)
        self._out_syn = np.zeros(pool, np.int32)
        self._out_seg = np.zeros(pool, np.int32)
        self._out_perm = np.zeros(pool, np.float32)
        self._meta = np.zeros(k.META_SIZE, np.int64)
        # per-step work arrays
        self._active = np.zeros(n, np.int32)
        self._winners = np.zeros(n, np.int32)
        self._prev_active = np.zeros(n, np.int32)
        self._prev_winners = np.zeros(n, np.int32)
        self._active_segs = np.zeros(ng, np.int32)
        self._matching_segs = np.zeros(ng, np.int32)
        self._sort_keys = np.zeros(ng, np.int64)
        self._predictive = np.zeros(n, np.int32)
        self._prev_mark = np.zeros(n, np.bool_)
        self._winner_mark = np.zeros(n, np.int64)
        self._cand = np.zeros(n, np.int32)
        self._rng = np.array([seed & ((1 << 64) - 1)], np.uint64)
        self._need = np.zeros(4, np.int64)
        self._anomaly = np.zeros(1, np.float64)
        self._compactions = 0
        self._st: tuple | None = None

    def _state(self) -> tuple:
        # built once per storage change (_grow, _maybe_compact reset it), not per step
        if self._st is None:
            self._st = tuple(getattr(self, "_" + f) for f in _kernels().STATE_FIELDS)
        return self._st

    @staticmethod
    def _grown(arr: np.ndarray, rows: int, live: int) -> np.ndarray:
        # Only the ``live`` prefix is copied and the rest is left uninitialised on purpose:
        # every slot is written when it is first allocated, and memory never touched
        # costs no page faults (the free lists and segment lists use a sliver of theirs).
        out = np.empty((rows,) + arr.shape[1:], arr.dtype)
        out[:live] = arr[:live]
        return out

    def _grow(self) -> None:
        k, m, need = _kernels(), self._meta, self._need
        self._st = None
        grow = []  # (array name, new rows, rows in use)
        if need[0] > self._syn_i32.shape[0]:
            rows = max(int(need[0]), self._syn_i32.shape[0] * self._GROWTH)
            grow += [("syn_i32", rows, m[k.SYN_HW]), ("syn_free", rows, m[k.SYN_NFREE])]
        if need[1] > self._seg_i32.shape[0]:
            rows, hw = max(int(need[1]), self._seg_i32.shape[0] * self._GROWTH), m[k.SEG_HW]
            grow += [(name, rows, hw) for name in ("seg_i32", "seg_i64", "seg_cnt")]
            grow += [("seg_free", rows, m[k.SEG_NFREE]), ("active_segs", rows, m[k.N_ACTSEG]),
                     ("matching_segs", rows, m[k.N_MATCHSEG]), ("sort_keys", rows, 0)]  # fmt: skip
        if need[2] > self._seg_data.shape[0]:
            rows = max(int(need[2]), self._seg_data.shape[0] * self._GROWTH)
            grow += [("seg_data", rows, m[k.SEGPOOL_USED])]
        if need[3] > self._out_syn.shape[0]:
            rows = max(int(need[3]), self._out_syn.shape[0] * self._GROWTH)
            grow += [(name, rows, m[k.OUTPOOL_USED]) for name in ("out_syn", "out_seg", "out_perm")]
        for name, rows, live in grow:
            setattr(self, "_" + name, self._grown(getattr(self, "_" + name), rows, int(live)))

    def _maybe_compact(self) -> None:
        # Relocated blocks leave holes; rebuild a pool once holes outnumber live entries.
        k, m = _kernels(), self._meta
        if m[k.SEGPOOL_WASTE] > self._COMPACT_MIN and m[k.SEGPOOL_WASTE] * 2 > m[k.SEGPOOL_USED]:
            n = int(m[k.SEG_HW])
            starts = self._seg_i64[:n, k.S_START].copy()
            lens = self._seg_i32[:n, k.S_LEN].copy()
            new_starts, new_caps, used = k.plan_compaction(
                starts, lens, self._seg_i32[:n, k.S_CAP].copy(), n
            )
            size = self._seg_data.shape[0]
            self._seg_data = k.move_lists(self._seg_data, starts, lens, new_starts, n, size)
            self._seg_i64[:n, k.S_START] = new_starts
            self._seg_i32[:n, k.S_CAP] = new_caps
            m[k.SEGPOOL_USED], m[k.SEGPOOL_WASTE] = used, 0
            self._compactions += 1
            self._st = None
        if m[k.OUTPOOL_WASTE] > self._COMPACT_MIN and m[k.OUTPOOL_WASTE] * 2 > m[k.OUTPOOL_USED]:
            n = self.n_cells
            starts = self._cell_i64.copy()
            lens = self._cell_i32[:, k.C_OLEN].copy()
            new_starts, new_caps, used = k.plan_compaction(
                starts, lens, self._cell_i32[:, k.C_OCAP].copy(), n
            )
            size = self._out_syn.shape[0]
            for name in ("out_syn", "out_seg", "out_perm"):
                moved = k.move_lists(getattr(self, "_" + name), starts, lens, new_starts, n, size)
                setattr(self, "_" + name, moved)
            self._cell_i64[:] = new_starts
            self._cell_i32[:, k.C_OCAP] = new_caps
            m[k.OUTPOOL_USED], m[k.OUTPOOL_WASTE] = used, 0
            self._compactions += 1
            self._st = None

    # ------------------------------------------------------------------ API
    def _columns(self, active_columns: SDRLike) -> np.ndarray:
        a = active_columns
        if (
            isinstance(a, np.ndarray)
            and a.ndim == 1
            and a.dtype.kind in "iu"
            and (a.size == 0 or (a[0] >= 0 and a[-1] < self.columns and (a[1:] > a[:-1]).all()))
        ):
            # already sorted, unique and in range (the common case): skip building an SDR
            return np.ascontiguousarray(a, dtype=np.int32)
        if isinstance(active_columns, (list, tuple)):
            # Only an empty list needs a dtype (else numpy makes it float = dense of 0
            # bits). Casting every list to int64 read a dense bool mask as the column
            # indices 0/1 and truncated 2.7 to column 2; as_sdr's rule applies instead.
            active_columns = np.asarray(active_columns)
            if active_columns.size == 0:
                active_columns = active_columns.astype(np.int64)
        sdr = as_sdr(active_columns, self.columns, "active_columns")
        return np.ascontiguousarray(sdr.sparse, dtype=np.int32)

    def step(self, active_columns: SDRLike, learn: bool = True) -> TMOutput:
        """Feed one input (the active columns) and return what the memory did.

        Parameters
        ----------
        active_columns : SDR, index list/array or dense bool vector of ``columns`` bits
        learn : bool
            Apply Hebbian rewiring (growth, reinforcement, pruning).

        Returns
        -------
        TMOutput
            ``active_cells``, ``winner_cells``, ``predictive_cells`` (for the next
            step) and the ``anomaly`` score of this input.
        """
        k = _kernels()
        cols = self._columns(active_columns)
        visited0 = int(self._meta[k.SYN_VISITED])
        while True:
            status = ops.tm_step(
                cols, bool(learn), self._params_i, self._params_f, self._state(),
                self._active, self._winners, self._prev_active, self._prev_winners,
                self._active_segs, self._matching_segs, self._predictive,
                self._prev_mark, self._winner_mark, self._cand, self._sort_keys, self._rng,
                self._need, self._anomaly,
            )  # fmt: skip
            if status == k.OK:
                break
            self._grow()
        self._maybe_compact()
        m = self._meta
        n_act = int(m[k.N_ACTIVE])
        self.count_ops(
            synops=int(m[k.SYN_VISITED]) - visited0,
            spikes=n_act,
            events_in=int(cols.size),
            inputs_in=self.columns,
        )
        return TMOutput(
            self._active[:n_act].astype(np.int64),
            self._winners[: m[k.N_WINNER]].astype(np.int64),
            self._predictive[: m[k.N_PREDICTIVE]].astype(np.int64),
            float(self._anomaly[0]),
        )

    __call__ = step

    def reset(self) -> None:
        """Forget the current context (start of a new sequence); keeps what was learned."""
        k, m = _kernels(), self._meta
        # counts are kept only for active and matching segments: clear them with the lists
        self._seg_cnt[self._active_segs[: m[k.N_ACTSEG]]] = 0
        self._seg_cnt[self._matching_segs[: m[k.N_MATCHSEG]]] = 0
        for slot in (k.N_ACTIVE, k.N_WINNER, k.N_ACTSEG, k.N_MATCHSEG, k.N_PREDICTIVE):
            m[slot] = 0

    # ------------------------------------------------------------------ inspection
    @property
    def num_segments(self) -> int:
        """Live dendritic segments."""
        return int(self._meta[_kernels().N_SEG_LIVE])

    @property
    def num_synapses(self) -> int:
        """Live synapses."""
        return int(self._meta[_kernels().N_SYN_LIVE])

    @property
    def iteration(self) -> int:
        """Learning steps taken."""
        return int(self._meta[_kernels().ITER])

    def stats(self) -> dict[str, int]:
        """Counters: live/created/destroyed segments and synapses, pool sizes.

        ``state_bytes`` is the size of the state arrays as allocated; the part of each
        array never written yet (room for growth) takes address space, not memory.
        """
        k, m = _kernels(), self._meta
        return {
            "segments": int(m[k.N_SEG_LIVE]),
            "synapses": int(m[k.N_SYN_LIVE]),
            "segments_created": int(m[k.SEG_CREATED]),
            "segments_destroyed": int(m[k.SEG_DESTROYED]),
            "synapses_created": int(m[k.SYN_CREATED]),
            "synapses_destroyed": int(m[k.SYN_DESTROYED]),
            "synapse_slots": int(self._syn_i32.shape[0]),
            "segment_slots": int(self._seg_i32.shape[0]),
            "compactions": self._compactions,
            "state_bytes": int(sum(a.nbytes for a in self._state())),
        }

    @property
    def predictive_cells(self) -> np.ndarray:
        """Cells predicted for the next input."""
        return self._predictive[: self._meta[_kernels().N_PREDICTIVE]].astype(np.int64)

    def predictive_columns(self) -> np.ndarray:
        """Columns predicted for the next input (sorted, unique)."""
        return np.unique(self.predictive_cells // self.cells_per_column)

    def segments_of(self, cell: int) -> list[int]:
        """Ids of the live segments of ``cell`` (sorted)."""
        k = _kernels()
        out, s = [], int(self._cell_i32[cell, k.C_HEAD])
        while s >= 0:
            out.append(s)
            s = int(self._seg_i32[s, k.S_NEXT])
        return sorted(out)

    def synapse_table(self) -> list[tuple[int, int, int, float]]:
        """Every live synapse as ``(segment, cell, presynaptic cell, permanence)``, sorted.

        Read from the segment lists, i.e. from the storage the kernel itself walks.
        """
        k = _kernels()
        rows = []
        for seg in range(int(self._meta[k.SEG_HW])):
            cell = int(self._seg_i32[seg, k.S_CELL])
            if cell < 0:
                continue
            start, n = int(self._seg_i64[seg, k.S_START]), int(self._seg_i32[seg, k.S_LEN])
            for syn in self._seg_data[start : start + n]:
                pre, pos = int(self._syn_i32[syn, k.Y_PRE]), int(self._syn_i32[syn, k.Y_POUT])
                perm = float(self._out_perm[self._cell_i64[pre] + pos])
                rows.append((seg, cell, pre, perm))
        return sorted(rows)

    def check_integrity(self) -> None:
        """Assert that segment lists, out-lists and free lists describe one structure.

        Raises ``AssertionError`` on any inconsistency (used by tests; O(state)).
        """
        k = _kernels()
        m = self._meta
        live_syn = set()
        for seg in range(int(m[k.SEG_HW])):
            cell = int(self._seg_i32[seg, k.S_CELL])
            if cell < 0:
                continue
            start, n = int(self._seg_i64[seg, k.S_START]), int(self._seg_i32[seg, k.S_LEN])
            assert 0 < n <= self._seg_i32[seg, k.S_CAP], (seg, n)
            pres = set()
            for pos, syn in enumerate(self._seg_data[start : start + n]):
                assert self._syn_i32[syn, k.Y_SEG] == seg
                assert self._syn_i32[syn, k.Y_PSEG] == pos
                pres.add(int(self._syn_i32[syn, k.Y_PRE]))
                live_syn.add(int(syn))
            assert len(pres) == n, "two synapses of one segment share a presynaptic cell"
            assert seg in self.segments_of(cell)
        out_syn = set()
        for cell in range(self.n_cells):
            start, n = int(self._cell_i64[cell]), int(self._cell_i32[cell, k.C_OLEN])
            assert n <= self._cell_i32[cell, k.C_OCAP]
            for pos in range(n):
                syn = int(self._out_syn[start + pos])
                assert self._syn_i32[syn, k.Y_PRE] == cell and self._syn_i32[syn, k.Y_POUT] == pos
                v = int(self._out_seg[start + pos])
                assert v & k.SEG_MASK == self._syn_i32[syn, k.Y_SEG]
                connected = self._out_perm[start + pos] >= np.float32(
                    self.params["connected_permanence"] - k.EPSILON
                )
                assert bool(v & k.CONN_FLAG) == bool(connected)
                out_syn.add(syn)
        assert live_syn == out_syn
        assert len(live_syn) == m[k.N_SYN_LIVE]
        free = set(self._syn_free[: m[k.SYN_NFREE]].tolist())
        assert not (free & live_syn)
        assert len(free) + len(live_syn) == m[k.SYN_HW]
        assert int((self._seg_i32[: m[k.SEG_HW], k.S_CELL] >= 0).sum()) == m[k.N_SEG_LIVE]
        assert int(self._cell_i32[:, k.C_NSEG].sum()) == m[k.N_SEG_LIVE]
