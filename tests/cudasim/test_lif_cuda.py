"""The CUDA LIF kernels (run by the simulator) equal the CPU kernels, forward and backward."""

import itertools

import numpy as np
import pytest
from numba import cuda

from neurosparse.kernels import lif_cpu, lif_cuda

pytestmark = pytest.mark.skipif(not cuda.is_available(), reason="needs NUMBA_ENABLE_CUDASIM=1")

T, B, N = 19, 2, 5  # T not a multiple of the CUDA kernel's CHUNK
K = B * N


def _params(rng):
    p = np.empty((8, N), np.float32)
    p[0] = rng.uniform(0.6, 0.95, N)  # beta
    p[1] = 0.9  # gain
    p[2] = 0.01  # leak
    p[3] = rng.uniform(0.4, 0.8, N)  # threshold
    p[4] = -0.2  # alpha
    p[5] = 0.05  # v_reset
    p[6] = 0.3  # adapt
    p[7] = 0.9  # rho
    return p


def _run(mod, x, state0, params, flags, launch):
    reset, delay, synaptic, euler, adaptive, refr = flags
    forward, backward = mod.get_kernels(reset, delay, 0, synaptic, euler, adaptive, refr, 1)
    f = np.float32
    z, h = np.zeros((T, K), f), np.zeros((T, K), f)
    th = np.zeros((T, K) if adaptive else (1, 1), f)
    rm = np.zeros((T, K) if refr else (1, 1), np.uint8)
    state = np.zeros((4, K), f)
    launch(forward)(x, state0, params, z, h, th, rm, state)
    rng = np.random.default_rng(1)
    gz = rng.normal(size=(T, K)).astype(f)
    gstate = np.stack([rng.normal(size=K), np.zeros(K)]).astype(f)
    gx, gout = np.zeros((T, K), f), np.zeros((4, K), f)
    launch(backward)(gz, gstate, h, th, rm, state0, params, np.float32(2.0), gx, gout)
    return [z, h, state, gx, gout]


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
    state0 = np.zeros((4, K), np.float32)
    state0[0] = rng.uniform(0, 0.5, K)
    params = _params(rng)
    cpu = _run(lif_cpu, x, state0, params, flags, lambda fn: fn)
    gpu = _run(lif_cuda, x, state0, params, flags, lambda fn: fn[(K + 31) // 32, 32])
    assert cpu[0].sum() > 0
    np.testing.assert_array_equal(cpu[0], gpu[0])  # spikes exactly
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flags", FLAGS[1::5])
def test_scalar_parameter_forward_equals_the_block_forward(flags):
    # the streaming step's kernel: the eight parameters as 0-d arrays, one value each
    reset, delay, synaptic, euler, adaptive, refr = flags
    rng = np.random.default_rng(7 + sum(flags))
    x = rng.uniform(-0.2, 1.0, (T, K)).astype(np.float32)
    state0 = np.zeros((4, K), np.float32)
    state0[0] = rng.uniform(0, 0.5, K)
    params = _params(rng)[:, :1].copy()  # one column: every neuron the same parameters
    spec = (reset, delay, 0, synaptic, euler, adaptive, refr, 1)
    forward, _ = lif_cuda.get_kernels(*spec)
    scalar = lif_cuda.get_scalar_forward(*spec)

    def run(kernel, *p):
        f = np.float32
        outs = [np.zeros((T, K), f), np.zeros((T, K), f),
                np.zeros((T, K) if adaptive else (1, 1), f),
                np.zeros((T, K) if refr else (1, 1), np.uint8), np.zeros((4, K), f)]
        kernel[(K + 31) // 32, 32](x, state0, *p, *outs)
        return outs

    block = run(forward, params)
    zero_d = run(scalar, *[np.array(params[j, 0]) for j in range(8)])
    assert block[0].sum() > 0
    for a, b in zip(block, zero_d):
        np.testing.assert_array_equal(a, b)
