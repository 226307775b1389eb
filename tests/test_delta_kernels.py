"""The delta kernels (kernels/delta_*.py, CPU) equal plain NumPy / torch references.

The CUDA twins are held to the same references in tests/cudasim/test_delta_cuda.py.
"""

import numpy as np
import pytest
import torch

from neurosparse.kernels import delta_accumulate, delta_encode, delta_rnn
from neurosparse.ops.delta_rnn import GRU, LSTM, RecurrentState, reference_sequence


def numpy_encode(x, ref0, thr):
    """The delta rule, one element at a time (the definition, nothing vectorised)."""
    n_t, n_b, n_u = x.shape
    delta = np.zeros_like(x)
    ref = ref0.copy()
    for t in range(n_t):
        for b in range(n_b):
            for u in range(n_u):
                d = np.float32(x[t, b, u] - ref[b, u])
                if abs(d) > thr[u]:
                    delta[t, b, u] = d
                    ref[b, u] = x[t, b, u]
    return delta, ref


@pytest.mark.parametrize("n_u", [7, 1030])  # one unit block, and two blocks (1024 + 6)
def test_encode_equals_definition(n_u):
    rng = np.random.default_rng(n_u)
    x = rng.normal(size=(9, 2, n_u)).cumsum(0).astype(np.float32)
    x[3, 1, :5] = x[2, 1, :5] + 1.0  # exact ±1 deltas for the unit count (if sent)
    ref0 = rng.normal(size=(2, n_u)).astype(np.float32)
    thr = rng.uniform(0, 1.5, n_u).astype(np.float32)
    thr[:3] = 0.0
    delta, ref, rows, units, bad = delta_encode.encode(x, ref0, thr)
    want_d, want_r = numpy_encode(x, ref0, thr)
    np.testing.assert_array_equal(delta, want_d)
    np.testing.assert_array_equal(ref, want_r)
    np.testing.assert_array_equal(rows, (want_d != 0).sum(2).reshape(-1))
    assert units.sum() == (np.abs(want_d) == 1).sum()
    assert not bad


def test_encode_flags_nan_and_inf():
    x = np.zeros((3, 1, 4), np.float32)
    ref0 = np.zeros((1, 4), np.float32)
    thr = np.zeros(4, np.float32)
    assert not delta_encode.encode(x, ref0, thr)[4]
    x[1, 0, 2] = np.nan
    assert delta_encode.encode(x, ref0, thr)[4]
    x[1, 0, 2] = -np.inf
    assert delta_encode.encode(x, ref0, thr)[4]


@pytest.mark.parametrize("reverse", [False, True])
def test_running_sum_equals_cumsum(reverse):
    rng = np.random.default_rng(0)
    inc = rng.normal(size=(50, 700)).astype(np.float32)
    z0 = rng.normal(size=700).astype(np.float32)
    got = delta_accumulate.accumulate(inc, z0, reverse)
    a = inc.astype(np.float64)[::-1] if reverse else inc.astype(np.float64)
    want = np.cumsum(a, 0)[::-1] if reverse else np.cumsum(a, 0)
    np.testing.assert_allclose(got, (want + z0).astype(np.float32), rtol=0, atol=1e-6)


def test_running_sum_does_not_drift():
    # 5000 steps of +0.1: float32 cumsum drifts by ~1e-3, the float64 running sum does not
    inc = np.full((5000, 3), 0.1, np.float32)
    got = delta_accumulate.accumulate(inc, None)[-1]
    exact = 5000 * np.float64(np.float32(0.1))
    assert abs(np.cumsum(inc, 0, dtype=np.float32)[-1, 0] - exact) > 1e-3
    np.testing.assert_allclose(got, exact, rtol=1e-7)


