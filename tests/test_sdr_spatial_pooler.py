"""SpatialPooler: the Numba kernels against a dense numpy re-statement of every rule,
hand-computed learning, fixed output sparsity, and boosting that uses every column."""

from __future__ import annotations

import numpy as np
import pytest

from neurosparse.errors import ParameterError
from neurosparse.sdr import SDR, SpatialPooler, add_noise, overlap, random_sdr


class _DenseSP:
    """Every rule of the spatial pooler on dense [columns, inputs] arrays."""

    def __init__(self, sp: SpatialPooler) -> None:
        self.sp = sp
        self.perm = sp.permanences().copy()
        self.pool = sp.potential_pools()
        self.C = sp.columns
        self.od = np.zeros(self.C)
        self.ad = np.zeros(self.C)
        self.min_od = np.zeros(self.C)
        self.boost = np.ones(self.C)
        self.it = 0

    def step(self, x: np.ndarray, learn: bool) -> np.ndarray:
        sp = self.sp
        conn = (self.perm >= np.float32(sp.syn_perm_connected)) & self.pool
        ov = conn.astype(np.int64) @ x.astype(np.int64)
        score = ov * self.boost if learn else ov.astype(float)
        # rank by score, then by the pooler's fixed tie order
        order = np.lexsort((sp._tie_rank, -score))
        winners = np.sort(order[: sp.active])
        self.it += 1
        if learn:
            delta = np.where(x, sp.syn_perm_active_inc, -sp.syn_perm_inactive_dec)
            rows = self.perm[winners].astype(np.float64) + delta
            rows = np.clip(rows, 0.0, 1.0)
            rows[rows < sp.syn_perm_trim] = 0.0
            self.perm[winners] = np.where(self.pool[winners], rows, 0.0).astype(np.float32)
            period = min(sp.duty_cycle_period, self.it)
            won = np.isin(np.arange(self.C), winners)
            self.od = (self.od * (period - 1) + (ov > 0)) / period
            self.ad = (self.ad * (period - 1) + won) / period
            weak = self.od < self.min_od
            raised = self.perm[weak].astype(np.float64) + sp.syn_perm_below_stimulus_inc
            bumped = np.minimum(raised, 1.0)
            self.perm[weak] = np.where(self.pool[weak], bumped, 0.0).astype(np.float32)
            self.boost = np.exp((sp.active / self.C - self.ad) * sp.boost_strength)
            if self.it % 50 == 0:
                self.min_od[:] = sp.min_pct_overlap_duty_cycles * self.od.max()
        return winners


@pytest.mark.parametrize("radius", [None, 6])
def test_kernels_match_dense_reference_over_many_steps(radius):
    sp = SpatialPooler(
        80, 48, active=5, potential_radius=radius, boost_strength=2.0, duty_cycle_period=30,
        min_pct_overlap_duty_cycles=0.2, seed=4,
    )  # fmt: skip
    ref = _DenseSP(sp)
    rng = np.random.default_rng(0)
    hot = rng.choice(80, 20, replace=False)  # a skewed input distribution
    for t in range(120):
        idx = rng.choice(hot, 8, replace=False) if t % 3 else rng.choice(80, 8, replace=False)
        x = np.zeros(80, bool)
        x[idx] = True
        learn = t % 7 != 6
        out = sp(x, learn=learn)
        assert out.sparse.tolist() == ref.step(x, learn).tolist(), t
        np.testing.assert_array_equal(sp.permanences(), ref.perm)
    np.testing.assert_allclose(sp.active_duty_cycles, ref.ad)
    np.testing.assert_allclose(sp.boost_factors, ref.boost)
    assert (ref.min_od > 0).any()  # the weak-column rule was exercised


