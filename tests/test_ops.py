"""Every registered op against its reference (torchvision.ops style).

For each op the registry knows, random shapes (and, where the kernel covers them,
dtypes) run once through the Numba kernel (``NEUROSPARSE_KERNELS=numba``) and once
through the reference (``torch``); outputs and the gradients of every differentiable
input must agree. A dtype the kernel does not cover must be refused in strict mode and
run the reference in ``auto`` mode. The linear ops' references pass ``gradcheck`` in
float64. A registered op without a case here fails ``test_every_registered_op_is_tested``.
The cases take a device: tests/test_gpu.py runs those of the ops with a CUDA kernel on
the GPU (and tests/cudasim the CUDA kernels under Numba's simulator).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import neurosparse as ns
from neurosparse.cli import _import_ops
from neurosparse.errors import KernelUnavailableError
from neurosparse.layers import event_conv2d, event_linear, sparse_event_linear
from neurosparse.layers.delta_encoder import delta_encode
from neurosparse.ops import registry
from neurosparse.ops.delta_accumulate import accumulate
from neurosparse.ops.sdr_dendrites import segment_activation

SEEDS = range(3)


def _rand_sparse(gen, shape, rate, dtype):
    x = torch.rand(shape, generator=gen, dtype=torch.float64)
    return torch.where(x < rate, torch.rand(shape, generator=gen, dtype=torch.float64) + 0.5,
                       0.0).to(dtype)  # fmt: skip


def _dims(gen, *ranges):
    return [int(torch.randint(lo, hi + 1, (1,), generator=gen)) for lo, hi in ranges]


def _leaf(t, device):
    """A differentiable input on ``device`` (drawn on the CPU, so every device sees the
    same numbers)."""
    return t.to(device).requires_grad_()


# each case: (gen, dtype, device) -> (fn, inputs); fn(*inputs) returns a tensor or a tuple
# of them. tests/test_gpu.py runs the cases of the ops with a CUDA kernel on the GPU.
def case_lif_sequence(gen, dtype, device="cpu"):
    t, b, n = _dims(gen, (1, 25), (1, 4), (1, 40))
    beta = torch.rand(n, generator=gen) * 0.5 + 0.5
    neuron = ns.ALIF(beta, 0.5, adapt=0.2) if n % 2 else ns.LIF(beta, 0.6, reset="zero")
    neuron.to(device)
    x = _leaf((torch.rand(t, b, n, generator=gen) * 1.2).to(dtype), device)
    return (lambda x: neuron(x)[0]), [x]


def case_delta_encode(gen, dtype, device="cpu"):
    t, b, n = _dims(gen, (1, 20), (1, 4), (1, 50))
    x = _leaf(torch.randn(t, b, n, generator=gen, dtype=dtype).cumsum(0), device)
    return (lambda x: delta_encode(x, 0.3)[0]), [x]


def case_delta_accumulate(gen, dtype, device="cpu"):
    t, b, n = _dims(gen, (1, 20), (1, 4), (1, 50))
    inc = _leaf(_rand_sparse(gen, (t, b, n), 0.2, dtype), device)
    z0 = _leaf(torch.randn(b, n, generator=gen, dtype=dtype), device)
    return accumulate, [inc, z0]


def case_delta_rnn(gen, dtype, device="cpu"):
    t, b, i, h = _dims(gen, (1, 15), (1, 3), (1, 12), (1, 10))
    torch.manual_seed(int(torch.randint(0, 1000, (1,), generator=gen)))
    cell = (ns.DeltaGRU if h % 2 else ns.DeltaLSTM)(i, h, threshold=0.05).to(device, dtype)
    x = torch.randn(t, b, i, generator=gen, dtype=dtype).to(device)

    def run(x):
        with torch.no_grad():  # the recurrent kernels are the inference path
            return cell(x)[0]

    return run, [x]


def case_event_linear(gen, dtype, device="cpu"):
    m, k, n = _dims(gen, (1, 30), (1, 60), (1, 40))
    x = _leaf(_rand_sparse(gen, (m, k), 0.1, dtype), device)
    w = _leaf(torch.randn(n, k, generator=gen, dtype=dtype), device)
    bias = _leaf(torch.randn(n, generator=gen, dtype=dtype), device)
    return (lambda x, w, bias: event_linear(x, w, bias, mode="event")), [x, w, bias]


def case_event_conv2d(gen, dtype, device="cpu"):
    b, c, o, h = _dims(gen, (1, 3), (1, 4), (1, 5), (3, 9))
    groups = 2 if c % 2 == 0 and o % 2 == 0 else 1
    x = _leaf(_rand_sparse(gen, (b, c, h, h + 1), 0.15, dtype), device)
    w = _leaf(torch.randn(o, c // groups, 3, 3, generator=gen, dtype=dtype), device)
    stride, pad = 1 + h % 2, h % 2

    def run(x, w):
        return event_conv2d(x, w, None, stride, pad, groups, mode="event")

    return run, [x, w]


def case_sparse_event_linear(gen, dtype, device="cpu"):
    m, k, n = _dims(gen, (1, 30), (2, 60), (1, 40))
    torch.manual_seed(int(torch.randint(0, 1000, (1,), generator=gen)))
    layer = ns.SparseEventLinear(k, n, density=0.3).to(device, dtype)
    x = _leaf(_rand_sparse(gen, (m, k), 0.2, dtype), device)
    values = layer.values.detach().clone().requires_grad_()
    return (lambda x, v: sparse_event_linear(x, layer.indices, v, layer.bias, k)), [x, values]


def case_sdr_segment_activation(gen, dtype, device="cpu"):
    m, u, s, d = _dims(gen, (1, 20), (1, 10), (1, 5), (1, 30))
    ctx = _leaf(_rand_sparse(gen, (m, d), 0.2, dtype), device)
    w = _leaf(torch.randn(u, s, d, generator=gen, dtype=dtype), device)
    return (lambda c, w: segment_activation(c, w, "absmax")[0]), [ctx, w]


def case_sdr_spatial_pooler(gen, dtype, device="cpu"):  # host arrays only
    n, c = _dims(gen, (20, 120), (16, 80))
    seed = int(torch.randint(0, 1000, (1,), generator=gen))
    rng = np.random.default_rng(seed)
    inputs = [rng.choice(n, n // 8, replace=False) for _ in range(8)]

    def run():
        sp = ns.sdr.SpatialPooler(n, c, 4, seed=seed)
        winners = [torch.as_tensor(sp.compute(x).sparse) for x in inputs]
        return (*winners, torch.as_tensor(sp._perm))

    return run, []


def case_events_to_spikes(gen, dtype, device="cpu"):  # host arrays only
    n, size = _dims(gen, (1, 400), (2, 9))
    rng = np.random.default_rng(int(torch.randint(0, 1000, (1,), generator=gen)))
    ev = ns.data.make_events(np.sort(rng.integers(0, 5000, n)), rng.integers(0, size, n),
                             rng.integers(0, size, n), rng.integers(0, 2, n))  # fmt: skip
    tf = ns.data.ToSpikeTensor(sensor_size=(size, size, 2), n_time_bins=7, binary=bool(n % 2))
    return (lambda: tf(ev)), []


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}
# ops whose kernels take float32 only: float64 must be refused in strict mode
F32_ONLY = ["lif_sequence", "delta_encode", "delta_accumulate", "delta_rnn", "event_linear",
            "event_conv2d", "sparse_event_linear"]  # fmt: skip


def _run(mode, fn, inputs, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", mode)
    ins = [t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
    out = fn(*ins)
    outs = out if isinstance(out, tuple) else (out,)
    diff = [t for t in ins if t.requires_grad]
    grads = []
    if diff:
        gen = torch.Generator().manual_seed(7)
        loss = sum((o * torch.randn(o.shape, generator=gen, dtype=o.dtype).to(o.device)).sum()
                   for o in outs if o.is_floating_point() and o.requires_grad)  # fmt: skip
        grads = torch.autograd.grad(loss, diff, allow_unused=True)
    return [o.detach() for o in outs], grads


def test_every_registered_op_is_tested():
    _import_ops()
    import neurosparse.data  # noqa: F401 - registers events_to_spikes

    no_reference = {op for op, e in registry._OPS.items() if not e.reference}
    assert no_reference == {"sdr_temporal_memory"}  # held to its pure-Python twin elsewhere
    assert set(registry._OPS) - no_reference == set(CASES)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("op", sorted(CASES))
def test_kernel_equals_reference(op, seed, monkeypatch):
    gen = torch.Generator().manual_seed(1000 * seed + sum(map(ord, op)))
    fn, inputs = CASES[op](gen, torch.float32)
    out_k, g_k = _run("numba", fn, inputs, monkeypatch)
    out_r, g_r = _run("torch", fn, inputs, monkeypatch)
    for a, b in zip(out_k, out_r):
        assert a.shape == b.shape and a.dtype == b.dtype
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for a, b in zip(g_k, g_r):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", F32_ONLY)
def test_uncovered_dtype_is_refused_in_strict_mode(op, monkeypatch):
    fn, inputs = CASES[op](torch.Generator().manual_seed(0), torch.float64)
    with pytest.raises(KernelUnavailableError, match="float64"):
        _run("numba", fn, inputs, monkeypatch)


@pytest.mark.parametrize("op", F32_ONLY)
def test_uncovered_dtype_runs_the_reference_in_auto_mode(op, monkeypatch):
    fn, inputs = CASES[op](torch.Generator().manual_seed(0), torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out_a, g_a = _run("auto", fn, inputs, monkeypatch)
    out_r, g_r = _run("torch", fn, inputs, monkeypatch)
    assert all(a.dtype == torch.float64 and torch.equal(a, b) for a, b in zip(out_a, out_r))
    assert all(torch.equal(a, b) for a, b in zip(g_a, g_r) if a is not None)


@pytest.mark.parametrize("op", ["delta_accumulate", "event_linear", "event_conv2d",
                                "sparse_event_linear"])  # fmt: skip
def test_reference_gradcheck(op, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "torch")
    fn, inputs = CASES[op](torch.Generator().manual_seed(3), torch.float64)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)
