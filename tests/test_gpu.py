"""The CUDA paths on a real GPU, against the torch reference (run on the GPU machine).

CI has no GPU, so these skip there; the CUDA kernels themselves are also checked in CI
through Numba's simulator (``tests/test_cudasim.py``). On the GPU this also checks that
``CudaEnv``'s fast launch (every call after the first for a set of argument kinds)
gives the same bits as numba-cuda's own launch.
"""

from __future__ import annotations

import os

import pytest
import torch

import neurosparse as ns

# NEUROSPARSE_TEST_DEVICE=cpu runs the same comparisons on the CPU kernels (a dry run of
# this file's logic where there is no GPU)
DEV = os.environ.get("NEUROSPARSE_TEST_DEVICE", "cuda")
pytestmark = pytest.mark.skipif(
    DEV == "cuda" and not torch.cuda.is_available(),
    reason="needs a CUDA GPU (CI has none; run on the device)",
)


@pytest.fixture
def kernels_mode(monkeypatch):
    def use(mode: str) -> None:
        monkeypatch.setenv("NEUROSPARSE_KERNELS", mode)

    return use


def _neuron_run(neuron, x):
    xi = x.clone().requires_grad_()
    z, st = neuron(xi)
    weight = torch.linspace(-1, 1, z.numel(), device=DEV).view_as(z)
    (z * weight).sum().backward()
    return z.detach(), xi.grad, st.v.detach()


NEURONS = {
    "LIF": lambda: ns.LIF(0.9, 1.0, learn_beta=True, learn_threshold=True),
    "LIF_per_neuron_beta": lambda: ns.LIF(torch.linspace(0.5, 0.95, 97)),
    "IF": lambda: ns.IF(1.0),
    "ALIF": lambda: ns.ALIF(0.9, 1.0, adapt=0.3),
    "CubaLIF": lambda: ns.CubaLIF(),
    "LIF_zero_refractory": lambda: ns.LIF(0.9, 1.0, "zero", refractory=2),
    "LIF_synaptic": lambda: ns.LIF(0.9, 1.0, alpha=0.8),
}


@pytest.mark.parametrize("name", list(NEURONS))
def test_neuron_cuda_equals_reference(name, kernels_mode):
    torch.manual_seed(0)
    neuron = NEURONS[name]().to(DEV)
    x = torch.rand(37, 3, 97, device=DEV) * (6.0 if name == "CubaLIF" else 1.3)
    kernels_mode("numba")
    first = _neuron_run(neuron, x)  # numba-cuda's launch
    again = _neuron_run(neuron, x)  # CudaEnv's fast launch
    kernels_mode("torch")
    ref = _neuron_run(neuron, x)
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert torch.equal(first[0], ref[0])
    assert 0.02 < float(ref[0].mean()) < 0.98  # the case exercises both branches
    torch.testing.assert_close(first[1], ref[1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(first[2], ref[2], rtol=1e-5, atol=1e-5)


def test_lif_half_input_keeps_an_fp32_membrane(kernels_mode):
    torch.manual_seed(0)
    lif = ns.LIF(0.9).to(DEV)
    x = torch.rand(20, 4, 64, device=DEV).bfloat16()
    kernels_mode("numba")
    z, _ = lif(x)
    kernels_mode("torch")
    zr, _ = lif(x.float())
    assert z.dtype == torch.bfloat16
    assert torch.equal(z.float(), zr)


def test_fast_launch_off_is_the_same(monkeypatch, kernels_mode):
    torch.manual_seed(0)
    lif = ns.LIF(0.8).to(DEV)
    x = torch.rand(15, 2, 33, device=DEV)
    kernels_mode("numba")
    _neuron_run(lif, x)
    fast = _neuron_run(lif, x)
    monkeypatch.setenv("NEUROSPARSE_CUDA_FAST_LAUNCH", "0")
    plain = _neuron_run(lif, x)
    for a, b in zip(fast, plain):
        assert torch.equal(a, b)


def _grads(layer, x):
    xi = x.clone().requires_grad_()
    y = layer(xi)
    g = torch.linspace(-1, 1, y.numel(), device=DEV).view_as(y)
    (y * g).sum().backward()
    return [y.detach(), xi.grad, layer.weight.grad.clone(), layer.bias.grad.clone()]


@pytest.mark.parametrize("rate", [0.0, 0.02, 0.3, 1.0])
def test_event_layers_cuda_equal_dense(rate):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    lin = ns.EventLinear(150, 70, mode="event", device=DEV)
    x = (torch.rand(5, 3, 150, device=DEV) < rate).float()
    conv = ns.EventConv2d(4, 6, 3, stride=(2, 1), padding=1, groups=2, mode="event", device=DEV)
    xc = (torch.rand(3, 4, 12, 13, device=DEV) < rate).float()
    for layer, inp in ((lin, x), (conv, xc)):
        for _ in range(2):  # the second call takes the fast launch
            layer.zero_grad(set_to_none=True)
            ours = _grads(layer, inp)
            dense = layer.to_dense()
            ref = _grads(dense, inp)
            for a, b in zip(ours, ref):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_delta_linear_cuda_equals_cpu():
    torch.manual_seed(0)
    cpu = ns.DeltaLinear(48, 32, threshold=0.1)
    gpu = ns.DeltaLinear(48, 32, threshold=0.1).to(DEV)
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(25, 4, 48).cumsum(0) * 0.1
    y_cpu = cpu(x)
    for _ in range(2):
        y_gpu = gpu(x.to(DEV))
        torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-5, atol=1e-5)


def test_env_default_is_fast():
    assert os.environ.get("NEUROSPARSE_CUDA_FAST_LAUNCH", "1") != "0"
    from neurosparse.ops.cuda_env import fast_launch_enabled

    assert fast_launch_enabled()


@pytest.mark.skipif(DEV != "cuda", reason="CUDA graphs exist only on the GPU")
def test_lif_sequence_replays_in_a_cuda_graph(kernels_mode):
    # no host synchronisation inside a sequence call: the whole call can be captured
    kernels_mode("numba")
    torch.manual_seed(0)
    lif = ns.LIF(0.9).to(DEV)
    x = torch.rand(50, 4, 300, device=DEV) * 1.3
    with torch.no_grad():
        static_x = x.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):  # compiles, then warms the fast launch path
                lif(static_x)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_z, static_state = lif(static_x)
        new_x = torch.rand(50, 4, 300, device=DEV) * 0.9
        static_x.copy_(new_x)
        graph.replay()
        eager_z, eager_state = lif(new_x)
    assert torch.equal(static_z, eager_z)
    assert torch.equal(static_state.v, eager_state.v)
    assert 0.02 < float(eager_z.mean()) < 0.98


