"""HTM temporal memory step on flat arrays (``numba.njit``), torch-free.

State layout (every array is owned by ``neurosparse.sdr.SequenceMemory``)::

    synapses  syn_i32[NS, 4] = (presynaptic cell, segment, position in the segment's
              list, position in the presynaptic cell's out-list)
              free ids on the stack syn_free; a free synapse has segment = -1
    segments  seg_i32[NG, 6] = (cell, prev, next (per-cell linked list), n synapses,
              list capacity, -);  seg_i64[NG, 2] = (list start in seg_data, last used)
              seg_cnt[NG] = active potential synapses | active connected synapses << 13
              | step stamp << 26 (counted at the last activation; one packed word = one
              memory access; see ``STAMP_SHIFT``)
              free ids on the stack seg_free; a free segment has cell = -1
    cells     cell_i32[n_cells, 4] = (first segment, n segments, out-list length,
              out-list capacity);  cell_i64[n_cells] = out-list start in the out pool
    pools     seg_data: synapse ids of each segment (CSR-like, one block per segment)
              out_syn / out_seg / out_perm: for each presynaptic cell, its synapses, their
              segments (| CONN_FLAG when connected) and their permanences (which live
              only here). This reverse index makes activation cost ∝ active cells ×
              their synapses and reads 4 bytes per synapse sequentially; the only random
              access is the segment's counter.

A block that fills up moves to the end of its pool with twice the room; the hole it
leaves is counted in ``meta`` and the owner compacts the pool when holes dominate.
Arrays never grow inside the kernel: :func:`tm_step` first computes a worst-case
bound for this step and returns ``NEED_MORE`` with the sizes it needs, so the owner
can enlarge the arrays and call again (nothing has been modified at that point).

Every choice that could depend on storage order is made order-free (ties broken by
id or by presynaptic cell), so the pure-Python reference in
``neurosparse/sdr/_tm_reference.py`` reproduces this kernel cell for cell.
"""

from __future__ import annotations

import numpy as np
from llvmlite import binding as _llvm
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# meta[] slots
ITER, SYN_HW, SYN_NFREE, SEG_HW, SEG_NFREE = 0, 1, 2, 3, 4
SEGPOOL_USED, SEGPOOL_WASTE, OUTPOOL_USED, OUTPOOL_WASTE = 5, 6, 7, 8
N_ACTIVE, N_WINNER, N_ACTSEG, N_MATCHSEG, N_TOUCHED, N_PREDICTIVE = 9, 10, 11, 12, 13, 14
N_SYN_LIVE, N_SEG_LIVE = 15, 16
SYN_CREATED, SYN_DESTROYED, SEG_CREATED, SEG_DESTROYED, SYN_VISITED = 17, 18, 19, 20, 21
STEP = 22  # steps run, learning or not
META_SIZE = 24

# seg_i32 columns
S_CELL, S_PREV, S_NEXT, S_LEN, S_CAP = 0, 1, 2, 3, 4
SEG_COLS = 6
# seg_cnt packs two 13-bit counts and the stamp of the step that wrote them, so a
# counter from an earlier step reads as stale instead of needing a clearing pass:
# bits 0-12 active potential synapses, 13-25 active connected ones, 26-30 the stamp
# (1 … STAMP_PERIOD; all counters are zeroed when it wraps, once per STAMP_PERIOD steps).
CNT_BITS = 13
POT_MASK = (1 << CNT_BITS) - 1
CONN_ONE = 1 << CNT_BITS
STAMP_SHIFT = 2 * CNT_BITS
STAMP_PERIOD = 31
MAX_SYNAPSES_PER_SEGMENT = POT_MASK  # a count must fit its 13 bits
# out_seg entries carry the segment id and, in bit 30, whether the synapse is connected,
# so counting a segment's active synapses never has to read the permanence.
CONN_FLAG = 1 << 30
SEG_MASK = CONN_FLAG - 1
# seg_i64 columns
S_START, S_LAST = 0, 1
# cell_i32 columns
C_HEAD, C_NSEG, C_OLEN, C_OCAP = 0, 1, 2, 3
# syn_i32 columns
Y_PRE, Y_SEG, Y_PSEG, Y_POUT = 0, 1, 2, 3

