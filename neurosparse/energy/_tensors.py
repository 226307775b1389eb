"""Small tensor reductions shared by the counting hooks.

Counts are returned as *lead tensors*: one float64 value per leading element of the
input (every dim that is not a sample/feature dim, e.g. [T, B] for a Linear on
[T, B, N]), so the meter can split them by time step afterwards. float64 keeps
integer counts exact up to 2**53.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from ..ops import registry

Lead = torch.Tensor

# While the meter counts a finished sequence, tensors that several layers read (a neuron's
# spikes are the next layer's input) are stacked and checked once. Keys hold ids of
# tensors the memo keeps alive, so an id cannot be reused while the memo exists.
_MEMO: dict | None = None


@contextmanager
def shared_work() -> Iterator[None]:
    """Reuse stacks and binary checks of the same tensors inside this block."""
    global _MEMO
    outer, _MEMO = _MEMO, {} if _MEMO is None else _MEMO
    try:
        yield
    finally:
        _MEMO = outer


def _consecutive_view(ts: list[torch.Tensor]) -> torch.Tensor | None:
    """``torch.stack(ts)`` without a copy when ``ts`` are back-to-back contiguous slices
    of one storage (``x[0], x[1], ...`` of a time-first input), else None."""
    t0 = ts[0]
    if not t0.is_contiguous() or t0.numel() == 0:
        return None
    n, off, ptr = t0.numel(), t0.storage_offset(), t0.untyped_storage().data_ptr()
    shape, stride, dtype = t0.shape, t0.stride(), t0.dtype
    for i, t in enumerate(ts):
        if (t.storage_offset() != off + i * n or t.shape != shape or t.stride() != stride
                or t.dtype != dtype or t.untyped_storage().data_ptr() != ptr):
            return None
    return t0.as_strided((len(ts), *shape), (n, *stride), off)


def stack(ts: list[torch.Tensor]) -> torch.Tensor:
    """``torch.stack(ts)`` (detached), shared inside :func:`shared_work`, a view when it can be."""
    key = ("stack", *map(id, ts))
    if _MEMO is not None and key in _MEMO:
        return _MEMO[key][0]
    with torch.no_grad():
        out = _consecutive_view(ts)
        if out is None:
            out = torch.stack(ts)
    if _MEMO is not None:
        _MEMO[key] = (out, ts)
    return out


def first_tensor(obj) -> torch.Tensor | None:
    """The first tensor in ``obj`` (a tensor, or a possibly nested tuple/list)."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, tuple) and obj and isinstance(obj[0], torch.Tensor):
        return obj[0]  # the usual hook argument: (input, ...)
    if isinstance(obj, (tuple, list)):
        for item in obj:
            t = first_tensor(item)
            if t is not None:
                return t
    return None


def count_tensors(obj) -> int:
    """Number of tensors in a state object (tensor, tuple, NamedTuple, list)."""
    if isinstance(obj, torch.Tensor):
        return 1
    if isinstance(obj, (tuple, list)):
        n = 0
        for o in obj:
            n += 1 if isinstance(o, torch.Tensor) else count_tensors(o)
        return n
    return 0


def lead_shape(x: torch.Tensor, sample_ndim: int) -> tuple[int, ...]:
    return tuple(x.shape[: max(x.dim() - sample_ndim, 0)])


def full_lead(x: torch.Tensor, sample_ndim: int, value: float,
              device: torch.device | None = None) -> Lead:
    """A lead tensor holding ``value`` for every leading element (on ``device`` or x's)."""
    return torch.full(lead_shape(x, sample_ndim), float(value), dtype=torch.float64,
                      device=device or x.device)


def nonzero_lead(x: torch.Tensor, sample_ndim: int, nz: torch.Tensor | None = None) -> Lead:
    """Non-zero elements per leading element (``nz`` = precomputed ``x != 0``)."""
    nz = (x != 0) if nz is None else nz
    if sample_ndim == 0:
        return nz.to(torch.float64)
    # summing a uint8 view is several times faster than summing bools on CPU
    flat = nz.reshape(*lead_shape(x, sample_ndim), -1).view(torch.uint8)
    dtype = torch.int32 if flat.shape[-1] < 2**31 else torch.int64  # int32 sums are faster
    return flat.sum(-1, dtype=dtype).to(torch.float64)


def binary_rows(x: torch.Tensor, sample_ndim: int) -> Lead | None:
    """Non-zeros per leading element when every value of ``x`` is 0 or 1, else None.

    Spike tensors are the common case, and for them a few BLAS-backed reductions replace
    element-wise compare-and-count passes: on [0, 1], x² ≤ x with equality only at 0 and 1,
    so ``Σx == Σx²`` proves the tensor binary (exact in float32 below 2**24 elements).
    """
    if not x.is_floating_point() or x.numel() == 0 or x.numel() >= 2**24 or sample_ndim == 0:
        return None
    key = ("binary", id(x), sample_ndim)
    if _MEMO is not None and key in _MEMO:
        return _MEMO[key][0]
    out = _kernel_rows(x, sample_ndim) if _kernel_takes(x) else _binary_rows(x, sample_ndim)
    if _MEMO is not None:
        _MEMO[key] = (out, x)
    return out


