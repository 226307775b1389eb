"""AssociativeMemory (Sparsey-style): one-shot storage, noisy recall, similarity → overlap.

The expectations come from the model's definition (REFERENCES §7: one winner per
module, binary weights, codes in superposition) and from the statistics of random SDRs
(two random codes share ``Q / K`` modules on average). Thresholds were measured with the
seeds below (values in each test) and carry a margin.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from neurosparse import sdr
from neurosparse.errors import DTypeError, InputValueError, ParameterError, ShapeError

N, A = 1024, 40  # input bits, active input bits


def _memory(n_items: int, seed: int = 0, **kw):
    mem = sdr.AssociativeMemory(input_size=N, code_size=2048, active=40, seed=seed, **kw)
    rng = np.random.default_rng(seed + 100)
    items = [sdr.random_sdr(N, A, rng) for _ in range(n_items)]
    codes = mem.store(items, label=list(range(n_items)))
    return mem, items, codes, rng


def test_one_shot_storage_recalls_every_item_exactly():
    mem, items, codes, _ = _memory(300)
    assert mem.n_stored == 300 and mem.codes.shape == (300, 40)
    recalled = mem.recall(items)
    assert [r == c for r, c in zip(recalled, codes)] == [True] * 300
    assert mem.predict(items) == list(range(300))
    # novel items got codes that overlap each other only by chance (Q/K = 40/51 = 0.78)
    c = mem.codes
    pair_overlap = (c[:-1] == c[1:]).sum(1).mean()
    assert pair_overlap < 2 * mem.chance_overlap  # measured 0.84


def test_a_single_item_is_learned_in_one_presentation():
    mem = sdr.AssociativeMemory(input_size=N, code_size=2048, active=40, seed=3)
    x = sdr.random_sdr(N, A, seed=4)
    code = mem.store(x, label="x")
    assert mem.recall(x) == code
    assert mem.familiarity(x) == pytest.approx(1.0)
    assert mem.predict(x) == "x"


@pytest.mark.parametrize("seed", [0, 1])
def test_noisy_recall_stays_accurate_and_degrades_with_noise(seed):
    mem, items, codes, rng = _memory(600, seed=seed)
    chance = 1 / 600
    accuracy, code_overlap = [], []
    for frac in (0.1, 0.2, 0.3, 0.6):
        noisy = [sdr.add_noise(x, frac, seed=rng) for x in items]
        accuracy.append(np.mean(np.array(mem.predict(noisy)) == np.arange(600)))
        code_overlap.append(np.mean([sdr.overlap(r, c) for r, c in zip(mem.recall(noisy), codes)]))
    # measured (seeds 0, 1): accuracy 1.0 at 10, 20, 30 and 60 % moved bits;
    # recalled-code overlap 40.0, 40.0, 39.99, 31.2-31.4 of 40 modules
    assert min(accuracy[:3]) >= 0.97 and accuracy[3] >= 0.8
    assert min(accuracy) > 100 * chance
    assert code_overlap[0] >= code_overlap[1] >= code_overlap[2] > code_overlap[3]
    assert code_overlap[2] > 36 and code_overlap[3] < 35


def test_code_overlap_rises_with_input_similarity():
    mem, items, codes, rng = _memory(300, seed=2)
    shared, overlaps = [], []
    for i in range(4):
        for keep in range(0, A + 1, 4):
            for _ in range(3):
                probe = sdr.add_noise(items[i], count=A - keep, seed=rng)
                shared.append(sdr.overlap(probe, items[i]))
                # the code the learning rule would pick (familiarity-dependent noise)
                overlaps.append(sdr.overlap(mem.encode(probe), codes[i]))
    shared, overlaps = np.array(shared), np.array(overlaps)
    rho = spearmanr(shared, overlaps)[0]
    assert rho > 0.8  # measured 0.93
    assert overlaps[shared == A].mean() == 40  # a stored input maps to its own code
    # unrelated inputs: chance overlap Q/K = 0.78 modules
    novel = mem.encode([sdr.random_sdr(N, A, rng) for _ in range(50)])
    novel_overlap = np.array([[sdr.overlap(n, c) for c in codes[:20]] for n in novel]).mean()
    assert abs(novel_overlap - mem.chance_overlap) < 0.3  # measured 0.74 (chance 0.78)
    assert overlaps[shared <= 8].mean() < 2.5  # measured 0.78
    low, mid, high = (
        overlaps[(shared >= lo) & (shared < hi)].mean() for lo, hi in ((8, 16), (16, 28), (28, 40))
    )
    assert low < mid < high  # measured 1.2, 13.2, 39.9


def test_familiarity_separates_stored_from_novel():
    mem, items, _, rng = _memory(200, seed=5)
    stored = mem.familiarity(items[:50])
    novel = mem.familiarity([sdr.random_sdr(N, A, rng) for _ in range(50)])
    assert np.allclose(stored, 1.0)
    assert novel.max() < 0.5  # measured mean 0.17, max 0.21


def test_invariants_one_winner_per_module_binary_weights_determinism():
    mem, items, codes, rng = _memory(100, seed=7)
    k = mem.cells_per_module
    assert mem.code_size == 40 * k == 2040  # 2048 rounded down to a multiple of 40
    for code in codes + mem.recall([sdr.add_noise(x, 0.5, seed=rng) for x in items]):
        assert code.size == mem.code_size and code.active == 40
        assert np.array_equal(code.sparse // k, np.arange(40))  # one winner in each module
    assert mem.weights.dtype == bool
    # each stored item wrote exactly its active bits × its code cells
    expect = np.zeros_like(mem.weights)
    for x, c in zip(items, codes):
        expect[np.ix_(x.sparse, c.sparse)] = True
    assert np.array_equal(mem.weights, expect)
    again, items2, codes2, _ = _memory(100, seed=7)
    assert codes2 == codes and np.array_equal(again.weights, mem.weights)
    other, _, codes3, _ = _memory(100, seed=8)
    assert codes3 != codes


def test_input_forms_agree():
    mem, items, codes, _ = _memory(20, seed=9)
    x = items[3]
    dense_bool = x.dense
    forms = [
        x,
        x.sparse,
        x.sparse.tolist(),
        dense_bool,
        dense_bool.astype(np.float32),
        torch.from_numpy(dense_bool.astype(np.float32)),
    ]
    for form in forms:
        assert mem.recall(form) == codes[3]
    batch = np.stack([items[i].dense for i in range(5)]).astype(np.float64)
    assert mem.recall(batch) == codes[:5]
    assert mem.recall(np.stack([items[i].sparse for i in range(5)])) == codes[:5]
    assert np.allclose(mem.match(batch)[2], mem.match(items[2]))


def test_errors_name_the_problem():
    mem = sdr.AssociativeMemory(input_size=64, code_size=100, active=10, seed=0)
    with pytest.raises(ShapeError, match="input_size=64"):
        mem.store(np.zeros(65, dtype=bool))
    with pytest.raises(ShapeError, match="size 32"):
        mem.store(sdr.random_sdr(32, 4, seed=0))
    with pytest.raises(InputValueError, match="binary"):
        mem.store(np.full(64, 0.5))
    with pytest.raises(InputValueError, match="no active bits"):
        mem.store(np.zeros(64, dtype=bool))
    with pytest.raises(InputValueError, match=r"\[0, 63\]"):
        mem.store(np.array([3, 64]))
    with pytest.raises(DTypeError, match="dtype"):
        mem.store(np.array(["a", "b"]))
    with pytest.raises(ShapeError, match="3 entries"):
        mem.store(np.eye(64, dtype=bool)[:2], label=[0, 1, 2])
    with pytest.raises(ParameterError, match="labels"):
        mem.predict(np.eye(64, dtype=bool)[0])
    with pytest.raises(ShapeError, match="shape"):
        mem.recall(np.zeros((2, 2, 64), dtype=bool))
    with pytest.raises(ParameterError, match="code_size"):
        sdr.AssociativeMemory(input_size=64, code_size=15, active=10)
    with pytest.raises(ParameterError, match="familiarity_floor"):
        sdr.AssociativeMemory(input_size=64, code_size=100, active=10, familiarity_floor=1.0)
    with pytest.raises(ParameterError, match="beta"):
        sdr.AssociativeMemory(input_size=64, code_size=100, active=10, beta=-1.0)