# The step runs without Numba's reference counting (``_nrt=False``): it allocates
# nothing, and the atomic incref/decref pairs Numba otherwise emits around every
# helper call taking arrays cost ~40 ns each, several times the work of a synapse.
_kernel = njit(cache=True, _nrt=False)

OK, NEED_MORE = 0, 1
PREFETCH_CELLS = 4  # the dendrite pass requests the out-lists of the cells this far ahead
CACHE_LINE_I32 = 16
# the intrinsic's name carries the pointer type: opaque pointers from LLVM 15 on
_PREFETCH_FN = "llvm.prefetch.p0" if _llvm.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"


@intrinsic
def prefetch(typingctx, arr, idx):
    """Ask the CPU to start loading ``arr[idx]``'s cache line (a read hint, no effect on
    results). The out-lists the dendrite pass reads lie scattered over a pool of
    hundreds of MB, so each one otherwise starts with a full memory latency."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False)
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _PREFETCH_FN)
        # (address, read, high temporal locality, data cache)
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3),
                          ir.Constant(i32, 1)])  # fmt: skip
        return context.get_dummy_value()

    return sig, codegen


EPSILON = 1e-5  # permanences below this are zero: the synapse is destroyed
MIN_BLOCK = 8


@_kernel
def rng_next(rng):
    """splitmix64: next 64-bit value of the generator whose state is ``rng[0]``."""
    rng[0] += np.uint64(0x9E3779B97F4A7C15)
    z = rng[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@_kernel
def rng_below(rng, n):
    """Uniform integer in ``[0, n)`` by multiply-shift of the high 32 bits."""
    hi = rng_next(rng) >> np.uint64(32)
    return np.int64((hi * np.uint64(n)) >> np.uint64(32))


# ---------------------------------------------------------------- list pools
#
# The helpers below take the whole state as one tuple ``st`` (see ``STATE_FIELDS``);
# Numba unpacks it at compile time, so this costs nothing at run time.

STATE_FIELDS = (
    "syn_i32", "syn_free", "seg_i32", "seg_i64", "seg_cnt", "seg_free", "seg_data",
    "cell_i32", "cell_i64", "out_syn", "out_seg", "out_perm", "meta",
)  # fmt: skip


@_kernel
def _seg_reserve(st, seg, extra, max_cap):
    _, _, seg_i32, seg_i64, _, _, seg_data, _, _, _, _, _, meta = st
    n = seg_i32[seg, S_LEN]
    cap = seg_i32[seg, S_CAP]
    if n + extra <= cap:
        return
    new_cap = min(max(2 * cap, n + extra, MIN_BLOCK), max(max_cap, n + extra))
    start = meta[SEGPOOL_USED]
    old = seg_i64[seg, S_START]
    for i in range(n):
        seg_data[start + i] = seg_data[old + i]
    seg_i64[seg, S_START] = start
    meta[SEGPOOL_USED] = start + new_cap
    meta[SEGPOOL_WASTE] += cap
    seg_i32[seg, S_CAP] = new_cap


@_kernel
def _out_append(st, cell, syn, seg, perm, conn_f):
    _, _, _, _, _, _, _, cell_i32, cell_i64, out_syn, out_seg, out_perm, meta = st
    n = cell_i32[cell, C_OLEN]
    cap = cell_i32[cell, C_OCAP]
    if n == cap:
        new_cap = max(2 * cap, MIN_BLOCK)
        start = meta[OUTPOOL_USED]
        old = cell_i64[cell]
        for i in range(n):
            out_syn[start + i] = out_syn[old + i]
            out_seg[start + i] = out_seg[old + i]
            out_perm[start + i] = out_perm[old + i]
        cell_i64[cell] = start
        meta[OUTPOOL_USED] = start + new_cap
        meta[OUTPOOL_WASTE] += cap
        cell_i32[cell, C_OCAP] = new_cap
    at = cell_i64[cell] + n
    out_syn[at] = syn
    out_seg[at] = seg | CONN_FLAG if np.float32(perm) >= conn_f else seg
    out_perm[at] = perm
    cell_i32[cell, C_OLEN] = n + 1
    return n


@njit(cache=True)
def plan_compaction(starts, lens, caps, n_lists):
    """New starts and capacities that pack ``n_lists`` lists without holes.

    Capacities become the lengths rounded up to ``MIN_BLOCK``; lists with capacity 0
    (dead) stay empty. Returns ``(new_starts, new_caps, used)``.
    """
    new_starts = np.zeros(n_lists, np.int64)
    new_caps = np.zeros(n_lists, np.int32)
    pos = 0
    for i in range(n_lists):
        if caps[i] == 0:
            continue
        cap = max(MIN_BLOCK, ((lens[i] + MIN_BLOCK - 1) // MIN_BLOCK) * MIN_BLOCK)
        new_starts[i] = pos
        new_caps[i] = cap
        pos += cap
    return new_starts, new_caps, pos


@njit(cache=True)
def move_lists(data, starts, lens, new_starts, n_lists, new_size):
    """Copy each list of ``data`` to its planned place in a fresh array of ``new_size``."""
    out = np.zeros(new_size, data.dtype)
    for i in range(n_lists):
        s, d = starts[i], new_starts[i]
        for k in range(lens[i]):
            out[d + k] = data[s + k]
    return out


# ---------------------------------------------------------------- synapses / segments


@_kernel
def perm_slot(st, syn):
    """Index of ``syn``'s permanence in the out pool."""
    syn_i32, _, _, _, _, _, _, _, cell_i64, _, _, _, _ = st
    return cell_i64[syn_i32[syn, Y_PRE]] + syn_i32[syn, Y_POUT]


