"""The delta layers on CUDA never read a tensor back to the host (issue 23, item 2).

Run by tests/test_cudasim.py with NUMBA_ENABLE_CUDASIM=1. As in test_event_cases.py,
CPU tensors are routed to the CUDA code path (``kernel_device`` says "cuda", the
kernels run in the simulator on NumPy views). Every way torch reads a tensor's value to
the host (``item``, ``tolist``, ``bool``/``int``/``float``, ``cpu``, ``numpy``) raises
inside forward and backward: on a GPU each would be a synchronisation, which a CUDA graph
cannot capture. The outputs still equal the dense layer on the quantised input, and the
counters (read after the step) equal those of the CPU path.
"""

from __future__ import annotations

import contextlib
import os

import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip(
        "runs in a subprocess with NUMBA_ENABLE_CUDASIM=1 (started by tests/test_cudasim.py)",
        allow_module_level=True,
    )

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from test_event_cases import SimEnv  # noqa: E402  (tests/cudasim is on sys.path)

from neurosparse.layers.delta_conv2d import DeltaConv2d  # noqa: E402
from neurosparse.layers.delta_linear import DeltaLinear  # noqa: E402
from neurosparse.ops import cuda_env  # noqa: E402
from neurosparse.ops import event_linear as ops_lin  # noqa: E402

READS = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__", "cpu", "numpy")


@contextlib.contextmanager
def no_host_reads(monkeypatch):
    """Make every host read of a tensor raise (``numpy`` stays allowed for the simulator's
    own views, which SimEnv takes before the guard sees them: see below)."""
    seen: list[str] = []

    def guard(name, orig):
        def read(self, *a, **kw):
            seen.append(name)
            raise AssertionError(f"host read Tensor.{name} inside a GPU call")

        return read

    with monkeypatch.context() as m:
        for name in READS:
            if name != "numpy":  # the simulator hands kernels NumPy views (SimEnv.view)
                m.setattr(torch.Tensor, name, guard(name, getattr(torch.Tensor, name)))
        yield seen


@pytest.fixture(autouse=True)
def route_to_cuda(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    monkeypatch.delenv("NEUROSPARSE_CHECK_FINITE_GPU", raising=False)
    monkeypatch.setattr(ops_lin, "CudaEnv", SimEnv)
    monkeypatch.setattr(cuda_env, "CudaEnv", SimEnv)
    monkeypatch.setattr(ops_lin, "kernel_device", lambda x: "cuda")


def quantised(x, thr):
    ref, out = torch.zeros_like(x[0]), []
    for t in range(x.shape[0]):
        ref = torch.where((x[t] - ref).abs() > thr, x[t], ref)
        out.append(ref)
    return torch.stack(out)


def smooth(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 0.3).cumsum(0)


@pytest.mark.parametrize("mode", ["event", "auto"])
def test_delta_linear_forward_backward_read_nothing_back(monkeypatch, mode):
    torch.manual_seed(0)
    layer = DeltaLinear(12, 7, threshold=0.2, mode=mode)
    x = smooth((5, 2, 12), seed=1).requires_grad_()
    with no_host_reads(monkeypatch) as seen:
        z = layer(x)
        z.square().sum().backward()
    assert seen == []
    assert layer.last_path == ("dense" if mode == "auto" else "event")  # auto: no rate read
    want = F.linear(quantised(x.detach(), 0.2), layer.weight, layer.bias)
    torch.testing.assert_close(z.detach(), want, rtol=0, atol=1e-5)
    assert layer.weight.grad is not None and x.grad is not None
    # the counts were summed on the "device" and are read here, after the step
    d = layer.delta_streams()["input"].delta.detach()
    nnz = int((d != 0).sum())
    assert layer.delta_streams()["input"].nnz == nnz
    assert layer.op_counts()["events_in"] == nnz and layer.op_counts()["macs"] == nnz * 7


def test_delta_counts_sum_in_place_over_calls(monkeypatch):
    layer = DeltaLinear(6, 3, threshold=0.1, mode="event")
    x = smooth((4, 1, 6), seed=2)
    with torch.no_grad(), no_host_reads(monkeypatch) as seen:
        layer(x)
        held = layer._counts()["events_in"]
        layer(x)
        assert layer._counts()["events_in"] is held  # one tensor, added to in place
    assert seen == []
    assert isinstance(held, torch.Tensor)
    d = layer.delta_streams()["input"].delta
    assert layer.op_counts()["events_in"] == 2 * int((d != 0).sum())


def test_delta_conv2d_forward_backward_read_nothing_back(monkeypatch):
    torch.manual_seed(3)
    layer = DeltaConv2d(2, 3, 3, padding=1, threshold=0.25, mode="event")
    x = smooth((3, 1, 2, 5, 6), seed=3).requires_grad_()
    with no_host_reads(monkeypatch) as seen:
        z = layer(x)
        z.sum().backward()
    assert seen == []
    xq = quantised(x.detach(), 0.25).flatten(0, 1)
    want = F.conv2d(xq, layer.weight, layer.bias, padding=1).unflatten(0, (3, 1))
    torch.testing.assert_close(z.detach(), want, rtol=0, atol=1e-5)
    d = layer.delta_streams()["input"].delta.detach()
    assert layer.op_counts()["events_in"] == int((d != 0).sum())
