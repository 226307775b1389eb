"""Event Linear forward on the GPU with no index: one kernel, no host round trip.

``out[r, n] = bias[n] + Σ_{k: x[r, k] ≠ 0} x[r, k] · W[n, k]`` for ``x [M, K]`` dense
(binary or graded spikes), read straight from torch memory (numba.cuda; torch-free).

One block owns a tile of ``RT`` rows and ``TN = 32`` output columns (grid: row tiles ×
column tiles; a 4096-wide layer gives 128 blocks for one row, enough to spread a
batch-1 step over the chip). It walks ``K`` in chunks of ``TPB · EPT`` inputs (a
4096-wide row is one chunk); per chunk it

1. compacts the inputs active in *any* of its rows (their union) into shared memory
   with a block-wide scan (a fixed order, so results do not vary from run to run);
2. has its warps split those events, four per pass (four 128-byte weight loads in
   flight per warp before any is used), each lane accumulating its column of every row
   of the tile in registers; the rows' input values are broadcast loads. Each active
   input costs one read of a ``TN``-wide segment of its weight column for all ``RT``
   rows: a row tile never reads more of ``W`` than a dense product would (once), and
   at 1 % activity it reads about ``RT`` percent of it.

Then the warps' partial sums are added in shared memory in a fixed order. No global
index, no atomics on the output, no count that the host must read: the launch can be
captured in a CUDA graph. The same blocks (column tile 0) add the row statistics
(events, ±1 events, rows holding NaN/inf) atomically into ``tally`` for the op counters.

The weight is read through strides (``wt`` is ``Wᵀ`` as a ``[K, N]`` view of any
layout): ``Wᵀ`` contiguous (``EventLinear`` stores its weight that way) gives coalesced
128-byte reads; a contiguous ``[N, K]`` weight is correct but reads 8-16x more sectors.
bfloat16 operands travel as int16 bit patterns (numba has no bfloat16 array type) and are
widened to float32 in registers; sums are float32 and bf16 outputs are rounded to
nearest-even.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import config, cuda, float32, int16, int32, int64

from . import _launch

SIM = bool(config.ENABLE_CUDASIM)
TPB = 64 if SIM else 256  # threads per block
WARPS = TPB // 32
EPT = 2 if SIM else 16  # inputs per thread per chunk: a 4096-wide row is one chunk
CH = TPB * EPT  # inputs per chunk (and the most union events a chunk can hold)
RT = 4  # rows per block
TN = 32  # columns per block: one per lane, so a 4096-wide output has 128 blocks per row


if SIM:

    @cuda.jit(device=True)
    def _bf16_to_f32(bits):
        return np.array([(int(bits) & 0xFFFF) << 16], np.uint32).view(np.float32)[0]

    @cuda.jit(device=True)
    def _f32_to_bf16(v):
        u = int(np.array([v], np.float32).view(np.uint32)[0])
        u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
        return np.int16(np.uint16(u & 0xFFFF).view(np.int16))

else:
    from numba.cuda import libdevice

    @cuda.jit(device=True, inline=True)
    def _bf16_to_f32(bits):
        return libdevice.int_as_float(int32(int32(bits) << 16))

    @cuda.jit(device=True, inline=True)
    def _f32_to_bf16(v):
        # round to nearest even on the bit pattern (two's complement adds are the
        # unsigned ones mod 2^32, so negative patterns round the same way)
        u = libdevice.float_as_int(v)
        u = int32(u + int32(0x7FFF) + ((u >> 16) & 1)) >> 16
        return int16(u)


@cuda.jit(device=True, inline=True)
def _as_f32(v):
    return float32(v)


@functools.cache
def _kernel(bf16: bool):
    """The gather kernel for float32 (``bf16=False``) or bfloat16-bit operands."""
    load = _bf16_to_f32 if bf16 else _as_f32

    @cuda.jit(device=True, inline=True)
    def xval(x, r, nr, i, k):
        return load(x[r + i, k]) if i < nr else float32(0)

    @cuda.jit
    def gather_dense(x, wt, bias, has_bias, out, tally):
        """See the module docstring; ``x [M, K]``, ``wt [K, N]``, ``out [M, N]``."""
        t = cuda.threadIdx.x
        lane = t % 32
        warp = t // 32
        n_rows, n_in = x.shape
        n = out.shape[1]
        r0 = cuda.blockIdx.x * RT
        nr = min(RT, n_rows - r0)
        c = cuda.blockIdx.y * TN + lane
        live = c < n
        idx_s = cuda.shared.array(CH, int32)
        red = cuda.shared.array((WARPS, RT, TN), float32)
        scan_s = cuda.shared.array(TPB, int32)
        a0 = float32(0)
        a1 = float32(0)
        a2 = float32(0)
        a3 = float32(0)
        n_ev = 0
        n_unit = 0
        bad = 0
        stats = cuda.blockIdx.y == 0
        vals = cuda.local.array(EPT, float32)
        for k0 in range(0, n_in, CH):
            # 1. union of the chunk's active inputs over the tile's rows. A row's EPT
            # values are loaded before any is tested, so the loads are in flight
            # together (testing each as it arrives serialised them: ~16 L2 latencies)
            mask = 0  # bit e: input k0 + t + e*TPB is active in some row
            for i in range(RT):
                if i < nr:
                    for e in range(EPT):
                        k = k0 + t + e * TPB
                        vals[e] = load(x[r0 + i, k]) if k < n_in else float32(0)
                    for e in range(EPT):
                        v = vals[e]
                        if v != 0:
                            mask |= 1 << e
                            if stats:
                                n_ev += 1
                                a = abs(v)
                                if a == 1:
                                    n_unit += 1
                                elif not a < np.inf:
                                    bad = 1
            n_mine = cuda.popc(mask)
            # Hillis-Steele exclusive scan of n_mine over the block
            scan_s[t] = n_mine
            cuda.syncthreads()
            off = 1
            while off < TPB:
                add = scan_s[t - off] if t >= off else 0
                cuda.syncthreads()
                scan_s[t] += add
                cuda.syncthreads()
                off *= 2
            pos = scan_s[t] - n_mine
            total = scan_s[TPB - 1]
            for e in range(EPT):
                if mask & (1 << e):
                    idx_s[pos] = k0 + t + e * TPB
                    pos += 1
            cuda.syncthreads()
            # 2. the warps split the events, four per pass (their weight loads issued
            # before any is used); a lane owns column c of every row of the tile; the
            # rows' values of an event are the same for all lanes (broadcast loads)
            if live:
                j = warp
                while j + 3 * WARPS < total:
                    k_0 = idx_s[j]
                    k_1 = idx_s[j + WARPS]
                    k_2 = idx_s[j + 2 * WARPS]
                    k_3 = idx_s[j + 3 * WARPS]
                    w_0 = load(wt[k_0, c])
                    w_1 = load(wt[k_1, c])
                    w_2 = load(wt[k_2, c])
                    w_3 = load(wt[k_3, c])
                    a0 += (xval(x, r0, nr, 0, k_0) * w_0 + xval(x, r0, nr, 0, k_1) * w_1) + (
                        xval(x, r0, nr, 0, k_2) * w_2 + xval(x, r0, nr, 0, k_3) * w_3)
                    a1 += (xval(x, r0, nr, 1, k_0) * w_0 + xval(x, r0, nr, 1, k_1) * w_1) + (
                        xval(x, r0, nr, 1, k_2) * w_2 + xval(x, r0, nr, 1, k_3) * w_3)
                    a2 += (xval(x, r0, nr, 2, k_0) * w_0 + xval(x, r0, nr, 2, k_1) * w_1) + (
                        xval(x, r0, nr, 2, k_2) * w_2 + xval(x, r0, nr, 2, k_3) * w_3)
                    a3 += (xval(x, r0, nr, 3, k_0) * w_0 + xval(x, r0, nr, 3, k_1) * w_1) + (
                        xval(x, r0, nr, 3, k_2) * w_2 + xval(x, r0, nr, 3, k_3) * w_3)
                    j += 4 * WARPS
                while j < total:
                    k_0 = idx_s[j]
                    w_0 = load(wt[k_0, c])
                    a0 += xval(x, r0, nr, 0, k_0) * w_0
                    a1 += xval(x, r0, nr, 1, k_0) * w_0
                    a2 += xval(x, r0, nr, 2, k_0) * w_0
                    a3 += xval(x, r0, nr, 3, k_0) * w_0
                    j += WARPS
            cuda.syncthreads()  # the next chunk overwrites the list
        # 3. the warps' partial sums, added in warp order
        red[warp, 0, lane] = a0
        red[warp, 1, lane] = a1
        red[warp, 2, lane] = a2
        red[warp, 3, lane] = a3
        cuda.syncthreads()
        for p in range(t, RT * TN, TPB):
            i = p // TN
            cc = p - i * TN
            col = cuda.blockIdx.y * TN + cc
            if i < nr and col < n:
                s = red[0, i, cc]
                for w in range(1, WARPS):
                    s += red[w, i, cc]
                if has_bias:
                    s += load(bias[col])
                if bf16:
                    out[r0 + i, col] = _f32_to_bf16(s)
                else:
                    out[r0 + i, col] = s
        if stats:
            cuda.syncthreads()
            if t < 3:
                scan_s[t] = 0
            cuda.syncthreads()
            cuda.atomic.add(scan_s, 0, n_ev)
            cuda.atomic.add(scan_s, 1, n_unit)
            cuda.atomic.add(scan_s, 2, bad)
            cuda.syncthreads()
            if t == 0:
                cuda.atomic.add(tally, 0, int64(scan_s[0]))
                cuda.atomic.add(tally, 1, int64(scan_s[1]))
                cuda.atomic.add(tally, 2, int64(scan_s[2]))

    return gather_dense


@functools.cache
def _count_kernel(bf16: bool):
    load = _bf16_to_f32 if bf16 else _as_f32

    @cuda.jit
    def count_events(x, tally):
        """Add the events, ±1 events and NaN/inf of ``x`` (1-D) to ``tally``."""
        t = cuda.threadIdx.x
        s = cuda.shared.array(3, int64)
        if t < 3:
            s[t] = 0
        cuda.syncthreads()
        ev = 0
        unit = 0
        bad = 0
        for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
            a = abs(load(x[i]))
            if a != 0:
                ev += 1
                if a == 1:
                    unit += 1
                elif not a < np.inf:
                    bad = 1
        cuda.atomic.add(s, 0, ev)
        cuda.atomic.add(s, 1, unit)
        cuda.atomic.add(s, 2, bad)
        cuda.syncthreads()
        if t < 3:
            cuda.atomic.add(tally, t, s[t])

    return count_events


def launch_count(x, tally, stream, bf16: bool = False) -> None:
    """Add the statistics of ``x`` (any shape, contiguous) to ``tally`` like the gather
    does (for calls that take the dense path but still count their events)."""
    flat = x.reshape(-1)
    n = flat.shape[0]
    if n == 0:
        return
    blocks = min(1024, (n + TPB * 8 - 1) // (TPB * 8))
    _launch.launch(_count_kernel(bf16), blocks, TPB, stream, flat, tally)


def launch_gather(x, wt, bias, out, tally, stream, bf16: bool = False) -> None:
    """Launch the gather: ``x [M, K]``, ``wt [K, N]`` (any strides), ``bias [N]`` or None,
    ``out [M, N]``, ``tally [3]`` int64 (added to: events, ±1 events, rows with NaN/inf
    counted per row tile). bf16 operands are passed as int16 views (``bf16=True``)."""
    n_rows, n = out.shape
    if n_rows == 0 or n == 0:
        return
    grid = ((n_rows + RT - 1) // RT, (n + TN - 1) // TN)
    has_bias = bias is not None
    _launch.launch(_kernel(bf16), grid, TPB, stream, x, wt, bias if has_bias else out[0],
                   has_bias, out, tally)  # fmt: skip
