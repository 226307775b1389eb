"""Fast paths of the sparse-sparse event Linear (``layers/sparse_event_linear.py``).

CPU: cached derived copies of the ELL storage that cut the bytes a call reads
(batch-1 inference is bound by them):

- :func:`compact` -- ``indices`` (and the transpose's ``t_out``) as uint16 when the
  feature counts allow (≤ 65536): 2 bytes per synapse instead of 4;
- :func:`csc_values` -- the weights in per-input order, so the event walk reads each
  active input's fan-out sequentially. Built on the *second* event-path call that sees
  the same weights, and only while the layer says its weights are frozen (the cache's
  ``values_frozen``: ``SparseEventLinear`` in eval mode); one more copy of the weights
  in memory.

Both live in the layer's index ``cache`` dict beside the transpose and are rebuilt
when ``indices`` (resp. ``values``) changes storage or version counter. The version
counter does not see every write: an edit through ``values.data`` and a fused
optimizer step (``torch.optim.Adam(fused=True)`` on the CPU) leave it alone, and a
copy kept across them gave stale outputs silently. Hence the weight copy only in eval
mode, where weights are not trained, and ``SparseEventLinear.train()`` / ``.eval()``
drop it.

CUDA: :data:`ELL_LINEAR_CUDA`, the event op (``ops/event_autograd.py``) over the kernels of
``kernels/sparse_event_linear_cuda.py`` (gather forward, dense input gradient over the
transpose, value gradient of the existing synapses only), launched on torch's current
stream through :meth:`CudaEnv.launch`. The per-input transpose is built on the host
from ``indices`` (once per indices version, then kept on the device).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import torch

from .cuda_env import CudaEnv
from .event_autograd import EventOp, apply_event_op

_U16 = 1 << 16


def _key(t: torch.Tensor) -> tuple:
    return (t.data_ptr(), t._version, tuple(t.shape), t.device.type)


def compact(indices: torch.Tensor, index: tuple, n_in: int, cache: dict | None) -> tuple:
    """``(indices, t_out)`` as NumPy arrays, uint16 where the counts allow, cached.

    Without a cache the int32 originals come back (a copy per call would cost more
    than it saves).
    """
    idx = indices.numpy()
    t_out = index[1]
    if cache is None:
        return idx, t_out
    key = _key(indices)
    hit = cache.get("compact")
    if hit is not None and hit[0] == key:
        return hit[1]
    from ..kernels import sparse_event_linear as k

    if n_in <= _U16:
        small = np.empty(idx.shape, np.uint16)
        k.compact_indices(idx, small)
        idx = small
    if indices.shape[0] <= _U16:
        small = np.empty(t_out.shape, np.uint16)
        k.compact_indices(t_out, small)
        t_out = small
    cache["compact"] = (key, (idx, t_out))
    return idx, t_out


def csc_values(values: torch.Tensor, indices: torch.Tensor, index: tuple,
               cache: dict | None) -> np.ndarray | None:  # fmt: skip
    """The weights in per-input order (``t_val`` of ``kernels.csc_values``), or None
    while not worth building (see the module docstring)."""
    if cache is None or not cache.get("values_frozen"):
        return None
    key = (_key(values), _key(indices))
    hit = cache.get("csc_values")
    if hit is not None and hit[0] == key:
        return hit[1]
    if cache.get("csc_values_seen") != key:  # first event call on these weights
        cache["csc_values_seen"] = key
        return None
    from ..kernels import sparse_event_linear as k

    _, t_out, t_slot = index
    t_val = np.empty(t_out.shape, np.float32)
    k.csc_values(values.detach().numpy(), t_out, t_slot, t_val)
    cache["csc_values"] = (key, t_val)
    return t_val


# Above these input rates the event walk over the per-input weight copy (csc_values)
# costs more than the vectorised row walk (forward_rows): for fewer than BLOCK_MIN rows
# (one-row gathers) and for row blocks. Without that copy the layer's GATHER_RATE
# applies. Crossovers measured on the 2-core dev VM, 4096 -> 4096: batch 1 ~0.55 (5 and
# 10 % density), ~0.5 (20 %); batch 16 ~0.35 (5, 10 %), ~0.25 (20 %).
GATHER_RATE_CSC_ROWS = 0.5
GATHER_RATE_CSC = 0.3
# forward_rows_parallel (all Numba threads) from this many row-synapses (rows · out · k)
# up; None: chosen by parallel_work(). Set an int to override.
PARALLEL_WORK: int | None = None


def parallel_work() -> int:
    """Row-synapses from which the multi-threaded row walk pays off.

    The crossover is set by how long Numba's sleeping workers take to wake. Measured on
    the 2-core dev VM (4096 -> 4096 at 10 %, dense input): with OpenMP workers told to
    sleep (``OMP_WAIT_POLICY=PASSIVE``, which ``import neurosparse`` sets when torch is
    not loaded yet, see ``neurosparse/__init__.py``) or the workqueue layer (opt-in with
    ``NUMBA_THREADING_LAYER=workqueue``; the package leaves the layer to Numba) a
    parallel call costs ~0.1-0.3 ms more, so two threads lose at batch 1 (0.66 vs 0.40
    ms) and win from a few rows up (batch 16: 2.7 vs 4.7 ms): 8 M row-synapses. With
    ``NUMBA_THREADING_LAYER=omp`` and spinning workers (``OMP_WAIT_POLICY`` unset or
    ``ACTIVE``) the wake-up is a few µs and two threads already win at 512 -> 512
    (0.006 vs 0.008 ms; 4096², batch 1: 0.21 vs 0.40 ms): 16 K. Only that explicit
    setting selects 16 K: under Numba's own choice of layer the layer is not known
    before the first parallel kernel runs, so the threshold stays at 8 M. Spinning
    workers cost the other threads of the machine CPU time, which is why the package
    does not ask for them.
    """
    if PARALLEL_WORK is not None:
        return PARALLEL_WORK
    import os

    spinning = (numba.config.THREADING_LAYER == "omp"
                and os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE")  # fmt: skip
    return 1 << 14 if spinning else 8 << 20


def cpu_forward(x2d: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None,
                indices: torch.Tensor, index: tuple, cache: dict | None,
                gather_rate: float) -> torch.Tensor:  # fmt: skip
    """``y [M, out]`` of float32 CPU ``x2d [M, in]`` through the Numba kernels.

    Picks the event walk (cost ∝ events × fan-out) or the row walk (every synapse,
    vectorised) by the input rate: ``gather_rate`` (the layer's ``GATHER_RATE``) with
    the indirect event walk, :data:`GATHER_RATE_CSC_ROWS` / :data:`GATHER_RATE_CSC`
    once the per-input weight copy exists.
    """
    from ..kernels import sparse_event_linear as k

    xn = x2d.detach().numpy()
    vn = values.detach().numpy()
    n_rows, n_out = xn.shape[0], vn.shape[0]
    b = np.zeros(n_out, np.float32) if bias is None else bias.detach().numpy()
    y = np.empty((n_rows, n_out), np.float32)
    nnz_x = int(np.count_nonzero(xn))
    idx, t_out = compact(indices, index, xn.shape[1], cache)
    csc_rate = GATHER_RATE_CSC_ROWS if n_rows < k.BLOCK_MIN else GATHER_RATE_CSC
    t_val = None
    if nnz_x <= csc_rate * xn.size:
        t_val = csc_values(values, indices, index, cache)
    rate = gather_rate if t_val is None else csc_rate
    if nnz_x > rate * xn.size:
        nt = numba.get_num_threads() if n_rows * vn.size >= parallel_work() else 1
        if nt > 1:
            k.forward_rows_parallel(xn, idx, vn, b, y, nt)
        else:
            k.forward_rows(xn, idx, vn, b, y)
    elif t_val is not None:
        k.forward_csc(xn, index[0], t_out, t_val, b, y)
    else:
        k.forward(xn, index[0], t_out, index[2], vn, b, y)
    return torch.from_numpy(y)


# -- CUDA -------------------------------------------------------------------------------
def device_index(indices: torch.Tensor, index: tuple, cache: dict | None) -> dict:
    """The device copies the CUDA kernels need, cached per indices version:
    ``ell_ptr`` (``0, k, 2k, ...``), ``ptr`` / ``t_out`` (the per-input transpose) and
    ``t_flat = t_out · k + t_slot`` (where each transposed synapse sits in
    ``values.view(-1)``)."""
    key = _key(indices)
    hit = None if cache is None else cache.get("cuda")
    if hit is not None and hit[0] == key:
        return hit[1]
    dev = indices.device
    n_out, k = indices.shape
    ptr, t_out, t_slot = index
    nnz = n_out * k
    itype = torch.int32 if nnz < 2**31 else torch.int64
    t_flat = t_out.astype(np.int64) * k + t_slot
    d = {
        "ell_ptr": torch.arange(0, nnz + 1, k, dtype=torch.int64, device=dev),
        "ptr": torch.from_numpy(ptr).to(dev),
        "t_out": torch.from_numpy(t_out).to(dev),
        "t_flat": torch.from_numpy(t_flat).to(dev, itype),
    }
    if cache is not None:
        cache["cuda"] = (key, d)
    return d


def _gather(env: Any, ptr, cols, wpos, vflat, src, bias, out) -> None:
    from ..kernels import sparse_event_linear_cuda as kc

    n_rows, n_seg = out.shape
    if n_rows == 0 or n_seg == 0:
        return
    # flags as ints, not bools: CudaEnv's fast path packs ints as plain C integers
    use_wpos = int(wpos is not None)
    has_bias = int(bias is not None)
    env.launch(kc.segment_gather, kc.blocks(n_rows, n_seg), 32 * kc.WARPS, ptr, cols,
               wpos if use_wpos else cols, use_wpos, vflat, src,
               bias if has_bias else vflat, has_bias, out)  # fmt: skip


# the CUDA kernels as an event op (ops/event_autograd.py); its index is
# ``(indices, device index)``
def _cuda_forward(x2d, values, bias, ix):
    indices, d = ix
    y = torch.empty(x2d.shape[0], values.shape[0], dtype=torch.float32, device=x2d.device)
    _gather(CudaEnv(x2d.device), d["ell_ptr"], indices.reshape(-1), None,
            values.detach().reshape(-1), x2d.detach(), None if bias is None else bias.detach(),
            y)  # fmt: skip
    return y


def _cuda_grad_input(gy, x2d, values, ix):
    d = ix[1]
    gx = torch.empty(x2d.shape, dtype=torch.float32, device=gy.device)
    _gather(CudaEnv(gy.device), d["ptr"], d["t_out"], d["t_flat"], values.detach().reshape(-1),
            gy, None, gx)  # fmt: skip
    return gx


def _cuda_grad_values(gy, x2d, values, ix):
    from ..kernels import sparse_event_linear_cuda as kc

    gv = torch.empty(values.shape, dtype=torch.float32, device=gy.device)
    if gv.numel():
        n = gv.numel()
        CudaEnv(gy.device).launch(kc.grad_values, (n + kc.THREADS_GV - 1) // kc.THREADS_GV,
                                  kc.THREADS_GV, x2d.detach(), gy, ix[0], gv)  # fmt: skip
    return gv


ELL_LINEAR_CUDA = EventOp(_cuda_forward, _cuda_grad_input, _cuda_grad_values, saves_input=True)


def sparse_event_linear_cuda(x2d: torch.Tensor, indices: torch.Tensor, values: torch.Tensor,
                             bias: torch.Tensor | None, index: tuple,
                             cache: dict | None) -> torch.Tensor:  # fmt: skip
    """``y [M, out]`` of contiguous float32 ``x2d [M, in]`` on CUDA (arguments checked by
    the layer's functional; ``index`` is its host-side per-input transpose)."""
    indices = indices.contiguous()
    values_c = values if values.is_contiguous() else values.contiguous()
    d = device_index(indices, index, cache)
    return apply_event_op(ELL_LINEAR_CUDA, x2d, values_c, bias, (indices, d))