@pytest.mark.parametrize("rate", [0.0, 0.05, 1.0])
def test_sparse_event_linear_cuda_equals_reference(rate, kernels_mode):
    # forward on this thread, backward on autograd's: the fast launch must bring the
    # CUDA context to a thread it has not launched on yet
    torch.manual_seed(0)
    layer = ns.SparseEventLinear(300, 70, density=0.2).to(DEV)
    x = (torch.rand(6, 5, 300, device=DEV) < rate).float() * 1.5

    def run():
        layer.zero_grad(set_to_none=True)
        xi = x.clone().requires_grad_()
        y = layer(xi)
        (y * torch.linspace(-1, 1, y.numel(), device=DEV).view_as(y)).sum().backward()
        return [y.detach(), xi.grad, layer.values.grad.clone(), layer.bias.grad.clone()]

    kernels_mode("numba")
    first, again = run(), run()
    kernels_mode("torch")
    ref = run()
    for a, b, r in zip(first, again, ref):
        assert torch.equal(a, b)
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)


def test_fused_event_linear_lif_equals_unfused_on_the_gpu(kernels_mode):
    from neurosparse.layers.event_linear_lif import event_linear_lif

    torch.manual_seed(0)
    kernels_mode("numba")
    lin, lif = ns.EventLinear(300, 200, mode="event").to(DEV), ns.LIF(0.9).to(DEV)
    with torch.no_grad():
        lin.weight.mul_(6)  # a few % output spikes
        x = (torch.rand(40, 3, 300, device=DEV) < 0.03).float()
        fused, fused_state = event_linear_lif(x, lin, lif)
        unfused, state = lif(lin(x))
    assert torch.equal(fused, unfused)
    assert torch.equal(fused_state.v, state.v)
    assert 0.005 < float(unfused.mean()) < 0.5


def test_sparse_event_linear_counts_on_the_gpu_equal_the_cpu_counts():
    # on CUDA the counters stay on the device until read (no sync per call)
    torch.manual_seed(0)
    cpu = ns.SparseEventLinear(200, 50, density=0.1)
    gpu = ns.SparseEventLinear(200, 50, density=0.1).to(DEV)
    gpu.load_state_dict(cpu.state_dict())
    x = (torch.rand(7, 3, 200) < 0.1).float() * torch.where(torch.rand(7, 3, 200) < 0.5, 1.0, 0.3)
    with torch.no_grad():
        for _ in range(2):
            cpu(x)
            gpu(x.to(DEV))
    assert gpu.op_counts() == cpu.op_counts()
    assert cpu.op_counts()["synops"] > 0 and cpu.op_counts()["macs"] > 0
