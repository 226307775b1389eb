"""CPU-path internals of the event Linear: the count pass's 1-D-view twin used for Linear
inputs (``A = 1``) gives what the general 4-D pass and NumPy give; the per-thread scratch
buffer of the tiled copies never carries a value from one call into the next."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from neurosparse.kernels import event_index as ei
from neurosparse.ops import event_linear as ops


def _events(rows: int, cols: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.random((rows, cols)) < 0.2) * rng.standard_normal((rows, cols))
    spikes = rng.random((rows, cols)) < 0.1
    x[spikes] = rng.choice([-1.0, 1.0], size=int(spikes.sum()))  # ±1 events
    return x.astype(np.float32)


@pytest.mark.parametrize("shape", [(13, 70), (700, 257)])  # serial and parallel kernels
@pytest.mark.parametrize("poison", [None, np.nan, np.inf, -np.inf])
def test_flat_count_pass_equals_the_4d_pass_and_numpy(shape, poison):
    rows, cols = shape
    x = _events(rows, cols, seed=rows)
    if poison is not None:
        x[rows // 2, 3] = poison
        x[rows - 1, cols - 1] = poison
    flat = ei.scan_rows(x.reshape(rows, 1, 1, cols))  # the 1-D view path
    general = ei.scan_rows(x.reshape(rows, 1, 1, cols), np.ones(cols, np.int32))  # 4-D
    for a, b in zip(flat[:3], general[:3]):
        np.testing.assert_array_equal(a, b)
    assert flat[3] == general[3] == (-1 if poison is None else rows // 2)
    counts, unit, graded, _ = flat
    np.testing.assert_array_equal(counts, (x != 0).sum(1))
    np.testing.assert_array_equal(unit, (np.abs(x) == 1).sum(1))
    np.testing.assert_array_equal(graded, ((x != 0) & (np.abs(x) != 1)).sum(1))


def _event_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return ops.event_linear_apply(x, weight, bias, ops.index_linear(x, ops.scan_linear(x)))


def test_tiled_copy_in_scratch_sees_every_weight_and_write():
    # enough events per weight row that the forward packs Wᵀ into the scratch buffer
    gen = torch.Generator().manual_seed(5)
    x = (torch.rand(600, 48, generator=gen) < 0.9).float()
    assert int(x.sum()) >= ops.PACK_REUSE * 48
    w1, w2 = torch.randn(70, 48, generator=gen), torch.randn(70, 48, generator=gen)
    b = torch.randn(70, generator=gen)
    for w in (w1, w2, w1):  # each call packs its own weight over the last one's copy
        torch.testing.assert_close(_event_forward(x, w, b), torch.nn.functional.linear(x, w, b),
                                   rtol=1e-5, atol=1e-4)  # fmt: skip
    w1.data[:, 3] += 100.0  # a write the version counter does not see
    torch.testing.assert_close(_event_forward(x, w1, b), torch.nn.functional.linear(x, w1, b),
                               rtol=1e-5, atol=1e-3)  # fmt: skip


def test_scratch_is_per_thread_and_capped(monkeypatch):
    here = ops.scratch_f32((8, 16))
    assert np.shares_memory(here, ops.scratch_f32((4, 4)))  # one buffer per thread, reused
    there = []
    t = threading.Thread(target=lambda: there.append(ops.scratch_f32((8, 16))))
    t.start()
    t.join()
    assert not np.shares_memory(here, there[0])
    monkeypatch.setattr(ops, "SCRATCH_CAP_BYTES", 4 * 100)
    big = ops.scratch_f32((11, 10))  # over the cap: a fresh array, the buffer not grown
    assert big.shape == (11, 10) and not np.shares_memory(big, ops.scratch_f32((5, 5)))


def test_serial_twins_of_small_calls_give_the_same_bits():
    # small calls run single-threaded kernels (no parallel-region start-up); they are the
    # same code, so the outputs must match the parallel kernels bit for bit
    from neurosparse.kernels import event_linear as kl

    x = _events(9, 300, seed=2)
    counts = (x != 0).sum(1).astype(np.int32)
    rowptr = np.empty(10, np.int64)
    ei.exclusive_scan(counts, rowptr)
    serial = [np.empty(rowptr[-1], np.int32), np.empty(rowptr[-1], np.float32)]
    parallel = [np.empty(rowptr[-1], np.int32), np.empty(rowptr[-1], np.float32)]
    ei.row_fill_serial(x.reshape(9, 1, 1, 300), rowptr, *serial)
    ei.row_fill(x.reshape(9, 1, 1, 300), rowptr, *parallel)
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)
    src = np.random.default_rng(3).standard_normal((1, 300, 130)).astype(np.float32)
    bias = np.random.default_rng(4).standard_normal(130).astype(np.float32)
    for transpose in (False, True):
        shape = (130, 9) if transpose else (9, 130)
        y_s, y_p = np.empty(shape, np.float32), np.empty(shape, np.float32)
        kl.gather_rows_serial(rowptr, *serial, src, 32, bias, y_s, transpose)
        kl.gather_rows(rowptr, *serial, src, 32, bias, y_p, transpose)
        np.testing.assert_array_equal(y_s, y_p)
        want = x @ src[0] + bias
        np.testing.assert_allclose(y_s.T if transpose else y_s, want, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("shape,rate", [((1, 2, 64, 64), 0.005), ((4, 8, 64, 52), 0.3)])
def test_conv_forward_serial_twin_gives_the_parallel_kernels_bits(shape, rate):
    # a streaming frame (a few events: the serial twin) and a busy batch (the parallel
    # kernel); both kernels on both, bit for bit, and against nn.Conv2d
    from neurosparse.kernels import event_conv2d as kc
    from neurosparse.kernels import event_linear as kl

    g = np.random.default_rng(5)
    x = ((g.random(shape) < rate) * g.standard_normal(shape)).astype(np.float32)
    n, c, h, w = shape
    weight = g.standard_normal((6, c, 5, 5)).astype(np.float32)
    bias = g.standard_normal(6).astype(np.float32)
    counts = ei.scan_rows(x)[0]  # rows (n, y), columns c * W + x (event_index.py)
    rowptr, idx, val = ei.csr_from_counts(x, counts)
    wp = kc.pack_weight(weight, 1)
    ho, wo = (h + 4 - 5) // 2 + 1, (w + 4 - 5) // 2 + 1
    outs = []
    for kernel in (kc.conv_forward_serial, kc.conv_forward):
        out = np.empty((n, 6, ho, wo), np.float32)
        kernel(rowptr, idx, val, wp, bias, out, h, w, 2, 2, 2, 2, 4)
        outs.append(out)
    np.testing.assert_array_equal(outs[0], outs[1])
    want = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight),
                                      torch.from_numpy(bias), stride=2, padding=2)  # fmt: skip
    np.testing.assert_allclose(outs[0], want.numpy(), rtol=1e-4, atol=1e-4)
    small = int(rowptr[-1]) * 3 * 3 * 6 + outs[0].size < kl.SERIAL_BELOW_MACS
    assert small == (rate < 0.1)  # the case names the twin it is meant for


_TWIN_SCRIPT = """
import numpy as np
from neurosparse.kernels import event_index as ei
x = np.ones((4, 1, 1, 8), np.float32)
rowptr = np.arange(0, 33, 8, dtype=np.int64)
idx, val = np.empty(32, np.int32), np.empty(32, np.float32)
ei.row_fill_serial(x, rowptr, idx, val)  # compiled and cached first
ei.row_fill(x, rowptr, idx, val)
print(sum(ei.row_fill.stats.cache_hits.values()), sum(ei.row_fill.stats.cache_misses.values()))
"""


def test_serial_twins_have_their_own_cache_entries(tmp_path):
    # Numba's on-disk cache does not record parallel=True: a twin cached under the
    # kernel's name was loaded for the parallel kernel too, which then ran on one core
    import os
    import subprocess
    import sys

    from neurosparse.kernels import delta_accumulate as ka
    from neurosparse.kernels import delta_encode as kd
    from neurosparse.kernels import delta_rnn as kr
    from neurosparse.kernels import event_conv2d as kc
    from neurosparse.kernels import event_linear as kl

    pairs = [(ei.row_counts, ei.row_counts_serial), (ei.flat_counts, ei.flat_counts_serial),
             (ei.row_fill, ei.row_fill_serial), (kl.gather_rows, kl.gather_rows_serial),
             (kc.conv_forward, kc.conv_forward_serial),
             (kd.delta_encode, kd.delta_encode_serial), (ka.running_sum, ka.running_sum_serial),
             (kr.rnn_sequence, kr.rnn_sequence_serial)]
    for kernel, twin in pairs:
        names = [k._cache._cache_file._index_name for k in (kernel, twin)]
        assert names[0] != names[1], names
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _TWIN_SCRIPT], env=env, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    assert out == ["0", "1"]  # the parallel kernel compiled its own code, loaded nothing


def test_output_pool_hands_out_an_array_only_when_nothing_uses_it():
    # every way a caller can still hold the memory keeps it out of the pool: the tensor,
    # a view of it, a NumPy view of it; dropped, it is handed out again
    shape = (512, 1024)  # 2 MiB: pooled
    a = ops.empty_cpu(shape)
    pa = a.data_ptr()
    del a
    b = ops.empty_cpu(shape)
    assert b.data_ptr() == pa  # dropped: reused
    b.fill_(7.0)
    c = ops.empty_cpu(shape)  # b alive: a new array
    assert c.data_ptr() != pa
    c.fill_(1.0)
    view = b[3:5]
    del b
    d = ops.empty_cpu(shape)
    assert d.data_ptr() != pa and torch.all(view == 7.0)
    as_numpy = d.numpy()
    del c, d
    e = ops.empty_cpu(shape)
    assert e.data_ptr() != as_numpy.ctypes.data and e.data_ptr() != pa


def test_event_outputs_kept_by_the_caller_are_never_overwritten():
    # a pooled output stays the caller's for as long as they hold it: every output of a
    # loop that keeps them all (and of one that drops them) equals the dense product
    from neurosparse.layers.event_linear import event_linear

    torch.manual_seed(0)
    w = torch.randn(1024, 512)
    xs = [(torch.rand(600, 512) < 0.05).float() for _ in range(4)]  # 2.3 MiB outputs
    kept = [event_linear(x, w, None, mode="event") for x in xs]
    ptrs = {y.data_ptr() for y in kept}
    assert len(ptrs) == len(xs)
    for x, y in zip(xs, kept):
        torch.testing.assert_close(y, x @ w.t(), rtol=1e-5, atol=1e-4)
    dropped = [event_linear(x, w, None, mode="event").sum() for x in xs]
    for x, total in zip(xs, dropped):
        torch.testing.assert_close(total, (x @ w.t()).sum(), rtol=1e-4, atol=1e-2)
    # an output dropped before the next call lends its memory to it
    first = event_linear(xs[0], w, None, mode="event").data_ptr()
    assert event_linear(xs[1], w, None, mode="event").data_ptr() == first