@_kernel
def _acquire(free, meta, n_free, high_water, n_live, n_created):
    """A synapse or segment id: the last freed one, else a new one at the high-water mark
    (the meta slots named by the arguments say which kind); counted live and created."""
    if meta[n_free] > 0:
        meta[n_free] -= 1
        i = free[meta[n_free]]
    else:
        i = meta[high_water]
        meta[high_water] += 1
    meta[n_live] += 1
    meta[n_created] += 1
    return i


@_kernel
def _release(free, meta, i, n_free, n_live, n_destroyed):
    """Give id ``i`` back to its free stack; counted destroyed."""
    free[meta[n_free]] = i
    meta[n_free] += 1
    meta[n_live] -= 1
    meta[n_destroyed] += 1


@_kernel
def _create_synapse(st, seg, presyn, perm, conn_f):
    syn_i32, syn_free, seg_i32, seg_i64, _, _, seg_data, _, _, _, _, _, meta = st
    syn = _acquire(syn_free, meta, SYN_NFREE, SYN_HW, N_SYN_LIVE, SYN_CREATED)
    n = seg_i32[seg, S_LEN]
    seg_data[seg_i64[seg, S_START] + n] = syn
    seg_i32[seg, S_LEN] = n + 1
    syn_i32[syn, Y_PRE] = presyn
    syn_i32[syn, Y_SEG] = seg
    syn_i32[syn, Y_PSEG] = n
    syn_i32[syn, Y_POUT] = _out_append(st, presyn, syn, seg, perm, conn_f)


@_kernel
def _destroy_synapse(st, syn):
    syn_i32, syn_free, seg_i32, seg_i64, _, _, seg_data = st[:7]
    cell_i32, cell_i64, out_syn, out_seg, out_perm, meta = st[7:]
    # swap-remove from the segment's list
    seg = syn_i32[syn, Y_SEG]
    start = seg_i64[seg, S_START]
    last = seg_i32[seg, S_LEN] - 1
    pos = syn_i32[syn, Y_PSEG]
    moved = seg_data[start + last]
    seg_data[start + pos] = moved
    syn_i32[moved, Y_PSEG] = pos
    seg_i32[seg, S_LEN] = last
    # swap-remove from the presynaptic cell's out-list
    pre = syn_i32[syn, Y_PRE]
    ostart = cell_i64[pre]
    olast = ostart + cell_i32[pre, C_OLEN] - 1
    at = ostart + syn_i32[syn, Y_POUT]
    omoved = out_syn[olast]
    out_syn[at] = omoved
    out_seg[at] = out_seg[olast]
    out_perm[at] = out_perm[olast]
    syn_i32[omoved, Y_POUT] = syn_i32[syn, Y_POUT]
    cell_i32[pre, C_OLEN] -= 1
    syn_i32[syn, Y_SEG] = -1
    _release(syn_free, meta, syn, SYN_NFREE, N_SYN_LIVE, SYN_DESTROYED)


