"""Spatial-pooler ops: the Numba kernels of ``kernels/sdr_spatial_pooler.py`` or their
NumPy references, as the registry decides (``NEUROSPARSE_KERNELS``, ``neurosparse info``).

The arrays are those of :class:`~neurosparse.sdr.SpatialPooler` (column-major pools,
an input-major mirror of connection flags). The references evaluate the same float64
arithmetic rounded to float32 per synapse, so both give identical permanences.
"""

from __future__ import annotations

import numpy as np

from . import registry

OP = "sdr_spatial_pooler"
registry.register(OP, "cpu")


def _kernels():
    from ..kernels import sdr_spatial_pooler as k

    return k


def _slots(ptr: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The positions ``ptr[r] .. ptr[r + 1] - 1`` of every row ``r`` in ``rows``, concatenated."""
    rows = np.asarray(rows, np.int64)
    lo, hi = ptr[rows], ptr[rows + 1]
    n = hi - lo
    if not n.sum():
        return np.zeros(0, np.int64)
    starts = np.repeat(lo - np.concatenate(([0], np.cumsum(n)[:-1])), n)
    return starts + np.arange(int(n.sum()))


def overlap_reference(active_inputs, in_ptr, in_col, in_conn, overlaps) -> None:
    overlaps[:] = 0
    q = _slots(in_ptr, active_inputs)
    np.add.at(overlaps, in_col[q], in_conn[q].astype(overlaps.dtype))


def learn_reference(winners, input_dense, col_ptr, col_inp, col_pos, perm, in_conn, connected,
                    inc, dec, trim) -> None:  # fmt: skip
    q = _slots(col_ptr, winners)
    was = perm[q] >= connected
    v = perm[q].astype(np.float64) + np.where(input_dense[col_inp[q]] != 0, inc, -dec)
    v = np.clip(v, 0.0, 1.0)
    v[v < trim] = 0.0
    perm[q] = v
    now = perm[q] >= connected
    flip = now != was
    in_conn[col_pos[q][flip]] = now[flip]


def bump_reference(columns, col_ptr, col_pos, perm, in_conn, connected, amount) -> None:
    q = _slots(col_ptr, columns)
    was = perm[q] >= connected
    perm[q] = np.minimum(perm[q].astype(np.float64) + amount, 1.0)
    up = (perm[q] >= connected) & ~was
    in_conn[col_pos[q][up]] = 1


def overlap(*args) -> None:
    """``overlaps[c]`` = connected synapses of column ``c`` onto active inputs (in place)."""
    (_kernels().sp_overlap if registry.use_kernel(OP, "cpu") else overlap_reference)(*args)


def learn(*args) -> None:
    """Hebbian update of the winners' pools (in place); see ``kernels.sp_learn``."""
    (_kernels().sp_learn if registry.use_kernel(OP, "cpu") else learn_reference)(*args)


def bump(*args) -> None:
    """Raise every permanence of weak columns (in place); see ``kernels.sp_bump``."""
    (_kernels().sp_bump if registry.use_kernel(OP, "cpu") else bump_reference)(*args)
