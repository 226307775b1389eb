"""Spatial pooler: k-winners over dendritic overlaps, boosting, Hebbian permanences.

Each column owns a fixed *potential pool* of input bits with a permanence per bit;
a synapse is connected when its permanence ≥ ``syn_perm_connected``. One step
(htm.core semantics with global inhibition, re-implemented from the papers):

1. overlap of each column = its connected synapses onto active input bits;
2. while learning, overlaps are multiplied by boost factors
   ``exp((active/columns − active duty cycle) · boost_strength)``;
3. the ``active`` columns with the largest (boosted) overlap win — a fixed sparsity
   (exact ties are broken by a random column order drawn once);
4. learning: winners' synapses onto active inputs gain ``syn_perm_active_inc``, the
   others lose ``syn_perm_inactive_dec``; duty cycles are updated; columns whose
   overlap duty cycle falls below ``min_pct_overlap_duty_cycles × max`` get all their
   permanences raised (so they reconnect to the input); boost factors are refreshed.

Cui, Ahmad & Hawkins 2017 show that this keeps output sparsity fixed and, with
boosting, spreads use over all columns. Overlaps and learning run in the Numba
kernels of ``kernels/sdr_spatial_pooler.py`` (through ``ops/sdr_spatial_pooler.py``, or
its NumPy references): overlaps cost active inputs × fan-out (sequential reads of an
input-major mirror), learning walks the winners' pools.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_range
from .._counters import OpCounter
from ..errors import ParameterError
from ..ops import sdr_spatial_pooler as ops
from .sdr import SDR, SDRLike, as_sdr


class SpatialPooler(OpCounter):
    """HTM spatial pooler with global inhibition.

    Parameters
    ----------
    input_size : int
        Input bits ``N``.
    columns : int
        Output columns ``C``.
    active : int
        Winning columns per step (the output sparsity is ``active / columns``).
    potential_radius : int, optional
        Each column's pool is drawn from the inputs within this radius of its centre
        on a 1-D ring (``round((c + 0.5)·N/C − 0.5)``); None: from all inputs.
    potential_pct : float
        Fraction of those inputs in the pool.
    init_connected_pct : float
        Fraction of pool synapses that start connected.
    stimulus_threshold : int
        Minimum overlap to win (0: exactly ``active`` winners every step).
    syn_perm_connected, syn_perm_active_inc, syn_perm_inactive_dec : float
        Connection threshold and Hebbian increments.
    syn_perm_below_stimulus_inc : float, optional
        Raise applied to weak columns (default ``syn_perm_connected / 10``).
    min_pct_overlap_duty_cycles : float
        A column is weak when its overlap duty cycle is below this × the maximum.
    duty_cycle_period : int
        Averaging window of the duty cycles, in steps.
    boost_strength : float
        ``β`` of the boost factors; 0 disables boosting (htm.core's default; ours is 1).
    seed : int
        Seed of the pools, initial permanences and tie order.

    Examples
    --------
    >>> sp = SpatialPooler(input_size=256, columns=128, active=6, seed=1)
    >>> sp(SDR(256, range(20)), learn=True).active
    6
    """

    _UPDATE_PERIOD = 50  # steps between refreshes of the minimum overlap duty cycle

    def __init__(
        self,
        input_size: int,
        columns: int,
        active: int,
        potential_radius: int | None = None,
        potential_pct: float = 0.5,
        init_connected_pct: float = 0.5,
        stimulus_threshold: int = 0,
        syn_perm_connected: float = 0.1,
        syn_perm_active_inc: float = 0.05,
        syn_perm_inactive_dec: float = 0.008,
        syn_perm_below_stimulus_inc: float | None = None,
        min_pct_overlap_duty_cycles: float = 0.001,
        duty_cycle_period: int = 1000,
        boost_strength: float = 1.0,
        seed: int = 0,
    ) -> None:
        if int(input_size) < 1 or int(columns) < 1:
            raise ParameterError(
                f"input_size and columns must be >= 1, got {input_size} and {columns}"
            )
        if not 1 <= int(active) <= int(columns):
            raise ParameterError(f"active must lie in [1, columns={columns}], got {active}")
        if potential_radius is not None and int(potential_radius) < 0:
            raise ParameterError(f"potential_radius must be >= 0 or None, got {potential_radius}")
        for name, v in (
            ("potential_pct", potential_pct), ("init_connected_pct", init_connected_pct),
            ("syn_perm_connected", syn_perm_connected),
            ("syn_perm_active_inc", syn_perm_active_inc),
            ("syn_perm_inactive_dec", syn_perm_inactive_dec),
            ("min_pct_overlap_duty_cycles", min_pct_overlap_duty_cycles),
        ):  # fmt: skip
            check_range(name, v, 0.0, 1.0)
        if syn_perm_below_stimulus_inc is not None:
            check_range("syn_perm_below_stimulus_inc", syn_perm_below_stimulus_inc, 0.0, 1.0)
        check_range("boost_strength", boost_strength, 0.0)
        if int(duty_cycle_period) < 1:
            raise ParameterError(f"duty_cycle_period must be >= 1, got {duty_cycle_period}")
        self.input_size, self.columns, self.active = int(input_size), int(columns), int(active)
        self.stimulus_threshold = int(stimulus_threshold)
        self.syn_perm_connected = float(syn_perm_connected)
        self.syn_perm_active_inc = float(syn_perm_active_inc)
        self.syn_perm_inactive_dec = float(syn_perm_inactive_dec)
        self.syn_perm_below_stimulus_inc = (
            self.syn_perm_connected / 10
            if syn_perm_below_stimulus_inc is None
            else float(syn_perm_below_stimulus_inc)
        )
        self.syn_perm_trim = self.syn_perm_active_inc / 2
        self.min_pct_overlap_duty_cycles = float(min_pct_overlap_duty_cycles)
        self.duty_cycle_period = int(duty_cycle_period)
        self.boost_strength = float(boost_strength)
        rng = np.random.default_rng(seed)
        self._build_pools(rng, potential_radius, float(potential_pct), float(init_connected_pct))
        self._tie_rank = rng.permutation(self.columns).astype(np.int64)
        self.overlap_duty_cycles = np.zeros(self.columns)
        self.active_duty_cycles = np.zeros(self.columns)
        self.min_overlap_duty_cycles = np.zeros(self.columns)
        self.boost_factors = np.ones(self.columns)
        self.overlaps = np.zeros(self.columns, np.int32)
        self.iteration = 0
        self.learn_iteration = 0

    def _build_pools(self, rng, radius, pct, connected_pct) -> None:
        N, C = self.input_size, self.columns
        pools = []
        for c in range(C):
            if radius is None or 2 * radius + 1 >= N:
                cand = np.arange(N)
            else:
                centre = int(round((c + 0.5) * N / C - 0.5))
                cand = np.arange(centre - radius, centre + radius + 1) % N
            n_pool = max(1, int(round(pct * cand.size)))
            pools.append(np.sort(rng.choice(cand, n_pool, replace=False)))
        col = np.repeat(np.arange(C, dtype=np.int32), [p.size for p in pools])
        inp = np.concatenate(pools).astype(np.int32)
        # initial permanences: a share connected in [conn, 1), the rest in [0, conn)
        conn = self.syn_perm_connected
        u, v = rng.random(inp.size), rng.random(inp.size)
        perm = np.where(u < connected_pct, conn + v * (1.0 - conn), conn * v)
        perm[perm < self.syn_perm_trim] = 0.0
        # column-major storage (pools were built column by column, inputs sorted)
        self._col_inp = inp
        self._perm = perm.astype(np.float32)
        self._col_ptr = np.zeros(C + 1, np.int64)
        np.cumsum(np.bincount(col, minlength=C), out=self._col_ptr[1:])
        self._col = col
        # input-major mirror for counting overlaps
        order = np.lexsort((col, inp))
        self._in_col = np.ascontiguousarray(col[order])
        self._in_ptr = np.zeros(N + 1, np.int64)
        np.cumsum(np.bincount(inp, minlength=N), out=self._in_ptr[1:])
        self._col_pos = np.empty(inp.size, np.int64)
        self._col_pos[order] = np.arange(inp.size)
        self._in_conn = np.zeros(inp.size, np.uint8)
        self._sync_connected()

    def _sync_connected(self) -> None:
        conn = self._perm >= np.float32(self.syn_perm_connected)
        self._in_conn[self._col_pos] = conn

    # ------------------------------------------------------------------ inspection
    def permanences(self) -> np.ndarray:
        """Dense ``[columns, input_size]`` float32 permanences (0 outside the pools)."""
        out = np.zeros((self.columns, self.input_size), np.float32)
        out[self._col, self._col_inp] = self._perm
        return out

    def potential_pools(self) -> np.ndarray:
        """Dense ``[columns, input_size]`` bool mask of the potential pools."""
        out = np.zeros((self.columns, self.input_size), bool)
        out[self._col, self._col_inp] = True
        return out

    def set_permanences(self, dense: np.ndarray) -> None:
        """Load permanences from a dense ``[columns, input_size]`` array (pools only)."""
        arr = np.asarray(dense, dtype=np.float32)
        if arr.shape != (self.columns, self.input_size):
            raise ParameterError(
                f"dense must have shape ({self.columns}, {self.input_size}), got {arr.shape}"
            )
        if not np.all((arr >= 0) & (arr <= 1)):
            raise ParameterError("permanences must lie in [0, 1]")
        self._perm[:] = arr[self._col, self._col_inp]
        self._sync_connected()

    def connected_counts(self) -> np.ndarray:
        """Connected synapses per column."""
        conn = self._perm >= np.float32(self.syn_perm_connected)
        return np.bincount(self._col[conn], minlength=self.columns)

    # ------------------------------------------------------------------ step
    def _select(self, score: np.ndarray) -> np.ndarray:
        # exactly `active` winners: all above the k-th score, then the tied ones in tie order
        k, C = self.active, self.columns
        kth = np.partition(score, C - k)[C - k]
        above = np.flatnonzero(score > kth)
        tied = np.flatnonzero(score == kth)
        take = tied[np.argsort(self._tie_rank[tied], kind="stable")[: k - above.size]]
        winners = np.sort(np.concatenate([above, take]))
        if self.stimulus_threshold > 0:
            winners = winners[self.overlaps[winners] >= self.stimulus_threshold]
        return winners

    def compute(self, x: SDRLike, learn: bool = True) -> SDR:
        """Map an input SDR to the SDR of winning columns (and learn when asked).

        Parameters
        ----------
        x : SDR, index array or dense bool/float vector of ``input_size`` bits
        learn : bool
            Adapt permanences, duty cycles and boost factors.

        Notes
        -----
        Counters (``op_counts()``): ``synops`` = the *potential* synapses of the active
        inputs, each of which the overlap pass reads and tests (its permanence against the
        connected threshold), not only the connected ones that add to an overlap; an
        HTM implementation scanning a potential pool does this work. ``spikes`` = winning
        columns, ``events_in`` = active inputs. Learning's permanence updates are not
        counted.
        """
        inp = as_sdr(x, self.input_size, "x")
        active_inputs = np.ascontiguousarray(inp.sparse, dtype=np.int64)
        ops.overlap(active_inputs, self._in_ptr, self._in_col, self._in_conn, self.overlaps)
        score = self.overlaps * self.boost_factors if learn else self.overlaps.astype(float)
        winners = self._select(score)
        self.iteration += 1
        fan_out = int((self._in_ptr[active_inputs + 1] - self._in_ptr[active_inputs]).sum())
        self.count_ops(
            synops=fan_out,
            spikes=int(winners.size),
            events_in=int(active_inputs.size),
            inputs_in=self.input_size,
        )
        if learn:
            self._learn(inp, winners)
        return SDR._trusted(self.columns, winners)

    __call__ = compute

    def _learn(self, inp: SDR, winners: np.ndarray) -> None:
        self.learn_iteration += 1
        conn = np.float32(self.syn_perm_connected)
        ops.learn(
            winners, inp.dense, self._col_ptr, self._col_inp, self._col_pos, self._perm,
            self._in_conn, conn, self.syn_perm_active_inc, self.syn_perm_inactive_dec,
            self.syn_perm_trim,
        )  # fmt: skip
        period = min(self.duty_cycle_period, self.iteration)
        won = np.zeros(self.columns)
        won[winners] = 1.0
        self.overlap_duty_cycles = (
            self.overlap_duty_cycles * (period - 1) + (self.overlaps > 0)
        ) / period
        self.active_duty_cycles = (self.active_duty_cycles * (period - 1) + won) / period
        weak = np.flatnonzero(self.overlap_duty_cycles < self.min_overlap_duty_cycles)
        if weak.size:
            ops.bump(weak, self._col_ptr, self._col_pos, self._perm, self._in_conn, conn,
                      self.syn_perm_below_stimulus_inc)  # fmt: skip
        if self.boost_strength > 0:
            target = self.active / self.columns
            self.boost_factors = np.exp((target - self.active_duty_cycles) * self.boost_strength)
        if self.iteration % self._UPDATE_PERIOD == 0:
            self.min_overlap_duty_cycles[:] = (
                self.min_pct_overlap_duty_cycles * self.overlap_duty_cycles.max()
            )
