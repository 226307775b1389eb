"""The CUDA LIF kernels (run by the simulator) equal the CPU kernels, forward and backward."""

import itertools

import numpy as np
import pytest
from numba import cuda

from neurosparse.kernels import lif_cpu, lif_cuda

pytestmark = pytest.mark.skipif(not cuda.is_available(), reason="needs NUMBA_ENABLE_CUDASIM=1")

T, B, N = 6, 2, 5
K = B * N


def _params(rng):
    f = np.float32
    return [
        rng.uniform(0.6, 0.95, N).astype(f),  # beta
        np.full(N, 0.9, f),  # gain
        np.full(N, 0.01, f),  # leak
        rng.uniform(0.4, 0.8, N).astype(f),  # theta
        np.full(N, -0.2, f),  # alpha
        np.full(N, 0.05, f),  # v_reset
        np.full(N, 0.3, f),  # adapt
        np.full(N, 0.9, f),  # rho
    ]


def _run(mod, x, state, params, flags, launch):
    reset, delay, synaptic, euler, adaptive, refr = flags
    f = np.float32
    z, h = np.zeros((T, K), f), np.zeros((T, K), f)
    th = np.zeros((T, K) if adaptive else (1, 1), f)
    rm = np.zeros((T, K) if refr else (1, 1), np.uint8)
    out = [np.zeros(K, f) for _ in range(4)]
    launch(mod.lif_forward)(x, *state, *params, N, *flags, z, h, th, rm, *out)
    rng = np.random.default_rng(1)
    gz, gv, gi = rng.normal(size=(T, K)).astype(f), rng.normal(size=K).astype(f), np.zeros(K, f)
    gx = np.zeros((T, K), f)
    g = [np.zeros(K, f) for _ in range(4)]
    beta, gain, _leak, theta, alpha, vreset, adapt, _rho = params
    launch(mod.lif_backward)(gz, gv, gi, z, h, th, rm, state[0], state[2], beta, gain, theta,
                             alpha, vreset, adapt, N, reset, delay, 0, synaptic, euler,
                             adaptive, refr, 1, np.float32(2.0), gx, *g)  # fmt: skip
    return [z, h, *out, gx, *g]


FLAGS = [
    (reset, delay, syn, euler, adaptive, refr)
    for reset, delay, syn, euler, adaptive, refr in itertools.product(
        (0, 1, 2), (0, 1), (0, 1), (0, 1), (0, 1), (0, 2)
    )
    if not (delay and refr)
]


@pytest.mark.parametrize("flags", FLAGS[::3])  # a spread of combinations, kept small
def test_cuda_equals_cpu(flags):
    rng = np.random.default_rng(sum(flags))
    x = rng.uniform(-0.2, 1.0, (T, K)).astype(np.float32)
    state = [rng.uniform(0, 0.5, K).astype(np.float32), np.zeros(K, np.float32),
             np.zeros(K, np.float32), np.zeros(K, np.float32)]  # fmt: skip
    params = _params(rng)
    cpu = _run(lif_cpu, x, state, params, flags, lambda fn: fn)
    gpu = _run(lif_cuda, x, state, params, flags, lambda fn: fn[(K + 31) // 32, 32])
    assert cpu[0].sum() > 0
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
