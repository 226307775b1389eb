"""Event index lists (CSR) built from dense spike tensors, on the CPU (torch-free).

An event op sees a dense input and turns its non-zero elements into compressed row
lists once per call. The builder reads a C-contiguous 4-D array ``x[P, A, Q, B]``: row
``r = p * Q + q`` lists the column ids ``a * B + b`` of its non-zero elements, in
increasing order, with their values (the innermost loop walks memory in order, so it
vectorises). The same builder serves

- the event Linear: ``x[M, K]`` as ``[M, 1, 1, K]`` (one row per sample), and
- the event Conv2d: ``x[N, C, H, W]`` as is (one row per input image row ``(n, y)``,
  column id ``c * W + x``), so the events that reach one output row are the few input
  rows above it.

A count pass (:func:`scan_rows`: counts, ±1 events, NaN/inf) comes first, so a caller can
pick the dense path from the measured activity before paying for the fill pass. Where
``A = 1`` (the Linear) the count pass runs over ``[P*Q, B]`` rows as 1-D views
(:func:`flat_counts`: 2x faster than the 4-D loop at 3200 x 4096, loaded 2-core VM).

:func:`csr_transpose` turns rows into columns (CSC) for the weight gradient, where the
accumulation is parallel over input features and must not race.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

from ._serial import SERIAL_BELOW, serial_twin


@numba.njit(parallel=True, cache=True)
def row_counts(x, colw, counts, wunit, wgraded, bad):
    """Per row ``(p, q)`` of ``x[P, A, Q, B]``: non-zero elements; ``Σ colw[b]`` over the events of
    magnitude 1 and over the others (graded); whether any element is NaN or inf.

    ``colw`` weighs an event by its innermost coordinate ``b`` (a convolution's border
    pixels reach fewer outputs); pass ones for plain counts. Every test is a compare
    turned into an int32 and summed, so the loop stays one vector wide.
    ``colw`` is int32.
    """
    n_p, n_a, n_q, n_b = x.shape
    for r in prange(n_p * n_q):
        p = r // n_q
        q = r - p * n_q
        n = np.int32(0)
        u = np.int32(0)  # int32 throughout: per-row sums fit, and vectors stay wide
        g = np.int32(0)
        nf = np.int32(0)
        for a in range(n_a):
            for b in range(n_b):
                v = abs(x[p, a, q, b])
                one = np.int32(v == 1)
                nz = np.int32(v != 0)
                n += nz
                u += colw[b] * one
                g += colw[b] * (nz - one)
                nf += np.int32(not v < np.inf)  # NaN and inf both fail "< inf"
        counts[r] = n
        wunit[r] = u
        wgraded[r] = g
        bad[r] = nf != 0


@numba.njit(parallel=True, cache=True)
def row_fill(x, rowptr, idx, val):
    """Write the non-zero elements of each row at ``rowptr[r]:`` (see :func:`row_counts`)."""
    n_p, n_a, n_q, n_b = x.shape
    for r in prange(n_p * n_q):
        p = r // n_q
        q = r - p * n_q
        pos = rowptr[r]
        # A plain branch: at low activity it is almost always predicted "zero"; measured
        # faster than blocked skip tests and than branch-free compaction.
        for a in range(n_a):
            for b in range(n_b):
                v = x[p, a, q, b]
                if v != 0:
                    idx[pos] = a * n_b + b
                    val[pos] = v
                    pos += 1


@numba.njit(parallel=True, cache=True)
def flat_counts(x, counts, wunit, bad):
    """:func:`row_counts` for the common case ``A = 1`` without column weights, over
    ``x[R, B]`` (the event Linear's ``[M, K]``): each row is one contiguous 1-D view
    indexed from 0, so the loop has no 4-D index arithmetic and vectorises fully.
    ``wunit`` receives the ±1 events; graded = counts - wunit."""
    for r in prange(x.shape[0]):
        xr = x[r]
        n = np.int32(0)
        u = np.int32(0)
        nf = np.int32(0)
        for b in range(xr.shape[0]):
            v = abs(xr[b])
            n += np.int32(v != 0)
            u += np.int32(v == 1)
            nf += np.int32(not v < np.inf)
        counts[r] = n
        wunit[r] = u
        bad[r] = nf != 0


@numba.njit(cache=True)
def exclusive_scan(counts, rowptr):
    total = 0
    for r in range(counts.shape[0]):
        rowptr[r] = total
        total += counts[r]
    rowptr[counts.shape[0]] = total
    return total


# The same loop without threads: starting the parallel region costs ~0.2 ms on the 2-core
# VM (measured: an 8-element scan took 200 µs), more than a serial pass over this many
# elements.
row_counts_serial = serial_twin(row_counts)
flat_counts_serial = serial_twin(flat_counts)
row_fill_serial = serial_twin(row_fill)


def scan_rows(x: np.ndarray, colw: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Count pass over ``x[P, A, Q, B]`` (float32, C-contiguous; rows ``(p, q)``).

    Returns
    -------
    counts : np.ndarray
        int32 ``[P*Q]`` non-zero elements per row.
    wunit, wgraded : np.ndarray
        int64 ``[P*Q]``: ``Σ colw[b]`` over each row's ±1 events and other events
        (with ``colw=None``: the counts themselves).
    first_bad_row : int
        First row holding a NaN or inf, -1 if none (the caller raises).
    """
    n_rows = x.shape[0] * x.shape[2]
    counts = np.empty(n_rows, np.int32)
    wunit = np.empty(n_rows, np.int64)
    bad = np.empty(n_rows, np.bool_)
    serial = x.size < SERIAL_BELOW
    if colw is None and x.shape[1] == 1:  # rows are contiguous: [P*Q, B]
        kernel = flat_counts_serial if serial else flat_counts
        kernel(x.reshape(n_rows, x.shape[3]), counts, wunit, bad)
        wgraded = counts - wunit
    else:
        if colw is None:
            colw = np.ones(x.shape[3], np.int32)
        wgraded = np.empty(n_rows, np.int64)
        kernel = row_counts_serial if serial else row_counts
        kernel(x, colw.astype(np.int32), counts, wunit, wgraded, bad)
    hits = np.flatnonzero(bad)
    return counts, wunit, wgraded, int(hits[0]) if hits.size else -1


def csr_from_counts(
    x: np.ndarray, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fill pass: CSR ``(rowptr int64, idx int32, val)`` of ``x`` given its row counts.

    Row ``r = p * Q + q`` of ``x[P, A, Q, B]`` lists column ids ``a * B + b`` in
    increasing order.
    """
    rowptr = np.empty(counts.shape[0] + 1, np.int64)
    nnz = exclusive_scan(counts, rowptr)
    idx = np.empty(nnz, np.int32)
    val = np.empty(nnz, x.dtype)
    # (a 1-D-view twin of the fill measured no faster: it is bound by the branch)
    (row_fill_serial if x.size < SERIAL_BELOW else row_fill)(x, rowptr, idx, val)
    return rowptr, idx, val


@numba.njit(parallel=True, cache=True)
def _csr_transpose(rowptr, idx, val, n_cols, n_chunks, colptr, rows_out, val_out):
    n_rows = rowptr.shape[0] - 1
    step = (n_rows + n_chunks - 1) // n_chunks
    # Counting sort, parallel over row chunks: each chunk counts its own columns, the
    # offsets are laid out column-major over (column, chunk), so each chunk then writes
    # its own slots and every column's rows stay in increasing order.
    hist = np.zeros((n_chunks, n_cols), np.int64)
    for ch in prange(n_chunks):
        for j in range(rowptr[min(ch * step, n_rows)], rowptr[min((ch + 1) * step, n_rows)]):
            hist[ch, idx[j]] += 1
    total = 0
    for c in range(n_cols):
        colptr[c] = total
        for ch in range(n_chunks):
            h = hist[ch, c]
            hist[ch, c] = total
            total += h
    colptr[n_cols] = total
    for ch in prange(n_chunks):
        cursor = hist[ch]
        for r in range(min(ch * step, n_rows), min((ch + 1) * step, n_rows)):
            for j in range(rowptr[r], rowptr[r + 1]):
                c = idx[j]
                pos = cursor[c]
                rows_out[pos] = r
                val_out[pos] = val[j]
                cursor[c] = pos + 1


def csr_transpose(
    rowptr: np.ndarray, idx: np.ndarray, val: np.ndarray, n_cols: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of ``X[R, n_cols]`` -> CSR of ``Xᵀ`` (column lists of increasing row ids)."""
    colptr = np.empty(n_cols + 1, np.int64)
    rows_out = np.empty(idx.shape[0], np.int32)
    val_out = np.empty(idx.shape[0], val.dtype)
    n_chunks = max(1, min(numba.get_num_threads(), rowptr.shape[0] - 1))
    _csr_transpose(rowptr, idx, val, n_cols, n_chunks, colptr, rows_out, val_out)
    return colptr, rows_out, val_out