@_kernel
def _destroy_segment(st, seg):
    _, _, seg_i32, seg_i64, _, seg_free, seg_data, cell_i32, _, _, _, _, meta = st
    while seg_i32[seg, S_LEN] > 0:
        _destroy_synapse(st, seg_data[seg_i64[seg, S_START] + seg_i32[seg, S_LEN] - 1])
    cell = seg_i32[seg, S_CELL]
    prv, nxt = seg_i32[seg, S_PREV], seg_i32[seg, S_NEXT]
    if prv >= 0:
        seg_i32[prv, S_NEXT] = nxt
    else:
        cell_i32[cell, C_HEAD] = nxt
    if nxt >= 0:
        seg_i32[nxt, S_PREV] = prv
    cell_i32[cell, C_NSEG] -= 1
    meta[SEGPOOL_WASTE] += seg_i32[seg, S_CAP]
    seg_i32[seg, S_CAP] = 0
    seg_i32[seg, S_CELL] = -1
    _release(seg_free, meta, seg, SEG_NFREE, N_SEG_LIVE, SEG_DESTROYED)


@_kernel
def _create_segment(st, cell, max_segments):
    _, _, seg_i32, seg_i64, seg_cnt, seg_free, _, cell_i32, _, _, _, _, meta = st
    if cell_i32[cell, C_NSEG] >= max_segments:
        # evict the least recently used segment (ties: lowest id)
        best = -1
        s = cell_i32[cell, C_HEAD]
        while s >= 0:
            if (
                best < 0
                or seg_i64[s, S_LAST] < seg_i64[best, S_LAST]
                or (seg_i64[s, S_LAST] == seg_i64[best, S_LAST] and s < best)
            ):
                best = s
            s = seg_i32[s, S_NEXT]
        _destroy_segment(st, best)
    seg = _acquire(seg_free, meta, SEG_NFREE, SEG_HW, N_SEG_LIVE, SEG_CREATED)
    head = cell_i32[cell, C_HEAD]
    seg_i32[seg, S_CELL] = cell
    seg_i32[seg, S_PREV] = -1
    seg_i32[seg, S_NEXT] = head
    if head >= 0:
        seg_i32[head, S_PREV] = seg
    cell_i32[cell, C_HEAD] = seg
    cell_i32[cell, C_NSEG] += 1
    seg_i32[seg, S_LEN] = 0
    seg_i32[seg, S_CAP] = 0
    seg_cnt[seg] = 0
    seg_i64[seg, S_START] = 0
    seg_i64[seg, S_LAST] = meta[ITER]
    return seg


@_kernel
def _adapt_segment(st, seg, prev_mark, inc, dec, conn_f):
    """Hebbian update: +inc to synapses from previously active cells, −dec to the rest.

    Synapses that reach 0 are destroyed, and so is a segment left without synapses.
    Returns True when the segment was destroyed.
    """
    syn_i32, _, seg_i32, seg_i64, _, _, seg_data = st[:7]
    out_seg, out_perm = st[10], st[11]
    i = 0
    while i < seg_i32[seg, S_LEN]:
        syn = seg_data[seg_i64[seg, S_START] + i]
        at = perm_slot(st, syn)
        p = np.float64(out_perm[at])
        if prev_mark[syn_i32[syn, Y_PRE]]:
            p += inc
        else:
            p -= dec
        p = min(max(p, 0.0), 1.0)
        if p < EPSILON:
            # the segment's last synapse moves into slot i: look at slot i again
            _destroy_synapse(st, syn)
        else:
            out_perm[at] = p
            if np.float32(p) >= conn_f:
                out_seg[at] = seg | CONN_FLAG
            else:
                out_seg[at] = seg
            i += 1
    if seg_i32[seg, S_LEN] == 0:
        _destroy_segment(st, seg)
        return True
    return False


