"""Non-zero weights per input column in one row-major pass (the energy meter's fan-out).

``torch.count_nonzero(w, dim=0)`` reduces across rows with a stride of a whole row and
slows down sharply once the weight leaves the cache: on the 2-core development VM
(1 thread) it took 3.0 / 14.3 / 158 ms for 1024² / 2048² / 4096² fp32 weights, against
0.24 / 1.7 / 7.5 ms for this loop, which reads each row once, in order. Every ``Meter``
rebuilds the map (weights written through ``.data`` keep their version), so its cost is
paid per meter and layer.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def column_nonzeros(w: np.ndarray, out: np.ndarray) -> None:
    """Add to ``out[j]`` (int64, zeroed by the caller) the non-zeros of column ``j`` of
    ``w`` [rows, cols]. NaN counts as non-zero, as in ``torch.count_nonzero``."""
    rows, cols = w.shape
    for i in range(rows):
        for j in range(cols):
            if w[i, j] != 0:
                out[j] += 1
