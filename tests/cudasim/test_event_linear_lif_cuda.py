"""The fused event Linear + LIF CUDA kernel (run by the simulator) equals the CPU one.

Runs with ``NUMBA_ENABLE_CUDASIM=1`` (``tests/test_cudasim.py`` starts it that way);
sizes are tiny because the simulator runs a Python thread per CUDA thread.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
    pytest.skip(
        "runs in a subprocess with NUMBA_ENABLE_CUDASIM=1 (started by tests/test_cudasim.py)",
        allow_module_level=True,
    )

import torch  # noqa: E402

import neurosparse as ns  # noqa: E402
from neurosparse.kernels import event_index as ei  # noqa: E402
from neurosparse.kernels import event_linear as kl  # noqa: E402
from neurosparse.kernels import event_linear_cuda as klc  # noqa: E402
from neurosparse.kernels import event_linear_lif as kel  # noqa: E402
from neurosparse.kernels import event_linear_lif_cuda as kc  # noqa: E402
from neurosparse.kernels import lif_cuda  # noqa: E402
from neurosparse.layers import event_linear_lif as ops_fused  # noqa: E402
from neurosparse.ops import event_linear as ops_lin  # noqa: E402
from neurosparse.ops import event_linear_lif as ops_launch  # noqa: E402

T, B, N_IN, N = 5, 3, 40, 133  # 133 outputs: one full 128-column tile and a ragged one


def _params(rng):
    p = np.empty((8, N), np.float32)
    p[0] = rng.uniform(0.6, 0.95, N)  # beta
    p[1] = 0.9  # gain
    p[2] = 0.01  # leak
    p[3] = rng.uniform(0.3, 0.6, N)  # threshold
    p[4] = 0.5  # alpha
    p[5] = 0.05  # v_reset
    p[6] = 0.3  # adapt
    p[7] = 0.9  # rho
    return p


FLAGS = [
    f
    for f in itertools.product((0, 1, 2), (0, 1), (0, 1), (0, 1), (0, 1), (0, 2))
    if not (f[1] and f[5])  # a refractory period needs the immediate reset
]  # (reset, delay, synaptic, euler, adaptive, refractory)


@pytest.mark.parametrize("flags", FLAGS[::5])  # a spread of combinations, kept small
@pytest.mark.parametrize("rate,bias", [(0.3, True), (0.05, False)])
def test_cuda_kernel_equals_cpu_kernel(flags, rate, bias):
    rng = np.random.default_rng(sum(flags) + int(rate * 100))
    x = (rng.random((T * B, N_IN)) < rate) * rng.choice([1.0, 0.5], (T * B, N_IN))
    x = x.astype(np.float32)
    w = (rng.normal(size=(N, N_IN)) * 0.6).astype(np.float32)
    b = (rng.normal(size=N) * 0.1).astype(np.float32) if bias else None
    params = _params(rng)
    state0 = np.stack(
        [
            rng.uniform(0, 0.5, B * N),
            rng.uniform(0, 0.2, B * N),
            rng.uniform(0, 1, B * N),
            rng.integers(0, 3, B * N),
        ]
    ).astype(np.float32)
    counts, _, _, _ = ei.scan_rows(x.reshape(T * B, 1, 1, N_IN))
    rowptr, idx, val = ei.csr_from_counts(x.reshape(T * B, 1, 1, N_IN), counts)

    tiles = kl.pack_weight(w)
    z_cpu = np.zeros((T * B, N), np.float32)
    st_cpu = np.zeros((4, B * N), np.float32)
    kel.gather_lif(rowptr, idx, val, tiles, kl.padded_bias(b, tiles), T, B, params, state0,
                   *flags, z_cpu, st_cpu)  # fmt: skip

    # CSR rows are ELL rows with start = rowptr[:-1]; poisoned outputs catch missed writes
    start, cnt, wt = rowptr[:-1].copy(), np.diff(rowptr), np.ascontiguousarray(w.T)
    z = np.full((T * B, N), np.nan, np.float32)
    st = np.full((4, B * N), np.nan, np.float32)
    kc.launch_fused(flags, start, cnt, idx, val, wt, b, params, state0, T, z, st, 0)

    # the unfused CUDA pair: event gather, then the LIF sequence kernel
    y = np.full((T * B, N), np.nan, np.float32)
    klc.launch_gather(start, cnt, idx, val, wt, b, y, 0)
    reset, delay, synaptic, euler, adaptive, refr = flags
    forward, _ = lif_cuda.get_kernels(reset, delay, 0, synaptic, euler, adaptive, refr, 1)
    z_ref, h_ref = np.zeros((T, B * N), np.float32), np.zeros((T, B * N), np.float32)
    st_ref = np.zeros((4, B * N), np.float32)
    f32 = np.float32
    th = np.zeros((T, B * N) if adaptive else (1, 1), f32)
    rm = np.zeros((T, B * N) if refr else (1, 1), np.uint8)
    blocks = (B * N + lif_cuda.THREADS - 1) // lif_cuda.THREADS
    forward[blocks, lif_cuda.THREADS](y.reshape(T, B * N), state0, params, z_ref, h_ref, th, rm,
                                      st_ref)  # fmt: skip
    assert np.array_equal(z.reshape(T, B * N), z_ref), "fused != unfused spikes on CUDA"
    assert np.array_equal(st, st_ref)

    # the CPU kernel sums four events per pass in every column, the CUDA gather one per
    # pass in a ragged tile: bit-equal on the full tile, float32-close on the ragged one
    full = kc.TN
    assert np.array_equal(z[:, :full], z_cpu[:, :full])
    st3, st_cpu3 = st.reshape(4, B, N), st_cpu.reshape(4, B, N)
    assert np.array_equal(st3[..., :full], st_cpu3[..., :full])
    np.testing.assert_allclose(st3, st_cpu3, rtol=1e-5, atol=1e-5)
    assert 0 < z_cpu.mean() < 1


class SimEnv:
    """``CudaEnv`` stand-in: NumPy arrays are simulator memory (as in test_event_cases)."""

    def __init__(self, device) -> None:
        self.stream = 0

    def view(self, t):
        return t.detach().numpy()

    def alloc(self, shape, dtype, zero):
        if zero:
            return np.zeros(shape, dtype)
        return np.full(shape, np.nan if np.dtype(dtype).kind == "f" else 10**6, dtype)

    def tensor(self, shape):
        t = torch.full(shape, float("nan"))
        return t, t.numpy()


@pytest.mark.parametrize("kind", ["lif", "alif", "cuba"])
def test_op_on_cuda_path_equals_unfused(kind, monkeypatch):
    """The op's CUDA host code (index on the "device", cached Wᵀ, launch) end to end."""
    monkeypatch.setenv("NEUROSPARSE_KERNELS", "numba")
    torch.manual_seed(0)
    lin = ns.EventLinear(N_IN, N, mode="event")
    with torch.no_grad():
        lin.weight.mul_(3.0)
    nrn = {
        "lif": lambda: ns.LIF(beta=0.9, threshold=0.5),
        "alif": lambda: ns.ALIF(threshold=0.4, adapt=0.3),
        "cuba": lambda: ns.CubaLIF(v_leak=0.1, v_th=0.3, tau_mem_inv=300.0),
    }[kind]()
    x = (torch.rand(T, B, N_IN) < 0.3).float()
    monkeypatch.setattr(ops_lin, "CudaEnv", SimEnv)
    monkeypatch.setattr(ops_lin, "kernel_device", lambda t: "cuda")
    with torch.no_grad():
        z_ref, s_ref = nrn(lin(x))  # the CUDA gather, then the (CPU) LIF kernel
        counts_ref = lin.op_counts()
        lin.reset_counters()
        calls = []
        real = ops_launch._run_cuda
        monkeypatch.setattr(ops_launch, "_run_cuda", lambda *a: calls.append(1) or real(*a))
        z, s = ops_fused.event_linear_lif(x, lin, nrn)
    assert calls == [1]
    assert torch.equal(z, z_ref)
    for got, want in zip(s, s_ref):
        assert torch.equal(got, want)
    assert lin.op_counts() == counts_ref
