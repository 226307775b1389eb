"""Pure-Python temporal memory: the obviously-correct twin of the Numba kernel.

Dictionaries and sets instead of flat arrays; the same rules, the same random
generator (splitmix64) consumed in the same order, and the same order-free tie rules,
so for one seed it reproduces :class:`~neurosparse.sdr.SequenceMemory` cell for cell
and permanence for permanence. Used by the tests as the oracle and by the benchmark as
the plain-Python baseline. Slow by design: never use it for real streams.
"""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np

from .sequence_memory import SequenceMemory

_MASK = (1 << 64) - 1
EPSILON = 1e-5


class _SplitMix:
    def __init__(self, seed: int) -> None:
        self.state = seed & _MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)

    def below(self, n: int) -> int:
        return ((self.next() >> 32) * n) >> 32


class _Segment:
    __slots__ = ("cell", "syn", "last")

    def __init__(self, cell: int, last: int) -> None:
        self.cell = cell
        self.syn: dict[int, np.float32] = {}  # presynaptic cell -> permanence
        self.last = last


class ReferenceTemporalMemory:
    """Same constructor arguments (and defaults) and ``step`` results as ``SequenceMemory``."""

    def __init__(self, *args, **kwargs) -> None:
        # the arguments and defaults of SequenceMemory, bound by its own signature
        bound = inspect.signature(SequenceMemory).bind(*args, **kwargs)
        bound.apply_defaults()
        p = SimpleNamespace(**bound.arguments)
        self.C, self.K = p.columns, p.cells_per_column
        self.theta, self.min_th = p.activation_threshold, p.min_threshold
        self.p_init, self.p_conn = p.initial_permanence, p.connected_permanence
        self.p_inc, self.p_dec = p.permanence_increment, p.permanence_decrement
        self.p_pun = p.predicted_segment_decrement
        self.max_new = p.max_new_synapse_count
        self.max_segs, self.max_syns = p.max_segments_per_cell, p.max_synapses_per_segment
        self.rng = _SplitMix(p.seed)
        self.segments: dict[int, _Segment] = {}
        self.free: list[int] = []
        self.hw = 0
        self.cell_segs: list[set[int]] = [set() for _ in range(self.C * self.K)]
        self.out: dict[int, set[int]] = {}  # presynaptic cell -> segments it reaches
        self.iteration = 0
        self.prev_active: list[int] = []
        self.prev_winners: list[int] = []
        self.active_segs: list[int] = []
        self.matching_segs: list[int] = []
        self.pot: dict[int, int] = {}

    # -- structure
    def _new_segment(self, cell: int) -> int:
        if len(self.cell_segs[cell]) >= self.max_segs:
            lru = min(self.cell_segs[cell], key=lambda s: (self.segments[s].last, s))
            self._destroy_segment(lru)
        sid = self.free.pop() if self.free else self.hw
        if sid == self.hw:
            self.hw += 1
        self.segments[sid] = _Segment(cell, self.iteration)
        self.cell_segs[cell].add(sid)
        return sid

    def _destroy_segment(self, sid: int) -> None:
        seg = self.segments.pop(sid)
        for pre in seg.syn:
            self.out[pre].discard(sid)
        self.cell_segs[seg.cell].discard(sid)
        self.free.append(sid)

    def _adapt(self, sid: int, prev: set[int], inc: float, dec: float) -> bool:
        seg = self.segments[sid]
        for pre in list(seg.syn):
            p = float(seg.syn[pre]) + (inc if pre in prev else -dec)
            p = min(max(p, 0.0), 1.0)
            if p < EPSILON:
                del seg.syn[pre]
                self.out[pre].discard(sid)
            else:
                seg.syn[pre] = np.float32(p)
        if not seg.syn:
            self._destroy_segment(sid)
            return True
        return False

    def _grow(self, sid: int, n_desired: int) -> None:
        seg = self.segments[sid]
        winners = set(self.prev_winners)
        cand = [c for c in self.prev_winners if c not in seg.syn]
        n_actual = min(n_desired, len(cand))
        overrun = len(seg.syn) + n_actual - self.max_syns
        if overrun > 0:
            for _ in range(overrun):
                weak = [(float(p), pre) for pre, p in seg.syn.items() if pre not in winners]
                if not weak:
                    break
                _, pre = min(weak)
                del seg.syn[pre]
                self.out[pre].discard(sid)
            n_actual = min(n_actual, self.max_syns - len(seg.syn))
        for i in range(max(n_actual, 0)):
            j = i + self.rng.below(len(cand) - i)
            cand[i], cand[j] = cand[j], cand[i]
            seg.syn[cand[i]] = np.float32(self.p_init)
            self.out.setdefault(cand[i], set()).add(sid)

    def _learn_on(self, sid: int, prev: set[int]) -> None:
        # reinforce a correct (or best-matching) segment, then top it up with new synapses
        n_pot = self.pot[sid]
        if not self._adapt(sid, prev, self.p_inc, self.p_dec) and self.max_new - n_pot > 0:
            self._grow(sid, self.max_new - n_pot)

    def _least_used(self, col: int) -> int:
        cells = range(col * self.K, (col + 1) * self.K)
        fewest = min(len(self.cell_segs[c]) for c in cells)
        ties = [c for c in cells if len(self.cell_segs[c]) == fewest]
        return ties[self.rng.below(len(ties))]

    # -- the step
    def step(self, active_columns, learn: bool = True):
        cols = sorted(set(int(c) for c in active_columns))
        K = self.K
        predicted_cols = {self.segments[s].cell // K for s in self.active_segs}
        anomaly = sum(c not in predicted_cols for c in cols) / len(cols) if cols else 0.0
        prev = set(self.prev_active)
        by_col_act: dict[int, list[int]] = {}
        for s in self.active_segs:
            by_col_act.setdefault(self.segments[s].cell // K, []).append(s)
        by_col_match: dict[int, list[int]] = {}
        for s in self.matching_segs:
            by_col_match.setdefault(self.segments[s].cell // K, []).append(s)
        active, winners = [], []
        for col in sorted(set(cols) | set(by_col_act) | set(by_col_match)):
            act = by_col_act.get(col, [])
            match = by_col_match.get(col, [])
            if col in cols:
                if act:
                    for s in act:
                        cell = self.segments[s].cell
                        if not active or active[-1] != cell:
                            active.append(cell)
                            winners.append(cell)
                        if learn:
                            self._learn_on(s, prev)
                else:
                    active.extend(range(col * K, (col + 1) * K))
                    if match:
                        best = match[0]
                        for s in match[1:]:
                            if self.pot[s] > self.pot[best]:
                                best = s
                        winner = self.segments[best].cell
                        if learn:
                            self._learn_on(best, prev)
                    else:
                        winner = self._least_used(col)
                        n_grow = min(self.max_new, len(self.prev_winners))
                        if learn and n_grow > 0:
                            self._grow(self._new_segment(winner), n_grow)
                    winners.append(winner)
            elif learn and self.p_pun > 0:
                for s in match:
                    self._adapt(s, prev, -self.p_pun, 0.0)
        # activate dendrites
        act_set = set(active)
        conn = np.float32(self.p_conn - EPSILON)
        self.pot, n_conn = {}, {}
        for c in active:
            for s in self.out.get(c, ()):
                self.pot[s] = self.pot.get(s, 0) + 1
                if self.segments[s].syn[c] >= conn:
                    n_conn[s] = n_conn.get(s, 0) + 1
        key = lambda s: (self.segments[s].cell, s)  # noqa: E731
        self.active_segs = sorted((s for s in n_conn if n_conn[s] >= self.theta), key=key)
        self.matching_segs = sorted((s for s in self.pot if self.pot[s] >= self.min_th), key=key)
        predictive = sorted({self.segments[s].cell for s in self.active_segs})
        if learn:
            for s in self.active_segs:
                self.segments[s].last = self.iteration
            self.iteration += 1
        self.prev_active, self.prev_winners = active, winners
        assert act_set == set(active)
        return (
            np.array(active, np.int64),
            np.array(winners, np.int64),
            np.array(predictive, np.int64),
            anomaly,
        )

    def synapse_table(self) -> list[tuple[int, int, int, float]]:
        """Every synapse as (segment, cell, presynaptic cell, permanence), sorted."""
        return sorted(
            (sid, seg.cell, pre, float(p))
            for sid, seg in self.segments.items()
            for pre, p in seg.syn.items()
        )