@_kernel
def _grow_synapses(st, rng, seg, n_desired, prev_winners, n_prev_winners, winner_mark,
                   stamp, cand, initial_perm, max_synapses, conn_f):  # fmt: skip
    """Connect ``seg`` to up to ``n_desired`` random previous winner cells it lacks."""
    syn_i32, _, seg_i32, seg_i64, _, _, seg_data = st[:7]
    out_perm = st[11]
    start = seg_i64[seg, S_START]
    n = seg_i32[seg, S_LEN]
    # un-mark winners already connected to this segment, collect the rest, restore
    for i in range(n):
        pre = syn_i32[seg_data[start + i], Y_PRE]
        if winner_mark[pre] == stamp:
            winner_mark[pre] = -stamp
    n_cand = 0
    for i in range(n_prev_winners):
        c = prev_winners[i]
        if winner_mark[c] == stamp:
            cand[n_cand] = c
            n_cand += 1
    for i in range(n):
        pre = syn_i32[seg_data[start + i], Y_PRE]
        if winner_mark[pre] == -stamp:
            winner_mark[pre] = stamp
    n_actual = min(n_desired, n_cand)
    overrun = n + n_actual - max_synapses
    if overrun > 0:
        # make room: destroy the weakest synapses not onto a winner (ties: lowest cell)
        for _ in range(overrun):
            best = -1
            best_p = np.float32(2.0)
            s0 = seg_i64[seg, S_START]
            for i in range(seg_i32[seg, S_LEN]):
                syn = seg_data[s0 + i]
                pre = syn_i32[syn, Y_PRE]
                if winner_mark[pre] == stamp:
                    continue
                p = out_perm[perm_slot(st, syn)]
                if best < 0 or p < best_p or (p == best_p and pre < syn_i32[best, Y_PRE]):
                    best = syn
                    best_p = p
            if best < 0:
                break
            _destroy_synapse(st, best)
        n_actual = min(n_actual, max_synapses - seg_i32[seg, S_LEN])
    if n_actual <= 0:
        return
    _seg_reserve(st, seg, n_actual, max_synapses)
    for i in range(n_actual):  # partial Fisher–Yates over the sorted candidates
        j = i + rng_below(rng, n_cand - i)
        c = cand[j]
        cand[j] = cand[i]
        cand[i] = c
        _create_synapse(st, seg, c, initial_perm, conn_f)


@_kernel
def _least_used_cell(cell_i32, rng, col, k):
    fewest = 1 << 30
    ties = 0
    for i in range(k):
        n = cell_i32[col * k + i, C_NSEG]
        if n < fewest:
            fewest = n
            ties = 1
        elif n == fewest:
            ties += 1
    r = rng_below(rng, ties)
    for i in range(k):
        if cell_i32[col * k + i, C_NSEG] == fewest:
            if r == 0:
                return col * k + i
            r -= 1
    return col * k


@_kernel
def _learn_on(st, rng, seg, prev_mark, p_inc, p_dec, max_new, prev_winners, n_prev_win,
              winner_mark, stamp, cand, p_init, max_syns, conn_f):  # fmt: skip
    # reinforce a correct (or best-matching) segment, then top it up with new synapses
    n_pot = st[4][seg] & POT_MASK
    if not _adapt_segment(st, seg, prev_mark, p_inc, p_dec, conn_f) and max_new - n_pot > 0:
        _grow_synapses(st, rng, seg, max_new - n_pot, prev_winners, n_prev_win,
                       winner_mark, stamp, cand, p_init, max_syns, conn_f)  # fmt: skip


# ---------------------------------------------------------------- the step


