"""Running sums over time on the GPU (numba.cuda; torch-free).

CUDA twin of ``kernels/delta_accumulate.py``: one thread per unit keeps its float64
running sum in a register and walks the steps; neighbouring threads hold neighbouring
units, so every step is one coalesced load and store.
"""

from __future__ import annotations

from numba import cuda, float64

from . import _launch

THREADS = 256


@cuda.jit
def running_sum(inc, z0, out, reverse):
    """``out[t] = z0 + Σ_{s≤t} inc[s]`` (``reverse``: from the end); ``[T, R]``, ``z0[R]``."""
    n_t, n_r = inc.shape
    r = cuda.grid(1)
    if r >= n_r:
        return
    acc = float64(z0[r])
    for s in range(n_t):
        t = n_t - 1 - s if reverse else s
        acc += inc[t, r]
        out[t, r] = acc


def launch_running_sum(inc, z0, out, reverse, stream) -> None:
    """Launch :func:`running_sum` (device arrays)."""
    n_r = inc.shape[1]
    if n_r == 0 or inc.shape[0] == 0:
        return
    blocks = (n_r + THREADS - 1) // THREADS
    _launch.launch(running_sum, blocks, THREADS, stream, inc, z0, out, reverse)
