"""The CUDA kernels of the event layers, run in the Numba CUDA simulator.

This module only runs with ``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported;
``tests/test_cudasim.py`` starts it in a subprocess that way. CI has no GPU and torch
has no CUDA there, so the tests route CPU tensors to the CUDA code path:
``kernel_device`` says "cuda" and ``CudaEnv`` hands the kernels NumPy views (the
simulator's device arrays) instead of ``numba.cuda.as_cuda_array`` views of torch CUDA
memory. Everything else -- the index build on the "device", the
gathers, the transposed lists, the host-side launch code, the autograd Function -- is
the code that runs on a GPU. Sizes are tiny: the simulator runs a Python thread per
CUDA thread.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip(
        "runs in a subprocess with NUMBA_ENABLE_CUDASIM=1 (started by tests/test_cudasim.py)",
        allow_module_level=True,
    )

import torch  # noqa: E402

from neurosparse.layers.event_conv2d import EventConv2d  # noqa: E402
from neurosparse.layers.event_linear import EventLinear  # noqa: E402
from neurosparse.ops import event_conv2d as ops_conv  # noqa: E402
from neurosparse.ops import event_linear as ops_lin  # noqa: E402


class SimEnv:
    """Stand-in for ``ops.event_linear.CudaEnv``: NumPy arrays are simulator memory."""

    def __init__(self, device: torch.device) -> None:
        self.stream = 0

    def view(self, t: torch.Tensor):
        return t.detach().numpy()

    arg = view

    def alloc(self, shape, dtype, zero):
        if zero:
            return np.zeros(shape, dtype)
        # uninitialised memory on a GPU: poison it so a kernel that reads before it
        # writes fails the comparison
        return np.full(shape, np.nan if np.dtype(dtype).kind == "f" else 10**6, dtype)

    def tensor(self, shape):
        t = torch.full(shape, float("nan"))
        return t, t.numpy()


CALLS: dict[str, int] = {}


def _counting(name, fn):
    def wrapped(*args, **kw):
        CALLS[name] = CALLS.get(name, 0) + 1
        return fn(*args, **kw)

    return wrapped


@pytest.fixture(autouse=True)
def route_to_cuda(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    monkeypatch.setattr(ops_lin, "CudaEnv", SimEnv)
    monkeypatch.setattr(ops_lin, "kernel_device", lambda x: "cuda")
    for mod in (ops_lin, ops_conv):
        for name in ("_forward_cuda", "_grad_weight_cuda"):
            monkeypatch.setattr(mod, name, _counting(f"{mod.OP}{name}", getattr(mod, name)))
    CALLS.clear()


def assert_f32_close(a: torch.Tensor, b: torch.Tensor) -> None:
    a, b = a.detach(), b.detach()
    assert a.shape == b.shape
    tol = 1e-5 * max(1.0, float(b.abs().max()))
    err = float((a - b).abs().max())
    assert err <= tol, f"max error {err:.3g} > {tol:.3g}"


def spikes(shape, rate, graded, seed):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(shape, generator=gen) < rate
    vals = torch.randn(shape, generator=gen) if graded else torch.ones(shape)
    return (mask * vals).float()


def compare(layer, ref, x):
    xa = x.clone().requires_grad_()
    xb = x.clone().requires_grad_()
    y = layer(xa)
    y_ref = ref(xb) if x.dim() < 5 else ref(xb.flatten(0, 1)).unflatten(0, x.shape[:2])
    assert_f32_close(y, y_ref)
    g = torch.randn_like(y_ref)
    ps = [p for p in (layer.weight, layer.bias) if p is not None]
    pr = [p for p in (ref.weight, ref.bias) if p is not None]
    for got, want in zip(torch.autograd.grad(y, [xa, *ps], g),
                         torch.autograd.grad(y_ref, [xb, *pr], g)):  # fmt: skip
        assert_f32_close(got, want)


@pytest.mark.parametrize(
    "rate,graded,bias", [(0.0, False, True), (0.01, False, False), (0.1, True, True),
                         (1.0, True, False), (0.1, False, False)]
)  # fmt: skip
def test_linear_cuda_kernels_match_nn_linear(rate, graded, bias):
    torch.manual_seed(0)
    layer = EventLinear(50, 133, bias=bias, mode="event")  # 133: two tiles, one ragged
    x = spikes((2, 2, 50), rate, graded, seed=int(rate * 100) + bias)
    if 0 < rate < 0.05 and not x.any():
        x[1, 0, 7] = 1.0  # 200 inputs at 1%: make sure the case has an event
    compare(layer, layer.to_dense(), x)
    assert CALLS == {"event_linear_forward_cuda": 1, "event_linear_grad_weight_cuda": 1}


def counts_on_cuda_and_cpu(layer, x, monkeypatch) -> dict:
    """The layer's op counts of one call on the CUDA kernels, checked equal to those of the
    same call routed to the CPU kernels (through ``kernel_device``)."""
    layer(x)
    cuda_counts = layer.op_counts()
    monkeypatch.setattr(ops_lin, "kernel_device", lambda t: t.device.type)
    layer.reset_counters()
    layer(x)
    assert layer.op_counts() == cuda_counts
    return cuda_counts


def test_linear_cuda_counts_equal_cpu_counts(monkeypatch):
    x = spikes((3, 40), 0.3, False, seed=4)
    x[0, :5] = 0.25  # a few graded events
    cuda_counts = counts_on_cuda_and_cpu(EventLinear(40, 7, mode="event"), x, monkeypatch)
    assert cuda_counts["events_in"] == int((x != 0).sum())


def test_linear_cuda_nan_propagates_or_is_reported(monkeypatch):
    # no read-back by default (it would synchronise): the NaN reaches its output row
    # only, as in nn.Linear; the opt-in check raises
    x = torch.zeros(2, 30)
    x[1, 3] = float("nan")
    layer = EventLinear(30, 4, mode="event")
    y = layer(x)
    assert torch.isnan(y[1]).all() and torch.isfinite(y[0]).all()
    monkeypatch.setenv("NEUROSPARSE_CHECK_FINITE_GPU", "1")
    with pytest.raises(ValueError, match="NaN"):
        layer(x)


@pytest.mark.parametrize("rate,rows", [(0.05, 3), (1.0, 3), (0.3, 17)])
def test_linear_cuda_bf16_weights(rate, rows):
    # bf16 operands travel as int16 bits; sums in float32, output rounded to bf16 (3
    # rows: the row-tile kernel, 17: the event lists + gather)
    torch.manual_seed(2)
    layer = EventLinear(70, 140, mode="event", dtype=torch.bfloat16)
    x = spikes((rows, 70), rate, graded=True, seed=7).bfloat16()
    with torch.no_grad():
        y = layer(x)
        ref = torch.nn.functional.linear(x.double(), layer.weight.double(),
                                         layer.bias.double())  # fmt: skip
    assert y.dtype == torch.bfloat16
    err = float((y.double() - ref).abs().max())
    assert err <= 2 ** -7 * max(1.0, float(ref.abs().max())), err


def test_linear_cuda_reads_any_weight_layout():
    # the functional form with a contiguous [out, in] weight: read through its strides
    from neurosparse.layers.event_linear import event_linear

    torch.manual_seed(3)
    w = torch.randn(9, 33)
    x = spikes((5, 33), 0.3, graded=True, seed=8)
    assert_f32_close(event_linear(x, w, None, mode="event"), x @ w.t())
    assert CALLS == {"event_linear_forward_cuda": 1}


@pytest.mark.parametrize("rows", [7, 17])
def test_linear_cuda_rows_tiles_and_chunks(monkeypatch, rows):
    # 7 rows: the row-tile kernel (more rows than one tile of 4); 17: the event lists +
    # gather pair (a row with no event, one with every input active: a list as long as
    # the row), which 17 rows take by default from LISTS_FROM rows. Inputs over several
    # chunks, ragged column tiles for both kernels.
    from neurosparse.kernels import event_linear_cuda as kc

    assert kc.wants_lists(rows) == (rows >= 8)
    monkeypatch.setattr(kc, "LISTS_FROM", 16)
    assert kc.gather_path(rows, True) == ("tile" if rows < 16 else "lists wide")
    torch.manual_seed(4)
    n_in = kc.CH * 2 + 5
    layer = EventLinear(n_in, kc.GCOLS + 2, mode="event")
    x = spikes((rows, n_in), 0.2, graded=True, seed=9 + rows)
    x[1] = 0
    x[2] = torch.randn(n_in)
    x[3, :5] = 1.0  # a few spikes at the start of a chunk
    assert_f32_close(layer(x), layer.to_dense()(x))
    layer.reset_counters()
    layer(x)
    assert layer.op_counts()["events_in"] == int((x != 0).sum())


@pytest.mark.parametrize("rows", [2, 16])  # the row tile; the event lists
def test_linear_cuda_kept_call_replays_the_kernels(rows):
    # layers/event_linear_plan.py with the kernels themselves: a replayed call gives the
    # general path's bits and counts and reads an in-place weight write
    torch.manual_seed(8)
    layer = EventLinear(30, 11, mode="event")
    xs = [spikes((rows, 30), 0.2, graded=s == 1, seed=20 + s) for s in range(3)]
    with torch.no_grad():
        want = []
        for x in xs:
            layer.__dict__.pop("_ns_plan", None)
            want.append(layer(x))
        counts = layer.op_counts()
        layer.reset_counters()
        got = [layer(x) for x in xs]
        assert layer.__dict__["_ns_plan"] is not None
        assert layer.op_counts() == counts
        layer.weight.mul_(3.0)
        again = layer(xs[0])
    # 3 general calls, and the first call after reset_counters (its counters moved on)
    assert CALLS["event_linear_forward_cuda"] == 4
    for g, w in zip(got, want):
        assert torch.equal(g, w)
    assert_f32_close(again, layer.to_dense()(xs[0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_linear_cuda_wide_and_fused_gathers(monkeypatch, dtype):
    # From 16 rows a weight readable as int64 words takes the wide gather over the event
    # lists, which adds every column's products in the order of gather_rows (the same
    # bits); with FUSED on, the fused gather (each block compacts its row itself). Rows:
    # empty, full (more events than one staged chunk: passes, groups of 4 and single
    # events), graded; ragged last column block.
    from neurosparse.kernels import event_linear_cuda as kc

    torch.manual_seed(6)
    n_in = 2 * kc.FCH + 7
    n_out = 2 * kc.GCOLS + 8  # three column blocks, the last one ragged
    layer = EventLinear(n_in, n_out, mode="event", dtype=dtype)
    x = spikes((17, n_in), 0.3, graded=True, seed=12).to(dtype)
    x[1] = 0
    x[2] = 1
    x[3, :4] = torch.tensor([-1.0, 0.5, 1.0, 2.0])
    launched = []
    for name in ("_fused_kernel", "_wide_kernel", "_rows_kernel"):
        make = getattr(kc, name)
        monkeypatch.setattr(kc, name, lambda bf16, m=make, k=name: launched.append(k) or m(bf16))
    with torch.no_grad():
        monkeypatch.setattr(kc, "FUSED", True)
        layer.reset_counters()
        fused = layer(x)
        counts = layer.op_counts()
        monkeypatch.setattr(kc, "FUSED", False)  # the default
        wide = layer(x)
        monkeypatch.setattr(kc, "WIDE", False)
        narrow = layer(x)
        ref = torch.nn.functional.linear(x.double(), layer.weight.double(),
                                         layer.bias.double())  # fmt: skip
    assert launched == ["_fused_kernel", "_wide_kernel", "_rows_kernel"]
    assert torch.equal(wide, narrow)
    tol = (2**-7 if dtype == torch.bfloat16 else 1e-5) * max(1.0, float(ref.abs().max()))
    for y in (fused, wide):
        assert float((y.double() - ref).abs().max()) <= tol
    # the fused gather's statistics are the compaction's: events and ±1 events
    assert counts["events_in"] == int((x != 0).sum())
    layer.reset_counters()
    monkeypatch.setattr(ops_lin, "kernel_device", lambda t: t.device.type)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "auto")  # bf16 on the CPU: the reference
    with torch.no_grad():
        layer(x)
    assert layer.op_counts() == counts


@pytest.mark.parametrize(
    "geom,rate,bias",
    [((2, 4, 3, 1, 1, 1), 0.0, True), ((2, 4, 3, 1, 1, 1), 1.0, False),
     ((4, 6, (3, 2), (2, 1), (1, 2), 2), 0.1, True), ((3, 3, 2, 2, 0, 3), 0.1, False),
     ((3, 3, 2, 2, 0, 3), 1.0, True)],
    ids=str,
)  # fmt: skip
def test_conv_cuda_kernels_match_nn_conv2d(geom, rate, bias):
    cin, cout, k, s, p, g = geom
    torch.manual_seed(1)
    layer = EventConv2d(cin, cout, k, s, p, g, bias=bias, mode="event")
    x = spikes((2, 1, cin, 5, 6), rate, graded=rate < 1, seed=3)
    compare(layer, layer.to_dense(), x)
    assert CALLS == {"event_conv2d_forward_cuda": 1, "event_conv2d_grad_weight_cuda": 1}


def test_conv_cuda_counts_equal_cpu_counts(monkeypatch):
    x = spikes((2, 2, 7, 6), 0.2, False, seed=5)
    x[0, 0, 0, :3] = -0.5
    layer = EventConv2d(2, 4, 3, stride=(1, 2), padding=1, mode="event")
    cuda_counts = counts_on_cuda_and_cpu(layer, x, monkeypatch)
    assert cuda_counts["macs"] > 0 and cuda_counts["synops"] > 0
