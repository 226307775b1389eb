"""Event Linear and a LIF-family neuron in one CUDA kernel, for inference (numba.cuda;
torch-free).

CUDA twin of ``kernels/event_linear_lif.py``. A warp owns one batch element ``b`` and a
tile of ``TN = 128`` output neurons, four per lane (columns ``lane + 32·q``, so each
event's weight-row segment is read as four coalesced 128-byte loads, as in
``kernels/event_linear_cuda.gather``). The lane keeps its four neurons' state and
parameters in registers and walks ``t = 0 .. T-1``: it gathers the ELL events of row
``t*B + b`` (``kernels/event_index_cuda.py``) into four currents, in the same order of
sums as the unfused gather, then steps its neurons on them (``kernels/lif_step.py``'s
``step_forward`` as a device function) and writes the spikes. The currents never reach
memory. The grid runs batch groups fastest (``blockIdx.x``), so the blocks resident at
one time share a column tile of ``Wᵀ`` in L2.

Kernels are specialised on the neuron's flags (closure constants, as in
``kernels/lif_cuda.py``): a neuron's unused branches and parameters disappear.
"""

from __future__ import annotations

import functools

from numba import config, cuda, float32

from . import _launch, lif_step

CPL = 4  # neurons (columns) per lane
TN = 32 * CPL  # columns per warp tile
# Batch elements (warps) per block. Few: a sequence offers only B × N/128 warps (1024
# for B=32, N=4096), and small blocks spread them over more SMs.
WARPS = 2 if config.ENABLE_CUDASIM else 4

_forward = cuda.jit(device=True)(lif_step.step_forward)


@cuda.jit(device=True)
def _params(params, col):
    """The eight parameters of neuron ``col`` (kept in registers for the whole sequence)."""
    return (params[0, col], params[1, col], params[2, col], params[3, col], params[4, col],
            params[5, col], params[6, col], params[7, col])  # fmt: skip


