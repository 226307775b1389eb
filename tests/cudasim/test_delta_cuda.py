"""The CUDA delta kernels (run by Numba's CUDA simulator) equal the CPU kernels.

Run by tests/test_cudasim.py in a child process with NUMBA_ENABLE_CUDASIM=1 (the
simulator must be switched on before numba is imported); skipped in a plain run.
"""

import numpy as np
import pytest
from numba import cuda

from neurosparse.kernels import (
    delta_accumulate,
    delta_accumulate_cuda,
    delta_encode,
    delta_encode_cuda,
    delta_rnn,
    delta_rnn_cuda,
)

pytestmark = pytest.mark.skipif(not cuda.is_available(), reason="needs NUMBA_ENABLE_CUDASIM=1")


def test_encode_cuda_equals_cpu():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(6, 2, 37)).cumsum(0).astype(np.float32)
    ref0 = rng.normal(size=(2, 37)).astype(np.float32)
    thr = rng.uniform(0, 1.2, 37).astype(np.float32)
    want_d, want_r, _, _, _ = delta_encode.encode(x, ref0, thr)
    delta = np.empty_like(x)
    ref = np.empty_like(ref0)
    bad = np.zeros(1, np.int32)
    delta_encode_cuda.launch_encode(x, ref0, thr, delta, ref, bad, cuda.stream())
    np.testing.assert_array_equal(delta, want_d)
    np.testing.assert_array_equal(ref, want_r)
    assert bad[0] == 0
    x[2, 1, 5] = np.nan
    delta_encode_cuda.launch_encode(x, ref0, thr, delta, ref, bad, cuda.stream())
    assert bad[0] == 1


def test_running_sum_cuda_equals_cpu():
    rng = np.random.default_rng(1)
    inc = rng.normal(size=(9, 300)).astype(np.float32)
    z0 = rng.normal(size=300).astype(np.float32)
    for reverse in (False, True):
        out = np.empty_like(inc)
        delta_accumulate_cuda.launch_running_sum(inc, z0, out, reverse, cuda.stream())
        np.testing.assert_allclose(out, delta_accumulate.accumulate(inc, z0, reverse),
                                   rtol=0, atol=1e-6)  # fmt: skip


@pytest.mark.parametrize("cell", [0, 1])
def test_rnn_cuda_equals_cpu(cell):
    rng = np.random.default_rng(2 + cell)
    # hidden size above the simulator's block size: threads own several units
    n_t, n_b, n_h = 5, 2, 45
    gh = (3 + cell) * n_h
    f = np.float32
    mx = rng.normal(0, 0.8, (n_t, n_b, gh)).astype(f)
    wt = rng.normal(0, 0.3, (n_h, gh)).astype(f)
    thr = rng.uniform(0, 0.1, n_h).astype(f)
    h0 = rng.normal(0, 0.5, (n_b, n_h)).astype(f)
    c0 = rng.normal(0, 0.5, (n_b, n_h)).astype(f) if cell else np.zeros_like(h0)
    href0 = h0 + rng.normal(0, 0.05, (n_b, n_h)).astype(f)
    mh0 = rng.normal(0, 0.5, (n_b, gh)).astype(f)
    want = delta_rnn.run(mx, wt, thr, h0, c0, href0, mh0, cell)
    got = [np.empty_like(a) for a in want]
    delta_rnn_cuda.launch(mx, wt, thr, h0, c0, href0, mh0, cell, *got, cuda.stream())
    names = ["h_seq", "dh", "c_out", "href_out", "mh_out"]
    for name, g, w in zip(names, got, want):
        np.testing.assert_allclose(g, w, atol=2e-6, err_msg=name)
    np.testing.assert_array_equal(got[5], want[5])  # deltas sent per step
    assert 0 < want[5].sum() < n_t * n_b * n_h
