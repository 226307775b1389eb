"""The sparse-sparse event Linear's CUDA kernels, run in the Numba CUDA simulator.

Runs only with ``NUMBA_ENABLE_CUDASIM=1`` set before numba is imported
(``tests/test_cudasim.py`` starts it that way). torch has no CUDA here, so the kernels
run on NumPy arrays (the simulator's device memory) and the autograd op on CPU tensors
through a stand-in for ``CudaEnv``. Both are held to the CPU kernels and to the dense
``F.linear`` of the same weights: forward, input gradient and the gradient of every
existing synapse within 1e-5. Sizes are tiny: the simulator runs a Python thread per
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

from neurosparse.kernels import sparse_event_linear as kcpu  # noqa: E402
from neurosparse.kernels import sparse_event_linear_cuda as kc  # noqa: E402
from neurosparse.layers.sparse_event_linear import (  # noqa: E402
    SparseEventLinear,
    ell_index,
)
from neurosparse.ops import sparse_event_linear as ops  # noqa: E402


class SimEnv:
    """Stand-in for ``CudaEnv``: launches on NumPy views of the (CPU) tensors."""

    def __init__(self, device: torch.device) -> None:
        pass

    def launch(self, kernel, blocks, threads, *args):
        views = [a.detach().numpy() if isinstance(a, torch.Tensor) else a for a in args]
        kernel[blocks, threads](*views)


def _case(n_in, n_out, density, rows, rate, seed):
    layer = SparseEventLinear(n_in, n_out, density=density, seed=seed)
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(rows, n_in, generator=g) < rate) * torch.randn(rows, n_in, generator=g)
    if rows > 1:
        x[rows // 2] = 0  # an empty input row
    gy = torch.randn(rows, n_out, generator=g)
    return layer, x.float(), gy


def _dense(layer, x, gy):
    lin = layer.to_dense()
    xr = x.clone().requires_grad_(True)
    y = lin(xr)
    y.backward(gy)
    return (y.detach().numpy(), xr.grad.numpy(),
            lin.weight.grad.gather(1, layer.indices.long()).numpy())  # fmt: skip


def _kernels(layer, x, gy):
    """Forward, input gradient and value gradient straight from the CUDA kernels."""
    idx = layer.indices.numpy()
    v = layer.values.detach().numpy()
    b = layer.bias.detach().numpy()
    n_out, k = idx.shape
    rows, n_in = x.shape
    ptr, t_out, t_slot = ell_index(layer.indices, n_in)
    vflat = v.reshape(-1)
    y = np.full((rows, n_out), np.nan, np.float32)
    ell_ptr = np.arange(0, n_out * k + 1, k, dtype=np.int64)
    cols = idx.reshape(-1)
    kc.segment_gather[kc.blocks(rows, n_out), 32 * kc.WARPS](
        ell_ptr, cols, cols, 0, vflat, x.numpy(), b, 1, y)
    gx = np.full((rows, n_in), np.nan, np.float32)
    t_flat = (t_out.astype(np.int64) * k + t_slot).astype(np.int32)
    kc.segment_gather[kc.blocks(rows, n_in), 32 * kc.WARPS](
        ptr, t_out, t_flat, 1, vflat, gy.numpy(), vflat, 0, gx)
    gv = np.full(v.shape, np.nan, np.float32)
    kc.grad_values[-(-v.size // kc.THREADS_GV), kc.THREADS_GV](x.numpy(), gy.numpy(), idx, gv)
    return y, gx, gv


def _cpu(layer, x, gy):
    """The same three from the CPU kernels."""
    idx = layer.indices.numpy()
    v = layer.values.detach().numpy()
    rows, n_in = x.shape
    index = ell_index(layer.indices, n_in)
    y = np.empty((rows, v.shape[0]), np.float32)
    kcpu.forward(x.numpy(), *index, v, layer.bias.detach().numpy(), y)
    gx = np.empty((rows, n_in), np.float32)
    kcpu.grad_input(gy.numpy(), idx, v, gx)
    gv = np.empty(v.shape, np.float32)
    kcpu.grad_values(x.numpy(), gy.numpy(), *index, gv)
    return y, gx, gv


def _close(got, want):
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


# (n_in, n_out, density, rows, input rate): outputs not a multiple of WARPS, rows not a
# multiple of MB (partial row blocks of 1..3), 0 % and 100 % inputs, fan-in > 32 lanes
CASES = [
    (13, 7, 0.3, 1, 1.0),
    (40, 9, 0.25, 3, 0.0),
    (37, 5, 1.0, 5, 0.2),
    (70, 3, 0.6, 6, 1.0),
    (19, 11, 0.2, 4, 0.05),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_kernels_equal_cpu_and_dense(case):
    layer, x, gy = _case(*case, seed=sum(case[:2]))
    gpu = _kernels(layer, x, gy)
    _close(gpu, _cpu(layer, x, gy))
    _close(gpu, _dense(layer, x, gy))


@pytest.mark.parametrize("bias", [True, False])
def test_autograd_op_through_cuda_env(monkeypatch, bias):
    """The torch-side op (launch code, device index, autograd) with the simulator."""
    monkeypatch.setattr(ops, "CudaEnv", SimEnv)
    layer, x, gy = _case(23, 10, 0.3, 5, 0.3, seed=4)
    if not bias:
        layer.bias = None
    cache: dict = {}
    xr = x.clone().requires_grad_(True)
    index = ell_index(layer.indices, 23, cache)
    y = ops.sparse_event_linear_cuda(xr, layer.indices, layer.values, layer.bias, index, cache)
    y.backward(gy)
    lin = layer.to_dense()
    xd = x.clone().requires_grad_(True)
    yd = lin(xd)
    yd.backward(gy)
    torch.testing.assert_close(y.detach(), yd.detach(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(xr.grad, xd.grad, atol=1e-5, rtol=1e-5)
    gv_want = lin.weight.grad.gather(1, layer.indices.long())
    torch.testing.assert_close(layer.values.grad, gv_want, atol=1e-5, rtol=1e-5)
    if bias:
        torch.testing.assert_close(layer.bias.grad, lin.bias.grad, atol=1e-5, rtol=1e-5)
    assert "cuda" in cache  # the device copies of the transpose are kept
