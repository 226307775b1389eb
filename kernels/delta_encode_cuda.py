"""Delta encoding of a sequence on the GPU (numba.cuda; torch-free).

CUDA twin of ``kernels/delta_encode.py``: one thread per unit ``(b, u)`` walks the ``T``
steps with its reference in a register; neighbouring threads hold neighbouring units,
so every step's loads and stores are coalesced. Counting the transmitted deltas is left
to the caller (one ``count_nonzero`` on the device), which keeps this kernel free of
atomics.
"""

from __future__ import annotations

import math

from numba import cuda, float32, int32

from . import _launch

THREADS = 256


@cuda.jit
def delta_encode(x, ref0, thr, delta, ref_out, bad):
    """``x[T, B, U]``, ``ref0[B, U]``, ``thr[U]`` -> ``delta[T, B, U]``, ``ref_out[B, U]``.

    ``bad[0]`` is set to 1 when a NaN/inf input is seen.
    """
    n_t, n_b, n_u = x.shape
    g = cuda.grid(1)
    if g >= n_b * n_u:
        return
    b = g // n_u
    u = g - b * n_u
    ref = ref0[b, u]
    th = thr[u]
    nonfinite = int32(0)
    for t in range(n_t):
        v = x[t, b, u]
        d = v - ref
        if abs(d) > th:
            delta[t, b, u] = d
            ref = v
        else:
            delta[t, b, u] = float32(0)
        if not abs(v) < math.inf:  # NaN and inf both fail "< inf"
            nonfinite = int32(1)
    ref_out[b, u] = ref
    if nonfinite:
        bad[0] = int32(1)


def launch_encode(x, ref0, thr, delta, ref_out, bad, stream) -> None:
    """Launch :func:`delta_encode` over every unit (device arrays, any stream)."""
    n = x.shape[1] * x.shape[2]
    if n == 0:
        return
    _launch.launch(delta_encode, (n + THREADS - 1) // THREADS, THREADS, stream, x, ref0, thr,
                   delta, ref_out, bad)  # fmt: skip