@functools.cache
def get_kernel(reset, delay, synaptic, euler, adaptive, refractory):
    """The fused kernel for one neuron's flags (``ops.lif_sequence.flags_of`` without
    ``detach`` and the surrogate, which only the backward uses).

    ``kernel(start, cnt, idx, val, src, bias, has_bias, params, state0, T, spikes,
    state)``: ``start, cnt, idx, val`` the ELL lists of the ``T*B`` input rows, ``src``
    ``Wᵀ [n_in, N]``, ``bias [N]`` (any float32 array when ``has_bias`` is False),
    ``params [8, N]`` (rows as in ``kernels/lif_cpu.py``), ``state0, state [4, B*N]``
    (rows v, i, a, c; ``k = b*N + n``), ``spikes [T*B, N]``. Launch with
    :func:`launch_fused`.
    """

    @cuda.jit
    def fused(start, cnt, idx, val, src, bias, has_bias, params, state0, T, spikes, state):
        lane = cuda.threadIdx.x % 32
        b = cuda.blockIdx.x * WARPS + cuda.threadIdx.x // 32
        n = spikes.shape[1]
        n_b = state0.shape[1] // n
        if b >= n_b:
            return
        c0 = cuda.blockIdx.y * TN + lane
        c1 = c0 + 32
        c2 = c0 + 64
        c3 = c0 + 96
        # columns past the matrix compute on a valid column and store nothing
        e0, e1, e2, e3 = min(c0, n - 1), min(c1, n - 1), min(c2, n - 1), min(c3, n - 1)
        k0, k1, k2, k3 = b * n + e0, b * n + e1, b * n + e2, b * n + e3
        b0 = b1 = b2 = b3 = float32(0)
        if has_bias:
            b0, b1, b2, b3 = bias[e0], bias[e1], bias[e2], bias[e3]
        v0, i0, a0, r0 = state0[0, k0], state0[1, k0], state0[2, k0], state0[3, k0]
        v1, i1, a1, r1 = state0[0, k1], state0[1, k1], state0[2, k1], state0[3, k1]
        v2, i2, a2, r2 = state0[0, k2], state0[1, k2], state0[2, k2], state0[3, k2]
        v3, i3, a3, r3 = state0[0, k3], state0[1, k3], state0[2, k3], state0[3, k3]
        p0, p1, p2, p3 = _params(params, e0), _params(params, e1), _params(params, e2), \
            _params(params, e3)  # fmt: skip
        full = c3 < n
        for t in range(T):
            row = t * n_b + b
            x0, x1, x2, x3 = b0, b1, b2, b3
            j = start[row]
            end = j + cnt[row]
            if full:
                # four events per pass, as in event_linear_cuda.gather: 16 loads in flight
                # and the same order of sums
                while j + 4 <= end:
                    q0, q1, q2, q3 = idx[j], idx[j + 1], idx[j + 2], idx[j + 3]
                    u0, u1, u2, u3 = val[j], val[j + 1], val[j + 2], val[j + 3]
                    w00, w01, w02, w03 = src[q0, c0], src[q0, c1], src[q0, c2], src[q0, c3]
                    w10, w11, w12, w13 = src[q1, c0], src[q1, c1], src[q1, c2], src[q1, c3]
                    w20, w21, w22, w23 = src[q2, c0], src[q2, c1], src[q2, c2], src[q2, c3]
                    w30, w31, w32, w33 = src[q3, c0], src[q3, c1], src[q3, c2], src[q3, c3]
                    x0 += (u0 * w00 + u1 * w10) + (u2 * w20 + u3 * w30)
                    x1 += (u0 * w01 + u1 * w11) + (u2 * w21 + u3 * w31)
                    x2 += (u0 * w02 + u1 * w12) + (u2 * w22 + u3 * w32)
                    x3 += (u0 * w03 + u1 * w13) + (u2 * w23 + u3 * w33)
                    j += 4
                while j < end:
                    q = idx[j]
                    u = val[j]
                    x0 += u * src[q, c0]
                    x1 += u * src[q, c1]
                    x2 += u * src[q, c2]
                    x3 += u * src[q, c3]
                    j += 1
            else:
                while j < end:
                    q = idx[j]
                    u = val[j]
                    x0 += u * src[q, e0]
                    x1 += u * src[q, e1]
                    x2 += u * src[q, e2]
                    j += 1
            s, _, _, _, v0, i0, a0, r0 = _forward(
                x0, v0, i0, a0, r0, p0[0], p0[1], p0[2], p0[3], p0[4], p0[5],
                p0[6], p0[7], reset, delay, synaptic, euler, adaptive, refractory,
            )  # fmt: skip
            if c0 < n:
                spikes[row, c0] = s
            s, _, _, _, v1, i1, a1, r1 = _forward(
                x1, v1, i1, a1, r1, p1[0], p1[1], p1[2], p1[3], p1[4], p1[5],
                p1[6], p1[7], reset, delay, synaptic, euler, adaptive, refractory,
            )  # fmt: skip
            if c1 < n:
                spikes[row, c1] = s
            s, _, _, _, v2, i2, a2, r2 = _forward(
                x2, v2, i2, a2, r2, p2[0], p2[1], p2[2], p2[3], p2[4], p2[5],
                p2[6], p2[7], reset, delay, synaptic, euler, adaptive, refractory,
            )  # fmt: skip
            if c2 < n:
                spikes[row, c2] = s
            if full:
                s, _, _, _, v3, i3, a3, r3 = _forward(
                    x3, v3, i3, a3, r3, p3[0], p3[1], p3[2], p3[3], p3[4], p3[5],
                    p3[6], p3[7], reset, delay, synaptic, euler, adaptive, refractory,
                )  # fmt: skip
                spikes[row, c3] = s
        if c0 < n:
            state[0, k0], state[1, k0], state[2, k0], state[3, k0] = v0, i0, a0, r0
        if c1 < n:
            state[0, k1], state[1, k1], state[2, k1], state[3, k1] = v1, i1, a1, r1
        if c2 < n:
            state[0, k2], state[1, k2], state[2, k2], state[3, k2] = v2, i2, a2, r2
        if c3 < n:
            state[0, k3], state[1, k3], state[2, k3], state[3, k3] = v3, i3, a3, r3

    return fused


def launch_fused(flags, start, cnt, idx, val, src, bias, params, state0, T, spikes, state,
                 stream) -> None:  # fmt: skip
    """Launch the kernel of :func:`get_kernel` for ``flags`` (reset, delay, synaptic,
    euler, adaptive, refractory); ``bias`` may be None."""
    rows, n = spikes.shape
    if rows == 0 or n == 0:
        return
    n_b = state0.shape[1] // n
    grid = ((n_b + WARPS - 1) // WARPS, (n + TN - 1) // TN)
    has_bias = bias is not None
    _launch.launch(get_kernel(*flags), grid, 32 * WARPS, stream, start, cnt, idx, val, src,
                   bias if has_bias else val, has_bias, params, state0, T, spikes,
                   state)  # fmt: skip