def _kernel_takes(x: torch.Tensor) -> bool:
    """The one-pass kernel runs on contiguous float32/float64 CPU tensors (torch elsewhere:
    on a GPU the reference's reductions stay on the device), unless
    ``NEUROSPARSE_KERNELS=torch``. Not an op of the registry: counting, not a layer."""
    return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and x.dim() >= 2 and x.is_contiguous() and registry.kernel_mode() != "torch")


def _kernel_rows(x: torch.Tensor, sample_ndim: int) -> Lead | None:
    """:func:`binary_rows` by one pass of ``kernels.step_stats`` over ``x``; the changes
    along dim 0 it finds on the way are kept for :func:`delta_nonzero` in the memo."""
    from ..kernels import step_stats

    ls = lead_shape(x, sample_ndim)
    T = x.shape[0]
    arr = x.detach().numpy().reshape(T, -1, math.prod(x.shape[len(ls):]))
    nnz = np.empty(arr.shape[:2], dtype=np.int64)
    changed = np.empty(arr.shape[:2], dtype=np.int64)
    binary = bool(step_stats.step_row_stats(arr, nnz, changed))
    if _MEMO is not None:
        _MEMO[("changed", id(x), sample_ndim)] = (
            torch.from_numpy(changed).to(torch.float64).reshape(ls), x)
    if not binary:
        return None
    return torch.from_numpy(nnz).to(torch.float64).reshape(ls)



def step_changes(rows: torch.Tensor) -> tuple:
    """(elements changed between consecutive rows of ``rows`` [steps, N], non-zeros of
    its first row): one pass of ``kernels.step_stats`` on CPU (ints; 4.5x faster than
    torch's compare-and-sum on a [100, 32·1024] spike sequence, 1.8 against 8.0 ms on
    the 2-core VM), torch elsewhere (0-d tensors on the device: no host sync)."""
    if _kernel_takes(rows):
        from ..kernels import step_stats

        T, N = rows.shape
        nnz = np.empty((T, 1), dtype=np.int64)
        changed = np.empty((T, 1), dtype=np.int64)
        step_stats.step_row_stats(rows.numpy().reshape(T, 1, N), nnz, changed)
        return int(changed[1:].sum()), int(nnz[0, 0])
    rest = (rows[1:] != rows[:-1]).sum() if rows.shape[0] > 1 else 0
    return rest, torch.count_nonzero(rows[0])


