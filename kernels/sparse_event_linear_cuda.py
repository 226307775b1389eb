"""GPU kernels of the sparse-sparse event Linear (numba.cuda; torch-free).

CUDA twin of ``kernels/sparse_event_linear.py``. The weight is ELL with constant fan-in
(output ``o`` reads ``indices[o, s]`` with weight ``values[o, s]``, ``s < k``).

Design: one gather kernel, :func:`segment_gather`, does both the forward and the input
gradient. It computes ``out[m, r] = bias[r] + Σ_j w_j · src[m, cols[j]]`` over the
segment ``ptr[r] <= j < ptr[r+1]`` of a flat list:

- forward: segments are the ELL rows (``ptr = 0, k, 2k, ...``, ``cols = indices``,
  ``w_j = values.flat[j]``), ``src = x``;
- input gradient: segments are the per-input lists of the transpose (``ptr, t_out``
  of ``ell_transpose``), ``w_j = values.flat[t_flat[j]]`` with ``t_flat = t_out·k +
  t_slot``, ``src = grad_y``.

One warp owns one segment (output) and ``MB`` rows of ``src``; its 32 lanes walk the
segment together, so the list (``cols``, ``values``) is read as coalesced 128-byte
lines and only the gathers ``src[m, cols[j]]`` are random -- from a row that, at the
small batches this layer targets, sits in L1/L2. The lanes' partial sums meet in a
shared-memory tree (block-wide barriers: the CUDA simulator, which runs the tests, has
no warp shuffles). At batch 1 a 4096-output layer is 4096 warps, enough to fill an
H100; a thread-per-output layout would be 4096 threads, each walking ~400 synapses
serially. Warps are numbered output-fastest, so the blocks in flight share one block
of ``src`` rows and the weights are read once per ``MB`` rows.

Gather, not scatter: every output is written by exactly one warp, so there are no
atomics and the result does not vary between runs. The forward therefore reads every
synapse whatever the input rate (``nnz × 8`` bytes: ~13 MB at 4096² and 10 %, ~4 µs of
HBM bandwidth); an event-driven scatter over the transpose would read only the active
inputs' lists but needs float atomics on ``y`` (order-dependent rounding) and only
pays once those bytes, not the launch (~5 µs), dominate -- not at batch 1.

The value gradient ``gv[o, s] = Σ_m x[m, indices[o, s]] · gy[m, o]`` has one thread per
synapse (coalesced over the ELL storage, each gradient written once, only existing
synapses).
"""

from __future__ import annotations

from numba import config, cuda, float32

WARPS = 2 if config.ENABLE_CUDASIM else 8  # segments (warps) per block
MB = 4  # rows of src per warp (accumulators per lane)
THREADS_GV = 64 if config.ENABLE_CUDASIM else 256  # threads per block of grad_values


@cuda.jit
def segment_gather(ptr, cols, wpos, use_wpos, vflat, src, bias, has_bias, out):
    """``out[m, r] = bias[r] + Σ_{ptr[r] <= j < ptr[r+1]} w_j · src[m, cols[j]]``,
    ``w_j = vflat[wpos[j]]`` if ``use_wpos`` else ``vflat[j]`` (flags are 0/1 ints;
    ``bias`` is read only when ``has_bias``).

    Launch: ``WARPS · 32`` threads per block, ``ceil(R / WARPS) · ceil(M / MB)`` blocks
    (``R = out.shape[1]`` segments, ``M`` rows); see :func:`blocks`.
    """
    sh = cuda.shared.array((WARPS, MB, 32), float32)
    tid = cuda.threadIdx.x
    wp = tid // 32
    lane = tid % 32
    n_rows, n_seg = out.shape
    n_sb = (n_seg + WARPS - 1) // WARPS
    r = (cuda.blockIdx.x % n_sb) * WARPS + wp
    m0 = (cuda.blockIdx.x // n_sb) * MB
    nr = min(MB, n_rows - m0)
    a0 = float32(0)
    a1 = float32(0)
    a2 = float32(0)
    a3 = float32(0)
    if r < n_seg:  # no early return: every thread must reach the barriers below
        j = ptr[r] + lane
        end = ptr[r + 1]
        if nr == MB:
            while j < end:
                c = cols[j]
                w = vflat[wpos[j]] if use_wpos else vflat[j]
                a0 += w * src[m0, c]
                a1 += w * src[m0 + 1, c]
                a2 += w * src[m0 + 2, c]
                a3 += w * src[m0 + 3, c]
                j += 32
        else:  # the last, partial block of rows (batch 1 lands here)
            while j < end:
                c = cols[j]
                w = vflat[wpos[j]] if use_wpos else vflat[j]
                a0 += w * src[m0, c]
                if nr > 1:
                    a1 += w * src[m0 + 1, c]
                if nr > 2:
                    a2 += w * src[m0 + 2, c]
                j += 32
    sh[wp, 0, lane] = a0
    sh[wp, 1, lane] = a1
    sh[wp, 2, lane] = a2
    sh[wp, 3, lane] = a3
    cuda.syncthreads()
    off = 16
    while off > 0:
        if lane < off:
            for q in range(MB):
                sh[wp, q, lane] += sh[wp, q, lane + off]
        cuda.syncthreads()
        off //= 2
    if r < n_seg and lane < nr:
        acc = sh[wp, lane, 0]
        if has_bias:
            acc += bias[r]
        out[m0 + lane, r] = acc


def blocks(n_rows: int, n_seg: int) -> int:
    """Blocks of :func:`segment_gather` for ``out [n_rows, n_seg]``."""
    return ((n_seg + WARPS - 1) // WARPS) * ((n_rows + MB - 1) // MB)


@cuda.jit
def grad_values(x, gy, indices, gv):
    """``gv[o, s] = Σ_m x[m, indices[o, s]] · gy[m, o]``: one thread per synapse
    (``THREADS_GV`` per block, ``ceil(out·k / THREADS_GV)`` blocks)."""
    t = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    n_out, k = indices.shape
    if t >= n_out * k:
        return
    o = t // k
    s = t - o * k
    i = indices[o, s]
    acc = float32(0)
    for m in range(x.shape[0]):
        acc += x[m, i] * gy[m, o]
    gv[o, s] = acc
