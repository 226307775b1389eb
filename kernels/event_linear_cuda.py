"""Event Linear forward on the GPU with no host-built index and no host round trip.

``out[r, n] = bias[n] + Σ_{k: x[r, k] ≠ 0} x[r, k] · W[n, k]`` for ``x [M, K]`` dense
(binary or graded spikes), read straight from torch memory (numba.cuda; torch-free).
Two designs, picked by the row count (:func:`wants_lists`):

- from ``SPLIT_ROWS`` (16) rows, two kernels: ``compact_rows`` writes each row's events
  into a fixed-capacity list (``K`` slots per row, one block per row, a block scan), and
  ``gather_rows`` sums the weight rows of a row's events, one block per (row, ``GCOLS``
  columns) (see the section "many rows" below);
- below that, the one-kernel row tile described next (at batch 1 a 4096-wide layer still
  spreads over 128 blocks, and no second launch is paid).

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
from .event_index_cuda import _block_exclusive_scan

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
def _chunk_loader(bf16: bool):
    load = _bf16_to_f32 if bf16 else _as_f32

    @cuda.jit(device=True, inline=True)
    def load_chunk(x, row, k0, t, vals):
        """Inputs ``k0 + t + e * TPB`` (``e < EPT``) of ``x[row]`` into ``vals``; returns
        ``(mask, events, ±1 events, NaN/inf seen)``, bit e of mask set for an event. All
        loads are issued before any is tested (testing each as it arrived serialised
        them: ~16 L2 latencies)."""
        n_in = x.shape[1]
        for e in range(EPT):
            k = k0 + t + e * TPB
            vals[e] = load(x[row, k]) if k < n_in else float32(0)
        mask = 0
        n_ev = 0
        n_unit = 0
        bad = 0
        for e in range(EPT):
            v = vals[e]
            if v != 0:
                mask |= 1 << e
                n_ev += 1
                a = abs(v)
                if a == 1:
                    n_unit += 1
                elif not a < np.inf:
                    bad = 1
        return mask, n_ev, n_unit, bad

    return load_chunk


@functools.cache
def _kernel(bf16: bool):
    """The gather kernel for float32 (``bf16=False``) or bfloat16-bit operands."""
    load = _bf16_to_f32 if bf16 else _as_f32
    load_chunk = _chunk_loader(bf16)

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
            # 1. union of the chunk's active inputs over the tile's rows
            mask = 0  # bit e: input k0 + t + e*TPB is active in some row
            for i in range(RT):
                if i < nr:
                    m, ne, nu, nb = load_chunk(x, r0 + i, k0, t, vals)
                    mask |= m
                    if stats:
                        n_ev += ne
                        n_unit += nu
                        bad |= nb
            n_mine = cuda.popc(mask)
            pos, total = _block_exclusive_scan(scan_s, t, n_mine)
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


# -- many rows: an event list per row, then a gather per (row, 128 columns) -------------
# The row tile above re-scans the inputs once per 32-column tile and shares a weight read
# between its 4 rows only where their events coincide (rarely, at low activity): at 256
# rows it reads each weight row ~100 times from L2 through one warp per event. From 16
# rows two kernels do better (H100 in a graph, 1 % input: 16 rows 27.5 -> 19.4 µs, 256
# rows 344 -> 53 µs with one warp per (row, 512 columns); at 8 rows the tile still won).
SPLIT_ROWS = 16  # rows from which launch_gather takes the two-kernel path (measured)
GL = 8 if SIM else 32  # lanes of a gather warp (the simulator takes any width)
GW = 4  # warps of a gather block: they split the row's events
GT = GL * GW  # threads of a gather block
GC = 4  # columns per lane, GL apart (each load instruction is one coalesced line)
GCOLS = GL * GC  # columns per gather block
GE = 4  # events per pass of a warp: GE * GC weight loads in flight per thread


@functools.cache
def _compact_kernel(bf16: bool):
    load_chunk = _chunk_loader(bf16)

    @cuda.jit
    def compact_rows(x, idx, val, cnt, tally):
        """Row ``blockIdx.x`` of ``x [M, K]`` -> its events ``idx/val [r, :cnt[r]]``
        (float32 values), in a fixed order (thread-major per chunk); the row's events,
        ±1 events and a NaN/inf flag are added to ``tally``."""
        r = cuda.blockIdx.x
        t = cuda.threadIdx.x
        n_in = x.shape[1]
        s = cuda.shared.array(TPB, int32)
        st = cuda.shared.array(2, int32)
        if t < 2:
            st[t] = 0
        vals = cuda.local.array(EPT, float32)
        n_ev = 0
        n_unit = 0
        bad = 0
        base = 0
        for k0 in range(0, n_in, CH):
            mask, ne, nu, nb = load_chunk(x, r, k0, t, vals)
            n_ev += ne
            n_unit += nu
            bad |= nb
            excl, total = _block_exclusive_scan(s, t, cuda.popc(mask))
            pos = base + excl
            for e in range(EPT):
                if mask & (1 << e):
                    idx[r, pos] = k0 + t + e * TPB
                    val[r, pos] = vals[e]
                    pos += 1
            base += total
        cuda.atomic.add(st, 0, n_ev)
        cuda.atomic.add(st, 1, n_unit)
        any_bad = cuda.syncthreads_or(bad)
        if t == 0:
            cnt[r] = base
            cuda.atomic.add(tally, 0, int64(st[0]))
            cuda.atomic.add(tally, 1, int64(st[1]))
            if any_bad:
                cuda.atomic.add(tally, 2, int64(1))

    return compact_rows


@functools.cache
def _rows_kernel(bf16: bool):
    load = _bf16_to_f32 if bf16 else _as_f32

    @cuda.jit
    def gather_rows(idx, val, cnt, wt, bias, has_bias, out):
        """``out[r, cols] = bias + Σ_j val[r, j] · wt[idx[r, j], cols]`` for row
        ``blockIdx.x`` and the ``GCOLS`` columns of ``blockIdx.y``.

        The row's events are staged in shared memory ``GT`` at a time; the ``GW`` warps
        split them (warp w takes events w, w + GW, ...), a lane owns ``GC`` columns ``GL``
        apart and takes ``GE`` events per pass, so ``GE * GC`` independent weight loads
        are in flight before the first is used: the kernel is bound by the latency of
        those loads, not by bandwidth, until rows hold hundreds of events (one warp
        walking a whole row of 400 events took 91 µs on the H100, against 14 µs for the
        row tile). The warps' sums are added in shared memory in warp order. Columns past
        ``N`` are clamped for the loads and not stored, so no load is predicated."""
        r = cuda.blockIdx.x
        t = cuda.threadIdx.x
        lane = t % GL
        warp = t // GL
        n = out.shape[1]
        cbase = cuda.blockIdx.y * GCOLS + lane
        c0 = min(cbase, n - 1)
        c1 = min(cbase + GL, n - 1)
        c2 = min(cbase + 2 * GL, n - 1)
        c3 = min(cbase + 3 * GL, n - 1)
        k_s = cuda.shared.array(GT, int32)
        v_s = cuda.shared.array(GT, float32)
        red = cuda.shared.array((GW, GCOLS), float32)
        a0 = float32(0)
        a1 = float32(0)
        a2 = float32(0)
        a3 = float32(0)
        total = cnt[r]
        for j0 in range(0, total, GT):
            m = min(GT, total - j0)
            if t < m:
                k_s[t] = idx[r, j0 + t]
                v_s[t] = val[r, j0 + t]
            cuda.syncthreads()
            j = warp
            while j + (GE - 1) * GW < m:
                ka = k_s[j]
                kb = k_s[j + GW]
                kc = k_s[j + 2 * GW]
                kd = k_s[j + 3 * GW]
                wa0 = load(wt[ka, c0])
                wa1 = load(wt[ka, c1])
                wa2 = load(wt[ka, c2])
                wa3 = load(wt[ka, c3])
                wb0 = load(wt[kb, c0])
                wb1 = load(wt[kb, c1])
                wb2 = load(wt[kb, c2])
                wb3 = load(wt[kb, c3])
                wc0 = load(wt[kc, c0])
                wc1 = load(wt[kc, c1])
                wc2 = load(wt[kc, c2])
                wc3 = load(wt[kc, c3])
                wd0 = load(wt[kd, c0])
                wd1 = load(wt[kd, c1])
                wd2 = load(wt[kd, c2])
                wd3 = load(wt[kd, c3])
                va = v_s[j]
                vb = v_s[j + GW]
                vc = v_s[j + 2 * GW]
                vd = v_s[j + 3 * GW]
                a0 += (va * wa0 + vb * wb0) + (vc * wc0 + vd * wd0)
                a1 += (va * wa1 + vb * wb1) + (vc * wc1 + vd * wd1)
                a2 += (va * wa2 + vb * wb2) + (vc * wc2 + vd * wd2)
                a3 += (va * wa3 + vb * wb3) + (vc * wc3 + vd * wd3)
                j += GE * GW
            while j < m:
                ka = k_s[j]
                va = v_s[j]
                a0 += va * load(wt[ka, c0])
                a1 += va * load(wt[ka, c1])
                a2 += va * load(wt[ka, c2])
                a3 += va * load(wt[ka, c3])
                j += GW
            cuda.syncthreads()  # the next pass overwrites the staged events
        red[warp, lane] = a0
        red[warp, lane + GL] = a1
        red[warp, lane + 2 * GL] = a2
        red[warp, lane + 3 * GL] = a3
        cuda.syncthreads()
        for p in range(t, GCOLS, GT):
            c = cuda.blockIdx.y * GCOLS + p
            if c < n:
                acc = red[0, p]
                for w in range(1, GW):
                    acc += red[w, p]
                if has_bias:
                    acc += load(bias[c])
                if bf16:
                    out[r, c] = _f32_to_bf16(acc)
                else:
                    out[r, c] = acc

    return gather_rows


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


def launch_gather(x, wt, bias, out, tally, stream, bf16: bool = False, lists=None) -> None:
    """Launch the forward: ``x [M, K]``, ``wt [K, N]`` (any strides), ``bias [N]`` or
    None, ``out [M, N]``, ``tally [3]`` int64 (added to: events, ±1 events, rows with
    NaN/inf). bf16 operands are passed as int16 views (``bf16=True``).

    ``lists``: ``(idx, val, cnt)`` scratch of shapes ``[M, K]`` int32, ``[M, K]`` float32
    and ``[M]`` int32 (see :func:`wants_lists`); given, the two-kernel path runs
    (compact each row, then gather), else the one-kernel row tile."""
    n_rows, n = out.shape
    if n_rows == 0 or n == 0:
        return
    has_bias = bias is not None
    b = bias if has_bias else out[0]
    if lists is not None:
        idx, val, cnt = lists
        _launch.launch(_compact_kernel(bf16), n_rows, TPB, stream, x, idx, val, cnt, tally)
        _launch.launch(_rows_kernel(bf16), (n_rows, (n + GCOLS - 1) // GCOLS), GT, stream,
                       idx, val, cnt, wt, b, has_bias, out)  # fmt: skip
        return
    grid = ((n_rows + RT - 1) // RT, (n + TN - 1) // TN)
    _launch.launch(_kernel(bf16), grid, TPB, stream, x, wt, b, has_bias, out, tally)


def wants_lists(n_rows: int) -> bool:
    """Whether a call of ``n_rows`` rows should take the two-kernel path (event lists)."""
    return n_rows >= SPLIT_ROWS