def _binary_rows(x: torch.Tensor, sample_ndim: int) -> Lead | None:
    xd = x.detach()
    flat = xd.reshape(-1)
    ls = lead_shape(x, sample_ndim)
    rows = xd.reshape(-1, flat.numel() // max(math.prod(ls), 1))
    ones = torch.ones(rows.shape[1], dtype=x.dtype, device=x.device)
    per_row = rows @ ones  # Σx per row, wanted anyway; Σx overall is its sum
    lo, hi = torch.aminmax(flat)
    # one device sync for the four scalars
    lo, hi, s1, s2 = torch.stack([lo, hi, per_row.sum(), torch.dot(flat, flat)]).tolist()
    if lo < 0 or hi > 1 or s1 != s2:
        return None
    return per_row.to(torch.float64).reshape(ls)


def row_sums(x: torch.Tensor, sample_ndim: int) -> Lead:
    """Σ over sample dims per leading element with one BLAS pass (for 0/1 tensors known
    to be binary by construction, e.g. a neurosparse neuron's spikes: no check)."""
    ls = lead_shape(x, sample_ndim)
    xd = x.detach()
    rows = xd.reshape(-1, xd.numel() // max(math.prod(ls), 1))
    if rows.shape[1] >= 2**24 or not x.is_floating_point():  # float32 sums stay exact
        return rows.to(torch.float64).sum(-1).reshape(ls)
    ones = torch.ones(rows.shape[1], dtype=x.dtype, device=x.device)
    return (rows @ ones).to(torch.float64).reshape(ls)


def fanout_dot(x: torch.Tensor, fan: torch.Tensor, uniform: bool, sample_ndim: int,
               nz: torch.Tensor | None = None, nnz: Lead | None = None,
               binary: bool = False) -> Lead:
    """Σ over sample dims of bin(x)·fan, per leading element (exact effective synops)."""
    if uniform:
        value = float(fan.reshape(-1)[0]) if fan.numel() else 0.0
        return (nonzero_lead(x, sample_ndim, nz) if nnz is None else nnz) * value
    flat_fan = fan.reshape(-1)
    # float32 is exact while every row sum stays below 2**24; use it when safe (faster)
    dtype = torch.float32 if float(flat_fan.sum()) < 2**24 else torch.float64
    if binary and x.dtype == dtype:
        rows = x.detach().reshape(-1, flat_fan.numel())  # bin(x) == x
    else:
        nz = (x != 0) if nz is None else nz
        rows = nz.reshape(-1, flat_fan.numel()).to(dtype)
    out = rows @ flat_fan.to(device=x.device, dtype=dtype)
    return out.to(torch.float64).reshape(lead_shape(x, sample_ndim))


def is_ternary(x: torch.Tensor, nnz: float | None = None) -> bool:
    """True when every value is in {-1, 0, 1} (NeuroBench's test for 'spiking' input).

    ``nnz`` is the number of non-zeros of ``x`` when already known.
    """
    if x.numel() == 0:
        return True
    a = x.detach().abs()
    if float(a.max()) > 1:
        return False
    if nnz is None:
        nnz = float(torch.count_nonzero(a))
    # all |x| <= 1: every non-zero is ±1 iff Σ|x| equals the number of non-zeros
    # (float32 sums of 0/1 values are exact below 2**24 elements)
    total = a.sum() if a.numel() < 2**24 else a.sum(dtype=torch.float64)
    return float(total) == nnz


def time_batch_size(x: torch.Tensor, sample_ndim: int) -> int:
    """Product of the (at most two) time/batch dims: leading dims kept by :func:`reduce_lead`."""
    ls = lead_shape(x, sample_ndim)[:2]
    return max(math.prod(ls), 1)


def reduce_lead(t: Lead) -> Lead:
    """Keep at most two leading dims (time and batch); sum the rest."""
    if t.dim() > 2:
        return t.sum(dim=tuple(range(2, t.dim())))
    return t


TimeView = tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]


def delta_nonzero(
    x: torch.Tensor, sample_ndim: int, view: TimeView | None, prev: torch.Tensor | None,
    nnz: Lead | None = None,
) -> Lead:
    """Elements that changed since the previous time step, per leading element.

    With ``view`` (x seen time-major as [T, ...] plus a map back to x's lead shape) the
    differences are taken along time inside this call, the first step against zero.
    Otherwise ``x`` is one step and ``prev`` the input of the previous step (or None).
    ``nnz`` (non-zeros per lead element) is passed only when ``x`` is binary (0/1).
    """
    xd = x.detach()
    if view is not None and view[0] is x and _MEMO is not None:
        hit = _MEMO.get(("changed", id(x), sample_ndim))
        if hit is not None:  # counted along dim 0 by the one-pass kernel already
            return hit[0]
    if view is not None and nnz is not None and sample_ndim:
        # binary x: changed(t) = nnz(t) + nnz(t-1) - 2·overlap(t, t-1)
        tm, restore = view
        time_first = tm is x
        tm = tm.detach()
        T = tm.shape[0]
        rows = tm.reshape(T, -1, math.prod(tm.shape[tm.dim() - sample_ndim:]))
        if time_first:  # time-first already: the non-zeros per row are nnz
            nnz_tm = nnz.reshape(T, -1).to(torch.float64)
        else:  # float32 row sums of 0/1 values are exact (rows are shorter than 2**24)
            nnz_tm = rows.sum(-1).to(torch.float64)
        changed = nnz_tm.clone()
        if T > 1:
            # row-wise dot products as a product and one matrix-vector pass (measured
            # 1.4 ms vs 5.6 ms for vecdot on [99, 32, 700] with cold caches, 1 CPU thread)
            ones = torch.ones(rows.shape[-1], dtype=rows.dtype, device=rows.device)
            overlap = ((rows[1:] * rows[:-1]) @ ones).to(torch.float64)
            changed[1:] = nnz_tm[1:] + nnz_tm[:-1] - 2 * overlap
        lead_tm = tm.dim() - sample_ndim
        return restore(changed.reshape(tm.shape[:lead_tm]))
    if view is not None:
        tm, restore = view
        tm = tm.detach()
        changed = torch.empty_like(tm, dtype=torch.bool)
        changed[0] = tm[0] != 0
        if tm.shape[0] > 1:
            torch.ne(tm[1:], tm[:-1], out=changed[1:])
        lead_tm = tm.dim() - sample_ndim
        per = (changed.reshape(*tm.shape[:lead_tm], -1).view(torch.uint8).sum(-1, dtype=torch.int32)
               if sample_ndim else changed)
        return restore(per).to(torch.float64)
    if prev is None or prev.shape != xd.shape:
        return nonzero_lead(xd, sample_ndim)
    return nonzero_lead(xd != prev, sample_ndim)