@_kernel
def tm_step(active_cols, learn, params_i, params_f, st,
            active_cells, winner_cells, prev_active, prev_winners,
            active_segs, matching_segs, predictive,
            prev_mark, winner_mark, cand, sort_keys, rng, need, anomaly):  # fmt: skip
    """One temporal-memory step: activate cells, learn, then predict the next input.

    Parameters
    ----------
    active_cols : int32 sorted unique column indices
    learn : bool
    params_i : int64[8] = (cells_per_column, activation_threshold, min_threshold,
        max_new_synapses, max_segments_per_cell, max_synapses_per_segment, -, -)
    params_f : float64[5] = (initial, connected, increment, decrement,
        predicted_segment_decrement) permanences
    st : tuple of the state arrays named in ``STATE_FIELDS``
    active_cells … sort_keys : per-step work arrays (see ``SequenceMemory``)
    rng : uint64[1] splitmix64 state
    need : int64[4] out; on NEED_MORE: (synapse ids, segment ids, seg_data length,
        out pool length) required before this step can run
    anomaly : float64[1] out; fraction of active columns that were not predicted

    Returns
    -------
    ``OK`` or ``NEED_MORE`` (then nothing has been modified).
    """
    syn_i32, _, seg_i32, _, seg_cnt, _, seg_data = st[:7]
    cell_i32, cell_i64, out_syn, out_seg, out_perm, meta = st[7:]
    K = params_i[0]
    n_prev_active = meta[N_ACTIVE]
    n_prev_win = meta[N_WINNER]
    n_act_seg = meta[N_ACTSEG]
    if learn and _room_short(st, active_cols.shape[0], params_i, prev_winners, need):
        return NEED_MORE  # nothing has been modified
    anomaly[0] = _anomaly(active_cols, active_segs, n_act_seg, seg_i32, K)

    # ---- mark previous activity
    meta[STEP] += 1
    stamp = meta[STEP]  # positive and new every step: no need to clear winner_mark
    for i in range(n_prev_active):
        prev_mark[prev_active[i]] = True
    for i in range(n_prev_win):
        winner_mark[prev_winners[i]] = stamp
    n_active, n_win = _activate_cells(
        st, active_cols, learn, params_i, params_f, active_cells, winner_cells, prev_winners,
        active_segs, matching_segs, prev_mark, winner_mark, stamp, cand, rng,
    )  # fmt: skip
    for i in range(n_prev_active):
        prev_mark[prev_active[i]] = False
    n_touch, n_as, n_ms, n_pred = _activate_dendrites(
        st, learn, params_i, active_cells, n_active, active_segs, matching_segs, predictive,
        sort_keys,
    )  # fmt: skip

    # ---- this step's activity becomes the previous activity
    for i in range(n_active):
        prev_active[i] = active_cells[i]
    for i in range(n_win):
        prev_winners[i] = winner_cells[i]
    meta[N_ACTIVE], meta[N_WINNER] = n_active, n_win
    meta[N_ACTSEG], meta[N_MATCHSEG], meta[N_PREDICTIVE] = n_as, n_ms, n_pred
    meta[N_TOUCHED] = n_touch
    if learn:
        meta[ITER] += 1
    return OK


# ---------------------------------------------------------------- phases of the step


@_kernel
def _room_short(st, n_cols_active, params_i, prev_winners, need):
    """Whether this learning step may need more room than the arrays have (worst case);
    if so ``need`` gets the sizes to grow to."""
    syn_i32, _, seg_i32, _, _, _, seg_data = st[:7]
    cell_i32, _, out_syn, _, _, meta = st[7:]
    max_new, max_syns = params_i[3], params_i[5]
    n_prev_win = meta[N_WINNER]
    learners = meta[N_ACTSEG] + n_cols_active
    new_syn = learners * min(max_new, n_prev_win)
    room_syn = meta[SYN_NFREE] + (syn_i32.shape[0] - meta[SYN_HW])
    room_seg = meta[SEG_NFREE] + (seg_i32.shape[0] - meta[SEG_HW])
    seg_pool = learners * max(max_syns, MIN_BLOCK)
    out_pool = 0
    for i in range(n_prev_win):
        out_pool += 4 * (cell_i32[prev_winners[i], C_OLEN] + learners) + MIN_BLOCK
    if (
        room_syn < new_syn
        or room_seg < n_cols_active
        or seg_data.shape[0] - meta[SEGPOOL_USED] < seg_pool
        or out_syn.shape[0] - meta[OUTPOOL_USED] < out_pool
    ):
        need[0] = meta[SYN_HW] + new_syn
        need[1] = meta[SEG_HW] + n_cols_active
        need[2] = meta[SEGPOOL_USED] + seg_pool
        need[3] = meta[OUTPOOL_USED] + out_pool
        return True
    return False


@_kernel
def _anomaly(active_cols, active_segs, n_act_seg, seg_i32, K):
    """Fraction of the active columns that no predictive cell foretold."""
    n_cols_active = active_cols.shape[0]
    hit = 0
    j = 0
    for i in range(n_cols_active):
        c = active_cols[i]
        while j < n_act_seg and seg_i32[active_segs[j], S_CELL] // K < c:
            j += 1
        if j < n_act_seg and seg_i32[active_segs[j], S_CELL] // K == c:
            hit += 1
    return (n_cols_active - hit) / n_cols_active if n_cols_active > 0 else 0.0


