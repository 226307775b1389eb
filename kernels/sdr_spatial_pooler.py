"""Spatial-pooler kernels (``numba.njit``), torch-free.

Potential synapses are fixed at construction. Permanences live in **column-major**
order (``col_ptr[C + 1]``, ``col_inp[nnz]``, ``perm[nnz]`` float32), so Hebbian
learning walks each winning column's pool contiguously. Overlaps are computed from an
**input-major** mirror that holds only what counting needs: ``in_ptr[N + 1]``,
``in_col[nnz]`` and ``in_conn[nnz]`` (1 when the synapse is connected), so the cost is
``active inputs × fan-out`` of sequential reads and the permanences are never touched.
``col_pos[nnz]`` maps a column-major synapse to its input-major slot; learning writes
there only when a synapse crosses the connection threshold.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def sp_overlap(active_inputs, in_ptr, in_col, in_conn, overlaps):
    """``overlaps[c]`` = connected synapses of column ``c`` onto active inputs."""
    overlaps[:] = 0
    for i in active_inputs:
        for p in range(in_ptr[i], in_ptr[i + 1]):
            overlaps[in_col[p]] += in_conn[p]


@njit(cache=True)
def sp_learn(winners, input_dense, col_ptr, col_inp, col_pos, perm, in_conn, connected,
             inc, dec, trim):  # fmt: skip
    """Hebbian rule on the winners' pools: +inc on active inputs, −dec on the others.

    Permanences are clipped to [0, 1]; values below ``trim`` become 0 (htm.core trims
    dust so that it never counts as a near-connection). ``in_conn`` follows.
    """
    for c in winners:
        for q in range(col_ptr[c], col_ptr[c + 1]):
            was = perm[q] >= connected
            v = np.float64(perm[q])
            if input_dense[col_inp[q]]:
                v += inc
            else:
                v -= dec
            v = min(max(v, 0.0), 1.0)
            if v < trim:
                v = 0.0
            perm[q] = v
            now = perm[q] >= connected
            if now != was:  # touch the input-major mirror only on a crossing
                in_conn[col_pos[q]] = now


@njit(cache=True)
def sp_bump(columns, col_ptr, col_pos, perm, in_conn, connected, amount):
    """Raise every potential permanence of ``columns`` by ``amount`` (weak columns)."""
    for c in columns:
        for q in range(col_ptr[c], col_ptr[c + 1]):
            was = perm[q] >= connected
            perm[q] = min(np.float64(perm[q]) + amount, 1.0)
            if perm[q] >= connected and not was:
                in_conn[col_pos[q]] = 1
