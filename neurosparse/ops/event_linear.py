"""Event Linear as an autograd op: ``y = x Wᵀ + b`` as a gather over the active inputs.

The op runs in three steps, so that a caller can look at the activity before it commits
to the event path (see ``neurosparse/layers/dispatch.py``):

1. :func:`scan_linear` -- one pass over the dense input ``x[M, K]``: events per row,
   events of magnitude 1 (spikes) vs graded ones, NaN/inf check.
2. :func:`index_linear` -- the compressed row lists of the active inputs (CSR), built
   once per call.
3. :func:`event_linear_apply` -- the autograd Function. Forward: for each row, the sum of
   the weight rows (columns of ``W``) of its events, scaled by the event value. Backward:
   ``grad_W`` accumulates only the columns of inputs that were active (a gather over
   the transposed lists); ``grad_x = grad_y @ W`` is dense (what a surrogate chain
   upstream needs); ``grad_b = Σ grad_y``.

Three implementations, chosen per call: the Numba CPU kernels (``kernels/event_*.py``),
the Numba CUDA kernels (``kernels/event_linear_cuda.py``, on torch's stream, no host
copies), and a pure-torch reference (``index_add_`` row gathers) used for other dtypes,
``NEUROSPARSE_KERNELS=torch`` and devices without a kernel. Kernels run on float32; the
reference runs any floating dtype. All three give ``nn.Linear``'s result to float32
rounding (the sums run in a different order).

The CPU kernel gathers from a column-tiled copy of ``Wᵀ`` (``kernels/event_linear.py``),
built once per weight version and cached; see :func:`packed` for when it is rebuilt.

On CUDA the index is built on the device (ELL rows, no host round trip) and the kernels
run on torch's current stream. The exact counts (and the NaN check) need one small
device->host read per call; ``scan_linear(..., exact=False)`` skips it, which makes the
op capturable in a CUDA graph. Numba's launch path costs ~0.5 ms of host time per call
(measured on an H200 host), more than the kernels themselves at small batch: capture
small-batch inference in a graph (``torch.cuda.graphs``).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from ..errors import InputValueError
from . import registry
from .cuda_env import CudaEnv

OP = "event_linear"
registry.register(OP, "cpu", "cuda")

# The reference materialises (events × out_features) products; chunks keep that bounded.
_REF_CHUNK_ELEMS = 1 << 24


def kernel_device(x: torch.Tensor) -> str:
    """Which kernel family a tensor's memory calls for: its device type. (The simulator
    tests route CPU tensors to the CUDA kernels by replacing this function.)"""
    return x.device.type


def backend(x: torch.Tensor, op: str = OP) -> str:
    """``"cpu"`` / ``"cuda"`` (Numba kernels) or ``"torch"`` (the reference) for an input.

    Kernels run float32; other dtypes, ``NEUROSPARSE_KERNELS=torch`` and devices without
    a kernel take the reference.
    """
    if x.dtype != torch.float32:
        return "torch"
    dev = kernel_device(x)
    return dev if registry.use_kernel(op, dev) else "torch"


@dataclass
class LinearScan:
    """What the count pass found in an input ``x[M, K]``.

    ``nnz``/``unit`` are Python ints (exact counts); on CUDA the scan also holds the
    finished index (building it is the count pass there).
    """

    rows: int
    n_in: int
    nnz: int
    unit: int
    backend: str
    counts: Any = None
    index: Any = None

    @property
    def rate(self) -> float:
        return self.nnz / max(1, self.rows * self.n_in)

    @property
    def graded(self) -> int:
        return self.nnz - self.unit


@dataclass
class LinearIndex:
    """Active inputs of ``x[M, K]`` as compressed rows, in the form its backend uses.

    ``cpu``: ``rowptr, idx, val`` NumPy arrays (CSR); ``cuda``: ELL device arrays ``idx,
    val`` (capacity K per row), ``cnt [M]``, ``start [M]``; ``torch``: the ``rows, cols,
    vals`` of ``x.nonzero()``.
    """

    backend: str
    device: torch.device
    rows: int
    n_in: int
    arrays: tuple
    nnz: int = -1  # when known on the host (sizes the GPU's transposed lists)
    _transposed: tuple | None = field(default=None, repr=False)

    def transposed(self) -> tuple:
        """CPU: column lists (CSC) of the same events, built on first use (weight grad)."""
        if self._transposed is None:
            from ..kernels import event_index as ei

            self._transposed = ei.csr_transpose(*self.arrays, self.n_in)
        return self._transposed


def _raise_bad(name: str, row: int, rows: int) -> None:
    where = f" (first in flattened sample {row} of {rows})" if row >= 0 else ""
    raise InputValueError(f"{name} contains NaN or infinite values{where}; spikes must be finite")


def scan_linear(x2d: torch.Tensor, name: str = "input", exact: bool = True) -> LinearScan:
    """Count pass over ``x2d [M, K]``: events per row, ±1 events, NaN/inf (raises).

    On CUDA the counts live on the device; ``exact=False`` skips reading them (no host
    synchronisation: ``nnz``/``unit`` are -1 and NaN/inf is not checked). Elsewhere the
    flag has no effect.
    """
    m, k = x2d.shape
    bk = backend(x2d)
    if bk == "cpu":
        from ..kernels import event_index as ei

        counts, unit, graded, bad = ei.scan_rows(x2d.detach().numpy().reshape(m, 1, 1, k))
        if bad >= 0:
            _raise_bad(name, bad, m)
        u = int(unit.sum())
        return LinearScan(m, k, u + int(graded.sum()), u, bk, counts=counts)
    if bk == "cuda":
        index, rowstats = _cuda_scan(x2d)
        if not exact:
            return LinearScan(m, k, -1, -1, bk, index=index)
        nnz, unit, graded, bad = cuda_read(index.arrays[2], rowstats)
        if bad:
            _raise_bad(name, -1, m)
        index.nnz = nnz
        return LinearScan(m, k, nnz, unit, bk, index=index)
    xd = x2d.detach()
    finite = torch.isfinite(xd)
    if not bool(finite.all()):
        _raise_bad(name, int((~finite).any(1).nonzero()[0, 0]), m)
    nnz = int(torch.count_nonzero(xd))
    unit = int(torch.count_nonzero(xd.abs() == 1))
    return LinearScan(m, k, nnz, unit, bk)


def index_linear(x2d: torch.Tensor, scan: LinearScan) -> LinearIndex:
    """Compressed rows of the active inputs of ``x2d`` (after :func:`scan_linear`)."""
    m, k = x2d.shape
    if scan.index is not None:
        return scan.index
    if scan.backend == "cpu":
        from ..kernels import event_index as ei

        arrays = ei.csr_from_counts(x2d.detach().numpy().reshape(m, 1, 1, k), scan.counts)
        return LinearIndex("cpu", x2d.device, m, k, arrays)
    xd = x2d.detach()
    rows, cols = xd.nonzero(as_tuple=True)
    return LinearIndex("torch", x2d.device, m, k, (rows, cols, xd[rows, cols]))


# -- packed weight copies (and device views), cached per weight tensor ------------------
_PACKED: dict[tuple[int, str], tuple[tuple, Any]] = {}


def packed(weight: torch.Tensor, tag: str, build: Callable[[torch.Tensor], Any]) -> Any:
    """``build(weight.detach())``, cached per weight tensor and ``tag`` (the packing).

    An entry is rebuilt when the tensor's storage or version counter changes, which
    every in-place update through autograd-visible ops does (optimizer steps,
    ``load_state_dict``, ``with torch.no_grad(): w.copy_(...)``). Writes through
    ``weight.data`` bypass the version counter: call :func:`clear_weight_cache` after
    those. A cached copy costs one more weight's worth of memory.
    """
    key = (weight.data_ptr(), weight._version, tuple(weight.shape), weight.dtype)
    slot = (id(weight), tag)
    hit = _PACKED.get(slot)
    if hit is not None and hit[0] == key:
        return hit[1]
    if hit is None:
        weakref.finalize(weight, _PACKED.pop, slot, None)
    value = build(weight.detach())
    _PACKED[slot] = (key, value)
    return value


def clear_weight_cache(weight: torch.Tensor | None = None) -> None:
    """Drop the packed copies of ``weight`` (of every weight when None)."""
    for slot in [s for s in _PACKED if weight is None or s[0] == id(weight)]:
        del _PACKED[slot]


# -- the three implementations ---------------------------------------------------------
def empty_cpu(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised float32 CPU tensor allocated by NumPy.

    NumPy asks the kernel for transparent huge pages on large allocations; a fresh
    multi-MB torch.empty is faulted in 4 KiB at a time, which on the 2-core VM cost more
    than the event kernel itself (33 MB: ~18 ms of page faults vs ~2 ms of work).
    """
    return torch.from_numpy(np.empty(shape, np.float32))