@_kernel
def _activate_cells(st, active_cols, learn, params_i, params_f, active_cells, winner_cells,
                    prev_winners, active_segs, matching_segs, prev_mark, winner_mark, stamp,
                    cand, rng):  # fmt: skip
    """Activate cells column by column (ascending), learning as they fire.

    Predicted columns fire their cells with active segments; unpredicted ones burst and
    one winner learns; matching segments of inactive columns are punished. Returns
    ``(n_active, n_win)``.
    """
    seg_i32, seg_cnt = st[2], st[4]
    cell_i32, meta = st[7], st[12]
    K = params_i[0]
    max_new, max_segs, max_syns = params_i[3], params_i[4], params_i[5]
    p_init, p_inc, p_dec, p_pun = params_f[0], params_f[2], params_f[3], params_f[4]
    conn_f = np.float32(params_f[1] - EPSILON)
    n_cols_active = active_cols.shape[0]
    n_prev_win = meta[N_WINNER]
    n_act_seg = meta[N_ACTSEG]
    n_match_seg = meta[N_MATCHSEG]
    n_active = 0
    n_win = 0
    ia = 0  # cursor in active_cols
    js = 0  # cursor in active_segs
    jm = 0  # cursor in matching_segs
    while ia < n_cols_active or js < n_act_seg or jm < n_match_seg:
        col = np.int64(1) << 62
        if ia < n_cols_active:
            col = min(col, np.int64(active_cols[ia]))
        if js < n_act_seg:
            col = min(col, np.int64(seg_i32[active_segs[js], S_CELL] // K))
        if jm < n_match_seg:
            col = min(col, np.int64(seg_i32[matching_segs[jm], S_CELL] // K))
        s0 = js
        while js < n_act_seg and seg_i32[active_segs[js], S_CELL] // K == col:
            js += 1
        m0 = jm
        while jm < n_match_seg and seg_i32[matching_segs[jm], S_CELL] // K == col:
            jm += 1
        if ia < n_cols_active and active_cols[ia] == col:
            ia += 1
            if js > s0:
                # predicted column: the cells with active segments fire and win
                for q in range(s0, js):
                    seg = active_segs[q]
                    cell = seg_i32[seg, S_CELL]
                    if n_active == 0 or active_cells[n_active - 1] != cell:
                        active_cells[n_active] = cell
                        winner_cells[n_win] = cell
                        n_active += 1
                        n_win += 1
                    if learn:
                        _learn_on(st, rng, seg, prev_mark, p_inc, p_dec, max_new,
                                  prev_winners, n_prev_win, winner_mark, stamp, cand,
                                  p_init, max_syns, conn_f)  # fmt: skip
            else:
                # burst: every cell fires; one winner learns
                for q in range(K):
                    active_cells[n_active] = col * K + q
                    n_active += 1
                if jm > m0:
                    best = matching_segs[m0]
                    for q in range(m0 + 1, jm):
                        if seg_cnt[matching_segs[q]] & POT_MASK > seg_cnt[best] & POT_MASK:
                            best = matching_segs[q]
                    winner = seg_i32[best, S_CELL]
                    if learn:
                        _learn_on(st, rng, best, prev_mark, p_inc, p_dec, max_new,
                                  prev_winners, n_prev_win, winner_mark, stamp, cand,
                                  p_init, max_syns, conn_f)  # fmt: skip
                else:
                    winner = _least_used_cell(cell_i32, rng, col, K)
                    n_grow = min(max_new, n_prev_win)
                    if learn and n_grow > 0:
                        seg = _create_segment(st, winner, max_segs)
                        _grow_synapses(st, rng, seg, n_grow, prev_winners, n_prev_win,
                                       winner_mark, stamp, cand, p_init, max_syns,
                                       conn_f)  # fmt: skip
                winner_cells[n_win] = winner
                n_win += 1
        elif learn and p_pun > 0.0:
            # wrong prediction: weaken the matching segments of an inactive column
            for q in range(m0, jm):
                _adapt_segment(st, matching_segs[q], prev_mark, -p_pun, 0.0, conn_f)
    return n_active, n_win


@_kernel
def _activate_dendrites(st, learn, params_i, active_cells, n_active, active_segs,
                        matching_segs, predictive, sort_keys):  # fmt: skip
    """Count active synapses per segment through the active cells' out-lists; the new
    active / matching segments (sorted by cell) and predictive cells.

    A segment joins the active (matching) list the moment its connected (potential)
    count reaches the threshold, so the count pass is the only pass over the visited
    segments, and a counter is reset by the step stamp it carries, not by a clearing
    pass (see ``STAMP_SHIFT``).

    Returns ``(n_touched, n_active_segments, n_matching_segments, n_predictive)``.
    """
    seg_i32, seg_i64, seg_cnt = st[2], st[3], st[4]
    cell_i32, cell_i64, out_seg, meta = st[7], st[8], st[10], st[12]
    theta, min_th = params_i[1], params_i[2]
    stamp = (meta[STEP] - 1) % STAMP_PERIOD + 1
    if stamp == 1:
        # the stamps wrap: counts written STAMP_PERIOD steps ago must not look current
        for s in range(meta[SEG_HW]):
            seg_cnt[s] = 0
    fresh = np.int32(stamp << STAMP_SHIFT)
    n_touch = 0
    n_as = 0
    n_ms = 0
    visited = 0
    for i in range(min(PREFETCH_CELLS, n_active)):
        _prefetch_out_list(cell_i32, cell_i64, out_seg, active_cells[i])
    for i in range(n_active):
        if i + PREFETCH_CELLS < n_active:
            _prefetch_out_list(cell_i32, cell_i64, out_seg, active_cells[i + PREFETCH_CELLS])
        c = active_cells[i]
        o0 = cell_i64[c]
        no = cell_i32[c, C_OLEN]
        visited += no
        for q in range(o0, o0 + no):
            v = out_seg[q]
            seg = v & SEG_MASK
            w = seg_cnt[seg]
            if w >> STAMP_SHIFT != stamp:  # first active synapse of seg this step
                w = fresh
                n_touch += 1
            if v >= CONN_FLAG:
                w += CONN_ONE + 1
                if (w >> CNT_BITS) & POT_MASK == theta:
                    active_segs[n_as] = seg
                    n_as += 1
            else:
                w += 1
            seg_cnt[seg] = w
            if w & POT_MASK == min_th:
                matching_segs[n_ms] = seg
                n_ms += 1
    meta[SYN_VISITED] += visited
    _sort_by_cell(active_segs, n_as, seg_i32, sort_keys)
    _sort_by_cell(matching_segs, n_ms, seg_i32, sort_keys)
    n_pred = 0
    for i in range(n_as):
        cell = seg_i32[active_segs[i], S_CELL]
        if n_pred == 0 or predictive[n_pred - 1] != cell:
            predictive[n_pred] = cell
            n_pred += 1
        if learn:
            seg_i64[active_segs[i], S_LAST] = meta[ITER]
    return n_touch, n_as, n_ms, n_pred


@_kernel
def _prefetch_out_list(cell_i32, cell_i64, out_seg, cell):
    o0 = cell_i64[cell]
    for q in range(0, cell_i32[cell, C_OLEN], CACHE_LINE_I32):
        prefetch(out_seg, o0 + q)


@_kernel
def _sort_by_cell(segs, n, seg_i32, keys):
    # heapsort of (cell << 32 | segment) keys in the caller's buffer: no allocation
    if n < 2:
        return
    for i in range(n):
        keys[i] = (np.int64(seg_i32[segs[i], S_CELL]) << 32) | np.int64(segs[i])
    for start in range(n // 2 - 1, -1, -1):
        _sift_down(keys, start, n)
    for end in range(n - 1, 0, -1):
        t = keys[0]
        keys[0] = keys[end]
        keys[end] = t
        _sift_down(keys, 0, end)
    for i in range(n):
        segs[i] = np.int32(keys[i] & 0xFFFFFFFF)


@_kernel
def _sift_down(keys, root, end):
    while True:
        child = 2 * root + 1
        if child >= end:
            return
        if child + 1 < end and keys[child + 1] > keys[child]:
            child += 1
        if keys[root] >= keys[child]:
            return
        t = keys[root]
        keys[root] = keys[child]
        keys[child] = t
        root = child
