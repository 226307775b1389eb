"""SDR type, set utilities and encoders, checked against hand-computed cases and numpy sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurosparse import sdr
from neurosparse.errors import DTypeError, InputValueError, ParameterError, ShapeError
from neurosparse.sdr import SDR, as_sdr, random_sdr


def test_index_and_dense_forms_round_trip():
    x = SDR(10, [7, 1, 1, 3])
    assert x.sparse.tolist() == [1, 3, 7]
    assert x.dense.tolist() == [False, True, False, True, False, False, False, True, False, False]
    assert SDR.from_dense(x.dense) == x
    assert SDR.from_dense(x.to_tensor()) == x
    assert x.to_tensor().sum().item() == 3 and x.active == 3
    assert x.sparsity == pytest.approx(0.3)
    with pytest.raises(InputValueError, match=r"\[0, 9\]"):
        SDR(10, [10])


def test_as_sdr_rule_int_is_index_float_is_dense():
    assert as_sdr(np.array([0, 2]), size=4).sparse.tolist() == [0, 2]
    assert as_sdr(np.array([0.0, 2.0, 0.0, 1.0])).sparse.tolist() == [1, 3]
    assert as_sdr(torch.tensor([True, False, True])).sparse.tolist() == [0, 2]
    with pytest.raises(ParameterError, match="size"):
        as_sdr(np.array([0, 2]))
    with pytest.raises(ShapeError):
        as_sdr(np.zeros(5, bool), size=4)


def test_overlap_union_intersection_match_against_python_sets():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b, c = (random_sdr(200, 30, rng) for _ in range(3))
        sa, sb, sc = (set(x.sparse.tolist()) for x in (a, b, c))
        assert sdr.overlap(a, b) == len(sa & sb)
        assert set(sdr.union(a, b, c).sparse.tolist()) == sa | sb | sc
        assert set(sdr.intersection(a, b, c).sparse.tolist()) == sa & sb & sc
        assert sdr.match(a, b, len(sa & sb)) and not sdr.match(a, b, len(sa & sb) + 1)
    assert sdr.overlap([1, 2, 3], np.array([3, 4]), size=5) == 1


def test_random_sdr_exact_sparsity_and_seed():
    x = random_sdr(2048, 40, seed=3)
    assert x.active == 40 and x == random_sdr(2048, 40, seed=3)
    assert x != random_sdr(2048, 40, seed=4)


def test_noise_keeps_sparsity_and_moves_exactly_v_bits():
    x = random_sdr(500, 50, seed=1)
    y = sdr.add_noise(x, count=12, seed=2)
    assert y.active == 50 and sdr.overlap(x, y) == 38
    z = sdr.add_noise(x, fraction=0.5, seed=2)
    assert sdr.overlap(x, z) == 25
    d = sdr.dropout(x, fraction=0.2, seed=5)
    assert d.active == 40 and sdr.overlap(x, d) == 40
    with pytest.raises(ParameterError, match="exactly one"):
        sdr.add_noise(x)


def test_capacity_and_expected_overlap():
    assert sdr.capacity(5, 2) == 10
    assert f"{sdr.capacity(2048, 40):.3g}" == "2.37e+84"
    assert sdr.expected_overlap(2048, 40) == pytest.approx(1600 / 2048)
    rng = np.random.default_rng(9)
    pairs = [(random_sdr(256, 32, rng), random_sdr(256, 32, rng)) for _ in range(3000)]
    mean = np.mean([sdr.overlap(a, b) for a, b in pairs])
    assert mean == pytest.approx(32 * 32 / 256, abs=0.15)


def test_scalar_encoder_hand_cases():
    enc = sdr.ScalarEncoder(size=10, active=3, min=0, max=7)  # 8 buckets, one per unit
    assert enc(0).sparse.tolist() == [0, 1, 2]
    assert enc(7).sparse.tolist() == [7, 8, 9]
    assert enc(3.4).sparse.tolist() == [3, 4, 5]
    assert enc(100).sparse.tolist() == [7, 8, 9]  # clipped
    assert enc(float("nan")).active == 0
    with pytest.raises(InputValueError, match="clip"):
        sdr.ScalarEncoder(10, 3, 0, 7, clip=False)(8)
    per = sdr.ScalarEncoder(size=10, active=3, min=0, max=10, periodic=True)
    assert per(9).sparse.tolist() == [0, 1, 9]
    assert per(19) == per(9)


def test_scalar_encoder_overlap_falls_linearly_with_distance():
    enc = sdr.ScalarEncoder(size=2048, active=40, min=0, max=100)
    base = enc(50.0)
    for k in range(0, 45, 5):
        other = enc(50.0 + k * enc.resolution)
        assert sdr.overlap(base, other) == max(40 - k, 0)


def test_rdse_fixed_sparsity_smooth_overlap_and_determinism():
    enc = sdr.RDSE(size=1000, active=40, resolution=1.0, seed=7)
    a = enc(10.2)
    assert a.active == 40
    assert enc(10.9) == a  # same bucket
    assert sdr.RDSE(1000, 40, 1.0, seed=7)(10.2) == a
    assert sdr.RDSE(1000, 40, 1.0, seed=8)(10.2) != a
    # buckets d apart share active-d hashed keys: overlap >= 40 - d (collisions only add)
    for d in (1, 5, 20):
        assert sdr.overlap(a, enc(10.2 + d)) >= 40 - d
    far = [sdr.overlap(a, enc(10.2 + d)) for d in range(100, 140)]
    assert np.mean(far) < 5  # unrelated buckets overlap like random SDRs (a^2/n = 1.6)
    # collisions are resolved: a tiny output still gets exactly `active` bits
    small = sdr.RDSE(size=50, active=40, resolution=1.0)
    assert all(small(v).active == 40 for v in range(10))


def test_category_encoder_block_and_random_codes():
    enc = sdr.CategoryEncoder(["cat", "dog", "fish"], active=4)
    assert enc.size == 12
    assert enc("dog").sparse.tolist() == [4, 5, 6, 7]
    assert sdr.overlap(enc("cat"), enc("fish")) == 0
    with pytest.raises(InputValueError, match="unknown category"):
        enc("bird")
    rnd = sdr.CategoryEncoder(50, active=40, size=2048, seed=1)
    codes = [rnd(i) for i in range(50)]
    assert all(c.active == 40 for c in codes)
    mean = np.mean([sdr.overlap(codes[i], codes[j]) for i in range(50) for j in range(i)])
    assert mean == pytest.approx(40 * 40 / 2048, abs=0.3)
    assert math.isclose(sdr.CategoryEncoder(50, 40, 2048, seed=1)(3).sparsity, 40 / 2048)


def test_scalar_encoder_rounds_half_up_like_htm_core():
    # 51 buckets over [0, 100]: resolution 2, so every odd integer is a bucket mid-point.
    # htm.core: bucket = C round((v − min) / resolution) = (v + 1) / 2 for odd v. Python's
    # half-to-even round gave 1 → 0, 3 → 2, 5 → 2, 7 → 4: codes of 3 and 5 were equal
    # and those of 5 and 7 disjoint although both pairs are 2 apart.
    enc = sdr.ScalarEncoder(size=52, active=2, min=0, max=100)
    assert enc.resolution == 2.0
    for v in range(1, 100, 2):
        assert enc.bucket(v) == (v + 1) // 2, v
    # equally spaced inputs, equal overlaps: adjacent buckets share 1 of the 2 bits
    assert {sdr.overlap(enc(v), enc(v + 2)) for v in range(1, 98, 2)} == {1}
    assert enc.bucket(100) == 50 and enc.bucket(0) == 0


def test_encoders_refuse_values_they_cannot_place():
    per = sdr.ScalarEncoder(size=10, active=3, min=0, max=10, periodic=True)
    for v in (float("inf"), float("-inf")):  # wrapping inf gave NaN and a bare ValueError
        with pytest.raises(InputValueError, match="finite"):
            per(v)
    rdse = sdr.RDSE(size=100, active=5, resolution=1.0)
    with pytest.raises(InputValueError, match="resolution"):  # was a bare OverflowError
        rdse(1e300)
    with pytest.raises(ParameterError, match="active"):  # was "size ... got 0"
        sdr.CategoryEncoder(3, active=0)


def test_index_and_dense_forms_refuse_values_that_would_be_misread():
    # float indices were truncated (2.7 -> 2) and bools read as the indices 0 and 1
    with pytest.raises(InputValueError, match="whole numbers"):
        SDR(10, [1.0, 2.7])
    assert SDR(10, np.array([1.0, 3.0])).sparse.tolist() == [1, 3]  # integral floats are fine
    with pytest.raises(DTypeError, match="from_dense"):
        SDR(4, np.array([True, False, True, True]))
    # NaN / inf are non-zero and were counted as active bits
    for bad in (np.array([0.0, np.nan, 1.0]), torch.tensor([0.0, float("inf"), 1.0])):
        with pytest.raises(InputValueError, match="NaN"):
            as_sdr(bad)
        with pytest.raises(InputValueError, match="NaN"):
            SDR.from_dense(bad)
    with pytest.raises(InputValueError, match="NaN"):
        sdr.overlap(np.array([1.0, np.nan]), np.array([1.0, 0.0]))