@pytest.mark.parametrize("cell", [GRU, LSTM])
def test_rnn_kernel_equals_torch_loop(cell):
    rng = np.random.default_rng(cell)
    n_t, n_b, n_h = 25, 3, 13
    gh = (3 if cell == GRU else 4) * n_h
    f = np.float32
    mx = rng.normal(0, 0.8, (n_t, n_b, gh)).astype(f)
    w_hh = rng.normal(0, 0.4, (gh, n_h)).astype(f)
    thr = rng.uniform(0, 0.1, n_h).astype(f)
    h0 = rng.normal(0, 0.5, (n_b, n_h)).astype(f)
    c0 = rng.normal(0, 0.5, (n_b, n_h)).astype(f) if cell == LSTM else np.zeros_like(h0)
    href0 = h0 + rng.normal(0, 0.05, (n_b, n_h)).astype(f)
    mh0 = rng.normal(0, 0.5, (n_b, gh)).astype(f)
    h_seq, dh, c_out, href_out, mh_out, counts = delta_rnn.run(
        mx, np.ascontiguousarray(w_hh.T), thr, h0, c0, href0, mh0, cell
    )
    t = torch.from_numpy
    ref = reference_sequence(t(mx), t(w_hh), t(thr), RecurrentState(t(h0), t(c0), t(href0),
                             t(mh0)), cell, 0.1)  # fmt: skip
    # the send decisions are the same, so the deltas are identical; values agree to f32
    np.testing.assert_array_equal(dh != 0, ref.dh.numpy() != 0)
    np.testing.assert_allclose(h_seq, ref.h_seq.numpy(), atol=2e-6)
    np.testing.assert_allclose(dh, ref.dh.numpy(), atol=2e-6)
    np.testing.assert_allclose(href_out, ref.state.h_ref.numpy(), atol=2e-6)
    np.testing.assert_allclose(mh_out, ref.state.mh.numpy(), atol=2e-6)
    if cell == LSTM:
        np.testing.assert_allclose(c_out, ref.state.c.numpy(), atol=2e-6)
    np.testing.assert_array_equal(counts, (dh != 0).sum(2))
    assert 0 < counts.sum() < n_t * n_b * n_h  # the thresholds did suppress some deltas


@pytest.mark.parametrize("cell", [GRU, LSTM])
def test_serial_twins_give_the_parallel_kernels_bits(cell, monkeypatch):
    # a streaming step (one sample, one time step) runs the single-threaded twins; they
    # must compute what the parallel kernels compute, bit for bit
    rng = np.random.default_rng(11)
    f = np.float32
    x = rng.normal(size=(4, 3, 1030)).cumsum(0).astype(f)
    ref0 = rng.normal(size=(3, 1030)).astype(f)
    thr = rng.uniform(0, 1.0, 1030).astype(f)
    n_h = 13
    gh = (3 if cell == GRU else 4) * n_h
    mx = rng.normal(0, 0.8, (6, 1, gh)).astype(f)
    wt = rng.normal(0, 0.4, (n_h, gh)).astype(f)
    rthr = np.full(n_h, 0.05, f)
    h0, c0, href0 = (rng.normal(0, 0.3, (1, n_h)).astype(f) for _ in range(3))
    mh0 = rng.normal(0, 0.3, (1, gh)).astype(f)

    def run_all():
        enc = delta_encode.encode(x, ref0, thr)
        acc = delta_accumulate.accumulate(x.reshape(4, -1), ref0.reshape(-1))
        rnn = delta_rnn.run(mx, wt, rthr, h0, c0, href0, mh0, cell)
        return [a for a in (*enc[:4], acc, *rnn)]

    assert x.size < delta_encode.SERIAL_BELOW  # these sizes take the twins
    serial = run_all()
    for mod, name in ((delta_encode, "delta_encode"), (delta_accumulate, "running_sum"),
                      (delta_rnn, "rnn_sequence")):  # fmt: skip
        monkeypatch.setattr(mod, f"{name}_serial", getattr(mod, name))
    parallel = run_all()
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)
