"""Event Linear forward on the GPU with no host-built index and no host round trip.

``out[r, n] = bias[n] + Σ_{k: x[r, k] ≠ 0} x[r, k] · W[n, k]`` for ``x [M, K]`` dense
(binary or graded spikes), read straight from torch memory (numba.cuda; torch-free).
The design is picked by the row count and the weight's layout (:func:`gather_path`):

- from ``FUSED_FROM`` (8) to ``LISTS_FROM`` (128) rows, where ``Wᵀ`` is contiguous
  (``EventLinear`` stores it so) and can be read as int64 words (4 bf16 or 2 fp32
  columns per load): ``gather_fused``, one kernel; one block per (row, ``GCOLS``
  columns) compacts its row's events chunk by chunk in shared memory and sums their
  weight rows (section "fused");
- from ``LISTS_FROM`` rows with such a weight, and from ``SPLIT_ROWS`` (16) rows with
  any other: two kernels. ``compact_rows`` writes each row's events into a
  fixed-capacity list (``K`` slots per row, one block per row, a block scan), and one
  block per (row, ``GCOLS`` columns) sums the weight rows of the row's events (section
  "many rows"): ``gather_rows_wide`` through the int64 words, else ``gather_rows`` one
  column per load;
- below those, the one-kernel row tile described next (at batch 1 a 4096-wide layer
  still spreads over 128 blocks, and no second launch is paid).

H100, 4096 x 4096, in CUDA graphs, µs per call at 1 % input (fp32; ``python
benchmarks/profile_event_gpu.py --sections graphs``, RESULTS.md): 1 row: tile 6.3, fused
8.3; 8 rows: tile 16.3, fused 10.6, lists 12.5; 64 rows: fused 16.3, lists 17.4; 256
rows: fused 41.7, lists 40.5 (bf16 35.0 against 27.4).

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

    @cuda.jit(device=True)
    def _bits_to_f32(bits):
        return np.array([int(bits) & 0xFFFFFFFF], np.uint32).view(np.float32)[0]

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
    def _bits_to_f32(bits):
        # the low 32 bits of an integer as a float32 (int32() truncates)
        return libdevice.int_as_float(int32(bits))


@cuda.jit(device=True, inline=True)
def _as_f32(v):
    return float32(v)


@functools.cache
def _chunk_loader(bf16: bool, tpb: int = TPB, ept: int = EPT):
    load = _bf16_to_f32 if bf16 else _as_f32

    @cuda.jit(device=True, inline=True)
    def load_chunk(x, row, k0, t, vals):
        """Inputs ``k0 + t + e * tpb`` (``e < ept``) of ``x[row]`` into ``vals``; returns
        ``(mask, events, ±1 events, NaN/inf seen)``, bit e of mask set for an event. All
        loads are issued before any is tested (testing each as it arrived serialised
        them: ~16 L2 latencies)."""
        n_in = x.shape[1]
        for e in range(ept):
            k = k0 + t + e * tpb
            vals[e] = load(x[row, k]) if k < n_in else float32(0)
        mask = 0
        n_ev = 0
        n_unit = 0
        bad = 0
        for e in range(ept):
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


# -- many rows: an event list per row, then a gather per (row, 512 columns) -------------
# The row tile above re-scans the inputs once per 32-column tile and shares a weight read
# between its 4 rows only where their events coincide (rarely, at low activity): at 256
# rows it reads each weight row ~100 times from L2 through one warp per event. From 16
# rows two kernels do better (H100 in a graph, 1 % input: 16 rows 27.5 -> 19.4 µs, 256
# rows 344 -> 53 µs; at 8 rows the tile still won). A thread walks all of its row's
# events, so a row of hundreds of events is a long chain of dependent passes (1 row at
# 10 %: 91 µs against the tile's 14), which is why one row keeps the tile.
# rows from which the event lists replace the row tile where the fused gather is not taken
# (a weight not readable as words, or FUSED off; gather_path)
SPLIT_ROWS = 16
GT = 32 if SIM else 128  # threads of a gather block
GC = 4  # columns per thread, GT apart (each load instruction is one coalesced line)
GCOLS = GT * GC  # columns per gather block
GE = 4  # events per pass of the gather: GE * GC weight loads in flight per thread


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
        _add_row_stats(st, tally, n_ev, n_unit, bad)
        if t == 0:
            cnt[r] = base

    return compact_rows


@cuda.jit(device=True, inline=True)
def _add_row_stats(st, tally, n_ev, n_unit, bad):
    """Add a row's events, ±1 events (each thread's counts) and, once, whether it holds
    NaN/inf to ``tally``; ``st``: two shared int32 zeroed before the block's last
    barrier. Every thread of the block must call it (it holds a barrier)."""
    cuda.atomic.add(st, 0, n_ev)
    cuda.atomic.add(st, 1, n_unit)
    any_bad = cuda.syncthreads_or(bad)
    if cuda.threadIdx.x == 0:
        cuda.atomic.add(tally, 0, int64(st[0]))
        cuda.atomic.add(tally, 1, int64(st[1]))
        if any_bad:
            cuda.atomic.add(tally, 2, int64(1))


@cuda.jit(device=True, inline=True)
def _stage_events(idx, val, r, j0, total, k_s, v_s):
    """Events ``j0 ..`` of row ``r``'s list, at most ``GT``, into shared memory (after
    a barrier, so every thread sees them); returns how many."""
    t = cuda.threadIdx.x
    m = min(GT, total - j0)
    if t < m:
        k_s[t] = idx[r, j0 + t]
        v_s[t] = val[r, j0 + t]
    cuda.syncthreads()
    return m


@functools.cache
def _storer(bf16: bool):
    """``store(out, bias, has_bias, r, c, n, acc)``: a gather's sum of column ``c < n``
    of row ``r``, plus the bias, written in the output's type (bf16 rounded to nearest
    even)."""
    load = _bf16_to_f32 if bf16 else _as_f32

    @cuda.jit(device=True, inline=True)
    def store(out, bias, has_bias, r, c, n, acc):
        if c < n:
            if has_bias:
                acc += load(bias[c])
            if bf16:
                out[r, c] = _f32_to_bf16(acc)
            else:
                out[r, c] = acc

    return store


@functools.cache
def _rows_kernel(bf16: bool):
    load = _bf16_to_f32 if bf16 else _as_f32
    _store = _storer(bf16)

    @cuda.jit
    def gather_rows(idx, val, cnt, wt, bias, has_bias, out):
        """``out[r, cols] = bias + Σ_j val[r, j] · wt[idx[r, j], cols]`` for row
        ``blockIdx.x`` and the ``GCOLS`` columns of ``blockIdx.y``.

        The row's events are staged in shared memory ``GT`` at a time; each thread owns
        ``GC`` columns ``GT`` apart and takes ``GE`` events per pass, so ``GE * GC``
        independent weight loads are in flight before the first is used (the kernel is
        bound by L2 latency, not bandwidth, at low activity). Columns past ``N`` are
        clamped for the loads and not stored, so no load is predicated."""
        r = cuda.blockIdx.x
        t = cuda.threadIdx.x
        n = out.shape[1]
        cbase = cuda.blockIdx.y * GCOLS + t
        c0 = min(cbase, n - 1)
        c1 = min(cbase + GT, n - 1)
        c2 = min(cbase + 2 * GT, n - 1)
        c3 = min(cbase + 3 * GT, n - 1)
        k_s = cuda.shared.array(GT, int32)
        v_s = cuda.shared.array(GT, float32)
        a0 = float32(0)
        a1 = float32(0)
        a2 = float32(0)
        a3 = float32(0)
        total = cnt[r]
        for j0 in range(0, total, GT):
            m = _stage_events(idx, val, r, j0, total, k_s, v_s)
            j = 0
            while j + GE <= m:
                ka = k_s[j]
                kb = k_s[j + 1]
                kc = k_s[j + 2]
                kd = k_s[j + 3]
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
                vb = v_s[j + 1]
                vc = v_s[j + 2]
                vd = v_s[j + 3]
                a0 += (va * wa0 + vb * wb0) + (vc * wc0 + vd * wd0)
                a1 += (va * wa1 + vb * wb1) + (vc * wc1 + vd * wd1)
                a2 += (va * wa2 + vb * wb2) + (vc * wc2 + vd * wd2)
                a3 += (va * wa3 + vb * wb3) + (vc * wc3 + vd * wd3)
                j += GE
            while j < m:
                ka = k_s[j]
                va = v_s[j]
                a0 += va * load(wt[ka, c0])
                a1 += va * load(wt[ka, c1])
                a2 += va * load(wt[ka, c2])
                a3 += va * load(wt[ka, c3])
                j += 1
            cuda.syncthreads()  # the next pass overwrites the staged events
        _store(out, bias, has_bias, r, cbase, n, a0)
        _store(out, bias, has_bias, r, cbase + GT, n, a1)
        _store(out, bias, has_bias, r, cbase + 2 * GT, n, a2)
        _store(out, bias, has_bias, r, cbase + 3 * GT, n, a3)

    return gather_rows


# -- the same gather through 8-byte weight loads -----------------------------------------
# ``gather_rows`` loads one weight per column: a warp's load instruction is one 128-byte
# line (fp32) or half of one (bf16), four instructions per event per thread. Here a
# contiguous ``Wᵀ`` is read as int64 words (4 bf16 or 2 fp32 columns in each), so a
# thread's four columns are adjacent and come in one load (bf16) or two (fp32): 4x / 2x
# fewer load instructions for the same bytes, 8 events per pass. The gather was bound by
# load instructions, not bytes: on an H100, 4096², the op in a CUDA graph at 1 % input,
# 256 rows 48.4 -> 27.4 µs (bf16) / 53.2 -> 41.0 (fp32), 16 rows 18.3 -> 12.7 / 17.2 ->
# 12.1 (RESULTS.md, "8-byte weight loads"). Every column adds the same products in the
# same order as ``gather_rows`` (groups of ``GE`` events, then single events, staged
# ``GT`` at a time), so the sums are the same bits.
WIDE = True  # take the wide gather where the weight allows it (columns_per_word)


@functools.cache
def _wide_parts(bf16: bool, per_pass: int = 0):
    """Device functions of the wide gathers: ``sum_events`` (a staged list of events
    added into a thread's four column sums) and ``store_cols`` (the sums written out)."""
    # events whose weight words are loaded before any is used (8 words in flight per
    # thread for bf16, 16 for fp32); 16 bf16 events per pass measured no faster on an H100
    PASS = per_pass or 8
    assert PASS % GE == 0, "a pass is whole groups of GE events"

    @cuda.jit(device=True, inline=True)
    def col(wa, wb, q):
        """Column ``q`` (0-3) of a thread's four from its words ``wa`` (and ``wb``)."""
        if bf16:
            return _bf16_to_f32((wa >> (16 * q)) & 0xFFFF)
        w = wa if q < 2 else wb
        return _bits_to_f32((w >> (32 * (q & 1))) & 0xFFFFFFFF)

    @cuda.jit(device=True, inline=True)
    def words(w8, k, la, lb):
        wa = w8[k, la]
        return wa, (wa if bf16 else w8[k, lb])

    @cuda.jit(device=True, inline=True)
    def add4(a, q, v0, v1, v2, v3, w0, w1, w2, w3):
        # gather_rows' pass: (v0 w0 + v1 w1) + (v2 w2 + v3 w3), added to the sum
        return a + ((v0 * col(w0[0], w0[1], q) + v1 * col(w1[0], w1[1], q))
                    + (v2 * col(w2[0], w2[1], q) + v3 * col(w3[0], w3[1], q)))

    @cuda.jit(device=True, inline=True)
    def sum_events(k_s, v_s, m, w8, la, lb, a0, a1, a2, a3):
        """Add events ``k_s/v_s[:m]`` to the sums in groups of ``GE`` (then one by one),
        every weight word of ``PASS`` events loaded before any is used."""
        wa = cuda.local.array(PASS, int64)
        wb = cuda.local.array(PASS, int64)
        vv = cuda.local.array(PASS, float32)
        j = 0
        while j + PASS <= m:
            for e in range(PASS):
                k = k_s[j + e]
                wa[e] = w8[k, la]
                wb[e] = wa[e] if bf16 else w8[k, lb]
                vv[e] = v_s[j + e]
            for g in range(0, PASS, GE):
                w0 = (wa[g], wb[g])
                w1 = (wa[g + 1], wb[g + 1])
                w2 = (wa[g + 2], wb[g + 2])
                w3 = (wa[g + 3], wb[g + 3])
                a0 = add4(a0, 0, vv[g], vv[g + 1], vv[g + 2], vv[g + 3], w0, w1, w2, w3)
                a1 = add4(a1, 1, vv[g], vv[g + 1], vv[g + 2], vv[g + 3], w0, w1, w2, w3)
                a2 = add4(a2, 2, vv[g], vv[g + 1], vv[g + 2], vv[g + 3], w0, w1, w2, w3)
                a3 = add4(a3, 3, vv[g], vv[g + 1], vv[g + 2], vv[g + 3], w0, w1, w2, w3)
            j += PASS
        while j + GE <= m:
            w0 = words(w8, k_s[j], la, lb)
            w1 = words(w8, k_s[j + 1], la, lb)
            w2 = words(w8, k_s[j + 2], la, lb)
            w3 = words(w8, k_s[j + 3], la, lb)
            v0 = v_s[j]
            v1 = v_s[j + 1]
            v2 = v_s[j + 2]
            v3 = v_s[j + 3]
            a0 = add4(a0, 0, v0, v1, v2, v3, w0, w1, w2, w3)
            a1 = add4(a1, 1, v0, v1, v2, v3, w0, w1, w2, w3)
            a2 = add4(a2, 2, v0, v1, v2, v3, w0, w1, w2, w3)
            a3 = add4(a3, 3, v0, v1, v2, v3, w0, w1, w2, w3)
            j += GE
        while j < m:
            w0 = words(w8, k_s[j], la, lb)
            v0 = v_s[j]
            a0 += v0 * col(w0[0], w0[1], 0)
            a1 += v0 * col(w0[0], w0[1], 1)
            a2 += v0 * col(w0[0], w0[1], 2)
            a3 += v0 * col(w0[0], w0[1], 3)
            j += 1
        return a0, a1, a2, a3

    store = _storer(bf16)

    @cuda.jit(device=True, inline=True)
    def store_cols(out, bias, has_bias, r, ja, jb, n8, a0, a1, a2, a3):
        """The four sums of word ``ja`` (bf16) or words ``ja, jb`` (fp32) of row ``r``."""
        n = out.shape[1]
        if ja < n8:
            if bf16:
                store(out, bias, has_bias, r, 4 * ja, n, a0)
                store(out, bias, has_bias, r, 4 * ja + 1, n, a1)
                store(out, bias, has_bias, r, 4 * ja + 2, n, a2)
                store(out, bias, has_bias, r, 4 * ja + 3, n, a3)
            else:
                store(out, bias, has_bias, r, 2 * ja, n, a0)
                store(out, bias, has_bias, r, 2 * ja + 1, n, a1)
        if not bf16 and jb < n8:
            store(out, bias, has_bias, r, 2 * jb, n, a2)
            store(out, bias, has_bias, r, 2 * jb + 1, n, a3)

    return sum_events, store_cols


@cuda.jit(device=True, inline=True)
def _word_columns(bf16, n8):
    """A thread's words ``ja, jb`` and their clamped load indexes ``la, lb`` (module
    comment above: four bf16 columns in one word, or two fp32 columns in each of two)."""
    t = cuda.threadIdx.x
    if bf16:
        ja = cuda.blockIdx.y * GT + t
        jb = ja
    else:
        ja = cuda.blockIdx.y * 2 * GT + t
        jb = ja + GT
    # clamped, so no load is predicated; nothing is stored past the last word
    return ja, jb, min(ja, n8 - 1), min(jb, n8 - 1)


@functools.cache
def _wide_kernel(bf16: bool, per_pass: int = 0):
    sum_events, store_cols = _wide_parts(bf16, per_pass)

    @cuda.jit
    def gather_rows_wide(idx, val, cnt, w8, bias, has_bias, out):
        """``gather_rows`` with ``Wᵀ`` read as ``w8 [K, N / 4]`` (bf16) or ``[K, N / 2]``
        (fp32) int64 words. A thread owns columns ``4j .. 4j + 3`` of word ``j`` (bf16)
        or ``2j, 2j + 1, 2j', 2j' + 1`` of words ``j`` and ``j' = j + GT`` (fp32)."""
        r = cuda.blockIdx.x
        n8 = w8.shape[1]
        ja, jb, la, lb = _word_columns(bf16, n8)
        k_s = cuda.shared.array(GT, int32)
        v_s = cuda.shared.array(GT, float32)
        a0 = a1 = a2 = a3 = float32(0)
        total = cnt[r]
        for j0 in range(0, total, GT):
            m = _stage_events(idx, val, r, j0, total, k_s, v_s)
            a0, a1, a2, a3 = sum_events(k_s, v_s, m, w8, la, lb, a0, a1, a2, a3)
            cuda.syncthreads()  # the next pass overwrites the staged events
        store_cols(out, bias, has_bias, r, ja, jb, n8, a0, a1, a2, a3)

    return gather_rows_wide


# -- one kernel: each gather block compacts its row itself ------------------------------
# The event lists cost a launch, a write and a read of every row's list, and a wait for
# the whole compaction before any gather starts. Here every (row, GCOLS columns) block of
# the wide gather scans its row itself, ``FCH`` inputs at a time (the 8 blocks of a
# 4096-wide row read it 8 times, from L2), stages the chunk's events in shared memory and
# adds them. Deterministic, but its events come in another order than the lists' (every
# ``GT``-th input of ``FCH``-input chunks), so its sums may differ from theirs in the last
# bit.
FE = 2 if SIM else 16  # inputs per thread per chunk of the fused gather
FCH = GT * FE  # inputs per chunk (and the most events a chunk can stage)
# Measured on an H100 (2026-12-07, module docstring): from 8 rows it beats the row tile
# (at 1 row the tile wins, 6.3 against 8.3 µs) and up to 64 rows the event lists (at 256
# rows the lists win); 2-7 and 65-255 rows were not measured, and the limits sit between.
FUSED = True  # the fused gather for a weight read as words (gather_path)
FUSED_FROM = 8  # rows from which such a weight takes it
LISTS_FROM = 128  # rows from which it takes the event lists instead


@functools.cache
def _fused_kernel(bf16: bool, per_pass: int = 0, fe: int = FE):
    sum_events, store_cols = _wide_parts(bf16, per_pass)
    load_chunk = _chunk_loader(bf16, GT, fe)
    FE, FCH = fe, GT * fe  # noqa: N806 (the module's constants, or a variant's)

    @cuda.jit
    def gather_fused(x, w8, bias, has_bias, out, tally):
        """``out[r, cols] = bias + Σ_k x[r, k] · Wᵀ[k, cols]`` for row ``blockIdx.x`` and
        the ``GCOLS`` columns of ``blockIdx.y`` (word layout of ``gather_rows_wide``); the
        blocks of column block 0 add their row's statistics to ``tally`` as
        ``compact_rows`` does."""
        r = cuda.blockIdx.x
        t = cuda.threadIdx.x
        n_in = x.shape[1]
        n8 = w8.shape[1]
        ja, jb, la, lb = _word_columns(bf16, n8)
        k_s = cuda.shared.array(FCH, int32)
        v_s = cuda.shared.array(FCH, float32)
        scan_s = cuda.shared.array(GT, int32)
        st = cuda.shared.array(2, int32)
        vals = cuda.local.array(FE, float32)
        if t < 2:
            st[t] = 0
        a0 = a1 = a2 = a3 = float32(0)
        n_ev = n_unit = bad = 0
        for k0 in range(0, n_in, FCH):
            mask, ne, nu, nb = load_chunk(x, r, k0, t, vals)
            n_ev, n_unit, bad = n_ev + ne, n_unit + nu, bad | nb
            pos, total = _block_exclusive_scan(scan_s, t, cuda.popc(mask))
            for e in range(FE):
                if mask & (1 << e):
                    k_s[pos] = k0 + t + e * GT
                    v_s[pos] = vals[e]
                    pos += 1
            cuda.syncthreads()
            a0, a1, a2, a3 = sum_events(k_s, v_s, total, w8, la, lb, a0, a1, a2, a3)
            cuda.syncthreads()  # the next chunk overwrites the staged events
        store_cols(out, bias, has_bias, r, ja, jb, n8, a0, a1, a2, a3)
        if cuda.blockIdx.y == 0:  # the same for the whole block
            _add_row_stats(st, tally, n_ev, n_unit, bad)

    return gather_fused


def columns_per_word(bf16: bool) -> int:
    """Columns in one int64 word of the wide gather: 4 (bf16) or 2 (fp32). A contiguous
    ``Wᵀ`` whose column count is a multiple of it and whose data is 8-byte aligned can be
    read that way."""
    return 4 if bf16 else 2


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


def launch_gather(x, wt, bias, out, tally, stream, bf16: bool = False, lists=None,
                  wide=None) -> None:  # fmt: skip
    """Launch the forward: ``x [M, K]``, ``wt [K, N]`` (any strides), ``bias [N]`` or
    None, ``out [M, N]``, ``tally [3]`` int64 (added to: events, ±1 events, rows with
    NaN/inf). bf16 operands are passed as int16 views (``bf16=True``).

    The design follows from what is given (:func:`gather_path` says which to give):
    ``lists`` (``(idx, val, cnt)`` scratch of shapes ``[M, K]`` int32, ``[M, K]``
    float32 and ``[M]`` int32): compact each row, then gather, through ``wide`` (``wt``
    as int64 words, :func:`columns_per_word`) where given; ``wide`` alone: the fused
    gather; neither: the one-kernel row tile."""
    n_rows, n = out.shape
    if n_rows == 0 or n == 0:
        return
    has_bias = bias is not None
    b = bias if has_bias else out[0]
    grid = (n_rows, (n + GCOLS - 1) // GCOLS)  # the gathers': a block per (row, GCOLS)
    if lists is not None:
        idx, val, cnt = lists
        _launch.launch(_compact_kernel(bf16), n_rows, TPB, stream, x, idx, val, cnt, tally)
        if wide is not None:
            _launch.launch(_wide_kernel(bf16), grid, GT, stream, idx, val, cnt, wide, b,
                           has_bias, out)  # fmt: skip
        else:
            _launch.launch(_rows_kernel(bf16), grid, GT, stream, idx, val, cnt, wt, b,
                           has_bias, out)  # fmt: skip
        return
    if wide is not None:
        _launch.launch(_fused_kernel(bf16), grid, GT, stream, x, wide, b, has_bias, out, tally)
        return
    tiles = ((n_rows + RT - 1) // RT, (n + TN - 1) // TN)
    _launch.launch(_kernel(bf16), tiles, TPB, stream, x, wt, b, has_bias, out, tally)


def gather_path(n_rows: int, words: bool) -> str:
    """Which forward a call of ``n_rows`` rows takes. With a weight read as int64 words
    (``words``) and ``FUSED`` on: ``"fused"`` from ``FUSED_FROM`` to ``LISTS_FROM`` rows.
    Otherwise ``"tile"`` below ``SPLIT_ROWS`` and the event lists from there, gathered
    through the words where given (``"lists wide"``, unless ``WIDE`` is off), else
    ``"lists"`` (benchmarks toggle ``FUSED`` and ``WIDE``)."""
    if words and FUSED and FUSED_FROM <= n_rows < LISTS_FROM:
        return "fused"
    if n_rows < SPLIT_ROWS:
        return "tile"
    return "lists wide" if words and WIDE else "lists"


def wants_lists(n_rows: int) -> bool:
    """Whether a call of ``n_rows`` rows may leave the row tile, so that the weight's
    word view is worth making (a weight read as words leaves it whenever any does)."""
    return gather_path(n_rows, True) != "tile"