def test_pools_follow_radius_and_initial_connection_share():
    sp = SpatialPooler(1000, 100, active=4, potential_radius=20, potential_pct=0.5, seed=1)
    pools = sp.potential_pools()
    assert (pools.sum(1) == 20).all()  # round(0.5 · 41) = 20 (banker's rounding of 20.5)
    centre = np.round((np.arange(100) + 0.5) * 10 - 0.5).astype(int)
    for c in (0, 37, 99):
        dist = np.abs((np.flatnonzero(pools[c]) - centre[c] + 500) % 1000 - 500)
        assert dist.max() <= 20
    conn = sp.permanences()[pools] >= 0.1
    assert conn.mean() == pytest.approx(0.5, abs=0.05)
    everything = SpatialPooler(50, 10, active=2, potential_pct=1.0)
    assert everything.potential_pools().all()


def test_hand_computed_overlap_winner_and_hebbian_update():
    sp = SpatialPooler(4, 2, active=1, potential_pct=1.0, boost_strength=0.0)
    sp.set_permanences(np.array([[0.2, 0.05, 0.3, 0.0], [0.1, 0.1, 0.0, 0.5]]))
    out = sp(SDR(4, [0, 1]), learn=True)
    # overlaps: column 0 has connected {0, 2} → 1; column 1 has {0, 1, 3} → 2
    assert sp.overlaps.tolist() == [1, 2] and out.sparse.tolist() == [1]
    expected = np.array(
        [[0.2, 0.05, 0.3, 0.0],  # the loser is untouched
         [0.15, 0.15, 0.0, 0.492]],  # +0.05 on active inputs, −0.008 elsewhere, clip at 0
        np.float32,
    )  # fmt: skip
    np.testing.assert_allclose(sp.permanences(), expected, atol=1e-7)
    # small permanences are trimmed to 0 (below syn_perm_active_inc / 2 = 0.025)
    sp.set_permanences(np.array([[0.2, 0.05, 0.3, 0.0], [0.1, 0.1, 0.03, 0.5]]))
    sp(SDR(4, [0, 1]), learn=True)
    assert sp.permanences()[1, 2] == 0.0


def test_output_sparsity_is_fixed_and_boosting_uses_every_column():
    used = {}
    for beta in (0.0, 10.0):
        rng = np.random.default_rng(3)
        hot = rng.choice(400, 100, replace=False)  # inputs come from a quarter of the bits
        sp = SpatialPooler(400, 200, active=8, boost_strength=beta, duty_cycle_period=100, seed=2)
        seen = np.zeros(200, bool)
        for _ in range(1000):
            out = sp(SDR(400, rng.choice(hot, 20, replace=False)), learn=True)
            assert out.active == 8
            seen[out.sparse] = True
        used[beta] = int(seen.sum())
    assert used[10.0] == 200
    assert used[0.0] < 150


def test_similar_inputs_map_to_similar_outputs_and_noise_degrades_gracefully():
    rng = np.random.default_rng(5)
    sp = SpatialPooler(1024, 1024, active=20, seed=0)
    inputs = [random_sdr(1024, 40, rng) for _ in range(30)]
    for _ in range(10):
        for x in inputs:
            sp(x, learn=True)
    means = []
    for frac in (0.0, 0.1, 0.3, 0.6):
        ov = [overlap(sp(x, learn=False), sp(add_noise(x, frac, seed=rng), learn=False))
              for x in inputs]  # fmt: skip
        means.append(np.mean(ov))
    assert means[0] == 20
    assert means[0] > means[1] > means[2] > means[3]
    assert means[1] >= 12  # 10 % input noise keeps most of the code


def test_errors():
    with pytest.raises(ParameterError, match="active"):
        SpatialPooler(10, 5, active=6)
    sp = SpatialPooler(10, 5, active=2)
    with pytest.raises(ParameterError, match="shape"):
        sp.set_permanences(np.zeros((4, 10)))
    with pytest.raises(ParameterError, match="syn_perm_below_stimulus_inc"):
        SpatialPooler(10, 5, active=2, syn_perm_below_stimulus_inc=-0.1)