def _forward_cpu(index: LinearIndex, weight: torch.Tensor, bias: torch.Tensor | None):
    from ..kernels import event_linear as kl

    tiles = packed(weight, "linear", lambda w: kl.pack_weight(w.numpy()))
    b = kl.padded_bias(None if bias is None else bias.detach().numpy(), tiles)
    y = empty_cpu((index.rows, weight.shape[0]))
    kl.gather_rows(*index.arrays, tiles, b, y.numpy(), False)
    return y


def _grad_weight_cpu(index: LinearIndex, gy: torch.Tensor, n_out: int) -> torch.Tensor:
    from ..kernels import event_linear as kl

    colptr, rows, vals = index.transposed()
    tiles = kl.pack_rows(gy.numpy())
    gw = empty_cpu((n_out, index.n_in))
    kl.gather_rows(colptr, rows, vals, tiles, kl.padded_bias(None, tiles), gw.numpy(), True)
    return gw


def _chunks(n: int, width: int):
    step = max(1, _REF_CHUNK_ELEMS // max(1, width))
    for s in range(0, n, step):
        yield slice(s, min(n, s + step))


def reference_forward(
    index: LinearIndex, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """Row gather in plain torch: ``y[r] += v · W[:, c]`` for every event ``(r, c, v)``."""
    rows, cols, vals = index.arrays
    n_out = weight.shape[0]
    y = torch.zeros(index.rows, n_out, dtype=weight.dtype, device=weight.device)
    if bias is not None:
        y += bias
    wt = weight.t()
    for s in _chunks(rows.numel(), n_out):
        y.index_add_(0, rows[s], vals[s, None] * wt[cols[s]])
    return y


def reference_grad_weight(index: LinearIndex, gy: torch.Tensor, n_out: int) -> torch.Tensor:
    """``gWᵀ[c] += v · gy[r]`` for every event ``(r, c, v)`` (only active columns)."""
    rows, cols, vals = index.arrays
    gwt = torch.zeros(index.n_in, n_out, dtype=gy.dtype, device=gy.device)
    for s in _chunks(rows.numel(), n_out):
        gwt.index_add_(0, cols[s], vals[s, None] * gy[rows[s]])
    return gwt.t()


# -- CUDA kernels (numba.cuda on torch's stream, no host copies) ------------------------


def cuda_read(cnt, rowstats) -> tuple[int, int, int, int]:
    """Totals of the per-row statistics of the GPU index: ``(events, ±1, graded, rows
    with NaN/inf)``, summed on the device and read with one synchronisation."""
    from ..kernels.event_index_cuda import summary

    if isinstance(cnt, np.ndarray):  # the simulator's device arrays
        return summary(cnt, rowstats)
    c, s = torch.as_tensor(cnt), torch.as_tensor(rowstats)
    ev, unit, graded, bad = torch.cat([c.sum().view(1), s.sum(0)]).tolist()
    return int(ev), int(unit), int(graded), int(bad)


def _cuda_scan(x2d: torch.Tensor):
    from ..kernels import event_linear_cuda as kc

    env = CudaEnv(x2d.device)
    idx, val, cnt, start, rowstats = kc.linear_index(env.view(x2d), env.alloc, env.stream)
    m, k = x2d.shape
    return LinearIndex("cuda", x2d.device, m, k, (idx, val, cnt, start)), rowstats


def _forward_cuda(index: LinearIndex, weight: torch.Tensor, bias: torch.Tensor | None):
    from ..kernels import event_linear_cuda as kc

    env = CudaEnv(index.device)

    def transpose(w):  # Wᵀ [K, N] and its numba view, both kept in the cache
        wt = w.t().contiguous()
        return wt, env.view(wt)

    _, wt_view = packed(weight, "linear_cuda", transpose)
    y, yv = env.tensor((index.rows, weight.shape[0]))
    idx, val, cnt, start = index.arrays
    bias_view = None if bias is None else packed(bias, "cuda_view", env.view)
    kc.launch_gather(start, cnt, idx, val, wt_view, bias_view, yv, env.stream)
    return y


def _grad_weight_cuda(index: LinearIndex, gy: torch.Tensor, n_out: int) -> torch.Tensor:
    from ..kernels import event_linear_cuda as kc

    env = CudaEnv(index.device)
    cap = index.nnz if index.nnz >= 0 else index.rows * index.n_in
    gwt = kc.linear_grad_weight_t(index.arrays, env.view(gy), index.n_in, cap, env.alloc,
                                  env.stream)  # fmt: skip
    return torch.as_tensor(gwt, device=index.device).t()


def _forward(index, weight, bias):
    run = {"cpu": _forward_cpu, "cuda": _forward_cuda, "torch": reference_forward}
    return run[index.backend](index, weight, bias)


def _grad_weight(index, gy, n_out):
    run = {"cpu": _grad_weight_cpu, "cuda": _grad_weight_cuda, "torch": reference_grad_weight}
    return run[index.backend](index, gy, n_out)


class _EventLinearFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x2d, weight, bias, index):  # type: ignore[override]
        ctx.index = index
        ctx.has_bias = bias is not None
        ctx.save_for_backward(weight)
        return _forward(index, weight, bias)

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):  # type: ignore[override]
        (weight,) = ctx.saved_tensors
        gy = gy.contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = gy @ weight  # dense: the surrogate gradient upstream needs every input
        if ctx.needs_input_grad[1]:
            gw = _grad_weight(ctx.index, gy, weight.shape[0])
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = gy.sum(0)
        return gx, gw, gb, None


def event_linear_apply(
    x2d: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, index: LinearIndex
) -> torch.Tensor:
    """Autograd op ``x2d [M, K] -> [M, N]`` over a prebuilt :class:`LinearIndex`.

    ``x2d`` is passed only so autograd can route its gradient; its values are those in
    ``index``. Arguments are assumed checked (see ``neurosparse.layers.event_linear``).
    """
    return _EventLinearFn.apply(x2d, weight, bias, index)
