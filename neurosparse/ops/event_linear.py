"""Event Linear as an autograd op: ``y = x Wᵀ + b`` as a gather over the active inputs.

The op runs in three steps, so that a caller can look at the activity before it commits
to the event path (see ``neurosparse/layers/dispatch.py``):

1. :func:`scan_linear` -- one pass over the dense input ``x[M, K]``: events per row,
   events of magnitude 1 (spikes) vs graded ones, NaN/inf check.
2. :func:`index_linear` -- the compressed row lists of the active inputs (CSR), built
   once per call (CPU; on CUDA the kernel needs none).
3. :func:`event_linear_apply` -- the autograd Function. Forward: for each row, the sum of
   the weight rows (columns of ``W``) of its events, scaled by the event value. Backward:
   ``grad_W`` accumulates only the columns of inputs that were active (a gather over
   the transposed lists; cuBLAS on CUDA); ``grad_x = grad_y @ W`` is dense (what a surrogate chain
   upstream needs); ``grad_b = Σ grad_y``.

Three implementations, chosen per call: the Numba CPU kernels (``kernels/event_*.py``,
float32), the Numba CUDA kernel (``kernels/event_linear_cuda.py``, float32 and
bfloat16, on torch's stream), and a pure-torch reference (``index_add_`` row gathers)
for other dtypes, ``NEUROSPARSE_KERNELS=torch`` and devices without a kernel. All give
``nn.Linear``'s result to the rounding of their dtype (the sums run in another order).

No weight copies are cached: the CPU kernel and the CUDA kernel read ``Wᵀ`` in place
(:func:`weight_t`; ``EventLinear`` stores its weight transposed, so that is a view), so
every write to the weight, ``weight.data`` included, is seen by the next call.

On CUDA there is no host-built index (``kernels/event_linear_cuda.py``, which picks by
row count and weight layout): up to 7 rows, one kernel compacts the dense input per row
tile and gathers; from 8 to 127 rows with a weight readable as 8-byte words (the
contiguous ``Wᵀ`` that ``EventLinear`` stores), one kernel whose blocks compact their own
row in shared memory and gather; from 128 rows (from 16 with other weights), one kernel
writes each row's event list into a fixed-capacity buffer and a second gathers weight
rows per row. Either way the forward has no host synchronisation
and can be captured in a CUDA graph; the backward is two cuBLAS products. Exact counts (and the
NaN check) cost one device->host read; ``scan_linear(..., exact=False)`` skips it. The
op counters of ``EventLinear`` read the kernel's own on-device tally instead
(``layers/dispatch.py``).
"""

from __future__ import annotations

import math
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..errors import InputValueError
from . import registry
from .cuda_env import CudaEnv
from .event_autograd import EventOp, apply_event_op

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

    The CPU kernels run float32, the CUDA kernels float32 and bfloat16; other dtypes,
    ``NEUROSPARSE_KERNELS=torch`` and devices without a kernel take the reference. The
    registry decides (:func:`registry.use_kernel`), so under ``NEUROSPARSE_KERNELS=numba``
    an uncovered dtype raises, and in ``auto`` mode it is warned about and recorded.
    """
    dev = kernel_device(x)
    bf16_ok = dev == "cuda" and op == OP
    why = None
    if x.dtype != torch.float32 and not (bf16_ok and x.dtype == torch.bfloat16):
        takes = "float32 and bfloat16" if bf16_ok else "float32"
        why = f"the kernels take {takes} input, not {x.dtype}"
    return dev if registry.use_kernel(op, dev, why) else "torch"


@dataclass
class LinearScan:
    """What the count pass found in an input ``x[M, K]``.

    ``nnz``/``unit`` are Python ints (exact counts), or None when the scan did not count
    (a CUDA scan with ``exact=False``: no host synchronisation); :attr:`exact` says which.
    On CUDA the scan also holds the finished index (building it is the count pass there).
    """

    rows: int
    n_in: int
    nnz: int | None
    unit: int | None
    backend: str
    counts: Any = None
    index: Any = None

    @property
    def exact(self) -> bool:
        """Whether ``nnz``/``unit`` were counted (False: a CUDA scan with ``exact=False``)."""
        return self.nnz is not None

    def _counted(self, what: str) -> int:
        if self.nnz is None or self.unit is None:
            raise RuntimeError(
                f"the scan's {what} is unknown: it was taken with exact=False (no count on "
                "the GPU); call scan_linear(x, exact=True) to count"
            )
        return self.nnz if what == "rate" else self.nnz - self.unit

    @property
    def rate(self) -> float:
        return self._counted("rate") / max(1, self.rows * self.n_in)

    @property
    def graded(self) -> int:
        return self._counted("graded count")


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
    nnz: int | None = None  # when counted on the host
    tally: Any = None  # CUDA: int64 [3] device counts the kernel adds to (events, ±1, NaN)
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

    On CUDA ``exact=False`` skips counting (no host synchronisation: ``nnz``/``unit``
    are None, ``scan.exact`` is False, and NaN/inf is not checked; a NaN then propagates
    to the output rows, as in ``nn.Linear``). Elsewhere the flag has no effect.
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
        index = cuda_index(x2d)
        if not exact:
            return LinearScan(m, k, None, None, bk, index=index)
        nnz, unit = _cuda_exact(x2d, name)
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


# -- the weight as the kernels read it (no cached copies) -----------------------------
def weight_t(weight: torch.Tensor) -> torch.Tensor:
    """``Wᵀ [in, out]`` of an nn.Linear-layout weight, contiguous.

    A view when the weight is stored transposed (``EventLinear`` allocates it that way),
    otherwise a fresh copy made for this call. There is deliberately no cache: a cached
    copy keyed on the tensor's version misses writes through ``weight.data`` (pruning,
    rewiring and loading code does those), and nothing cheap detects them.
    """
    wt = weight.detach().t()
    return wt if wt.is_contiguous() else wt.contiguous()


# -- the three implementations ---------------------------------------------------------
# Outputs of the CPU event kernels come from a small per-thread pool. Fresh memory must
# be faulted in and zeroed by the OS before the kernel writes it: 9 ms of a 72 ms call
# (3200 x 4096 output, 52 MB, 2-core VM, 21 interleaved calls: 71.7 vs 62.3 ms). A pooled
# array is handed out again only when nothing uses it: every tensor made from it (views
# included) holds a reference to it through its storage, so its reference count says
# when the last one is gone. The pool keeps at most OUT_POOL arrays a thread, each at
# most OUT_POOL_MAX_BYTES.
OUT_POOL = 2
OUT_POOL_MIN_BYTES = 1 << 20
OUT_POOL_MAX_BYTES = 128 << 20
_OUT = threading.local()


def _refs(pool: list, i: int) -> int:
    return sys.getrefcount(pool[i])


# what _refs reads for an array only the pool holds, measured the same way rather than
# assumed (interpreters differ in the temporary references they count)
_FREE_REFS = _refs([np.empty(0, np.float32)], 0)


def empty_cpu(shape: tuple[int, ...]) -> torch.Tensor:
    """An uninitialised float32 CPU tensor, from this thread's output pool or NumPy.

    NumPy asks the kernel for transparent huge pages on large allocations; a fresh
    multi-MB torch.empty is faulted in 4 KiB at a time, which on the 2-core VM cost more
    than the event kernel itself (33 MB: ~18 ms of page faults vs ~2 ms of work).
    """
    n = math.prod(shape)
    if not OUT_POOL_MIN_BYTES <= 4 * n <= OUT_POOL_MAX_BYTES:
        return torch.from_numpy(np.empty(shape, np.float32))
    pool = getattr(_OUT, "arrays", None)
    if pool is None:
        pool = _OUT.arrays = []
    for i in range(len(pool)):
        # a live tensor on the array adds a reference (through the view handed out)
        if pool[i].size == n and _refs(pool, i) == _FREE_REFS:
            arr = pool.pop(i)
            pool.append(arr)  # most recently used last
            return torch.from_numpy(arr.reshape(shape))
    arr = np.empty(n, np.float32)
    pool.append(arr)
    if len(pool) > OUT_POOL:
        pool.pop(0)  # a tensor still on it keeps it alive; the pool only lets go
    return torch.from_numpy(arr.reshape(shape))


# The tiled copies (Wᵀ for a forward, the output gradient for a weight gradient) live for
# one kernel call. Each thread reuses one scratch buffer for them instead of a fresh
# multi-MB allocation per call (page faults and zeroing by the kernel: ~2 ms per 64 MB on
# the 2-core VM). It holds no state across calls -- every call overwrites what it reads
# -- so nothing can go stale; copies larger than the cap are allocated per call, so a
# thread keeps at most this much.
SCRATCH_CAP_BYTES = 64 << 20
_SCRATCH = threading.local()


def scratch_f32(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised float32 array of ``shape`` for use within one call: a view of
    this thread's scratch buffer (grown on demand up to :data:`SCRATCH_CAP_BYTES`), or a
    fresh array when larger."""
    n = math.prod(shape)
    if 4 * n > SCRATCH_CAP_BYTES:
        return np.empty(shape, np.float32)
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < n:
        buf = _SCRATCH.buf = np.empty(n, np.float32)
    return buf[:n].reshape(shape)


def _packed(src: np.ndarray) -> np.ndarray:
    from ..kernels import event_linear as kl

    return kl.pack_rows(src, scratch_f32(kl.packed_shape(*src.shape)))


# Gathers per weight row above which the CPU gathers read a column-tiled copy of Wᵀ made
# for the call instead of Wᵀ in place. In place, one tile's row segments lie a whole
# row apart (16 KiB at 4096 outputs): they share a few cache sets and need a TLB entry
# each, so re-gathering a row misses; the copy costs two passes over the weight. 2-core
# EPYC VM, 4096² weight, CPU time: in place wins at 2.5 gathers per row (256 rows, 1 %),
# ties near 10 (3200 rows, 0.3 %), loses 2x at 32 (3200 rows, 1 %).
PACK_REUSE = 8


def cpu_source(weight: torch.Tensor, bias: torch.Tensor | None, events: int = 0):
    """``(src, tw, bias)`` for the CPU gathers: ``Wᵀ`` as ``[S, in, W]`` (read in place as
    ``[1, in, out]``, or tiled for this call when ``events >= PACK_REUSE * in``), the
    columns per work item, and a float32 bias (zeros for none)."""
    from ..kernels import event_linear as kl

    wt = weight_t(weight).numpy()
    n_in, n_out = wt.shape
    b = np.zeros(n_out, np.float32) if bias is None else bias.detach().numpy()
    if events >= PACK_REUSE * n_in:
        tiles = _packed(wt)
        return tiles, tiles.shape[2], b
    return wt.reshape(1, n_in, n_out), kl.tile_width(n_in, n_out), b


def _forward_cpu(index: LinearIndex, weight: torch.Tensor, bias: torch.Tensor | None):
    from ..kernels import event_linear as kl

    src, tw, b = cpu_source(weight, bias, int(index.arrays[0][-1]))
    y = empty_cpu((index.rows, weight.shape[0]))
    kl.gather(*index.arrays, src, tw, b, y.numpy(), False)
    return y


def _grad_weight_cpu(index: LinearIndex, gy: torch.Tensor, n_out: int) -> torch.Tensor:
    from ..kernels import event_linear as kl

    colptr, rows, vals = index.transposed()
    tiles = _packed(gy.numpy())
    gw = empty_cpu((n_out, index.n_in))
    kl.gather(colptr, rows, vals, tiles, tiles.shape[2], kl.padded_bias(None, tiles),
              gw.numpy(), True)  # fmt: skip
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


_TALLY_SCRATCH: dict[str, torch.Tensor] = {}  # per CUDA device: counts nobody reads


def scratch_tally(device: torch.device) -> torch.Tensor:
    """An int64 ``[3]`` device buffer for the kernel's statistics when no counter reads
    them (they are added atomically and never read back)."""
    t = _TALLY_SCRATCH.get(str(device))
    if t is None:
        t = _TALLY_SCRATCH[str(device)] = torch.zeros(3, dtype=torch.int64, device=device)
    return t


def cuda_index(x2d: torch.Tensor, tally: torch.Tensor | None = None) -> LinearIndex:
    """The "index" of a CUDA input: the input itself (the kernels compact it on the
    device, ``kernels/event_linear_cuda.py``), and the device ``tally`` its statistics
    are added to (None: a scratch tally nobody reads)."""
    m, k = x2d.shape
    return LinearIndex("cuda", x2d.device, m, k, (x2d.detach(),), tally=tally)


def _cuda_exact(x2d: torch.Tensor, name: str) -> tuple[int, int]:
    """``(events, ±1 events)`` of a CUDA input, read to the host (one synchronisation);
    raises on NaN/inf."""
    xd = x2d.detach()
    a = xd.abs()
    counts = torch.stack([torch.count_nonzero(xd), torch.count_nonzero(a == 1),
                          torch.count_nonzero(~torch.isfinite(xd))]).tolist()  # fmt: skip
    if counts[2]:
        _raise_bad(name, -1, x2d.shape[0])
    return counts[0], counts[1]


_KC: list = []  # kernels.event_linear_cuda, imported on first use (numba-cuda loads slowly)


def _cuda_kernels():
    if not _KC:
        from ..kernels import event_linear_cuda

        _KC.append(event_linear_cuda)
    return _KC[0]


def _as_words(wt: torch.Tensor, per_word: int) -> torch.Tensor | None:
    """``wt [K, N]`` read as int64 words of ``per_word`` columns (the wide gather of
    ``kernels/event_linear_cuda.py``), or None where its layout does not allow it."""
    k, n = wt.shape
    # strides checked as such: is_contiguous() ignores the stride of a size-1 axis, which
    # view() does not (a [1, N] view of an [N, 1] weight)
    if (n % per_word or k == 0 or wt.stride() != (n, 1) or wt.storage_offset() % per_word
            or wt.data_ptr() % 8):  # fmt: skip
        return None
    return wt.view(torch.int64)


class CudaLinearLaunch:
    """The forward kernels' arguments for one weight, bias, tally, row count and dtype:
    everything of a launch but the input and output. ``launch(x)`` allocates the output
    (and the event lists where the path reads them) and starts the kernels.

    Made per call by :func:`_forward_cuda`; an ``EventLinear`` keeps one across eager
    calls that match it (``layers/event_linear_plan.py``). The weight is read in place
    through its strides (no copy that could go stale), so a write into it is seen by the
    next launch; a weight re-pointed by ``.data =`` needs a new object."""

    def __init__(self, device: torch.device, rows: int, weight: torch.Tensor,
                 bias: torch.Tensor | None, tally: torch.Tensor | None,
                 dtype: torch.dtype) -> None:  # fmt: skip
        kc = self.kc = _cuda_kernels()
        env = self.env = CudaEnv(device)
        self.device, self.rows, self.n_out = device, rows, weight.shape[0]
        self.dtype = dtype
        self.bf16 = bf16 = dtype == torch.bfloat16
        self.tally = env.arg(tally if tally is not None else scratch_tally(device))
        wt = weight.detach().t()
        b = None if bias is None else bias.detach()
        if bf16:
            wt = wt.view(torch.int16)
            b = None if b is None else b.view(torch.int16)
        self.wt, self.bias = env.arg(wt), None if b is None else env.arg(b)
        self.path, self.wide = "tile", None
        if kc.wants_lists(rows):
            words = _as_words(wt, kc.columns_per_word(bf16))
            self.path = kc.gather_path(rows, words is not None)
            if self.path in ("fused", "lists wide"):
                self.wide = env.arg(words)

    def launch(self, x: torch.Tensor) -> torch.Tensor:
        """``x [rows, K]`` (contiguous, the dtype given) -> a new ``[rows, n_out]`` output."""
        env = self.env
        y = torch.empty((self.rows, self.n_out), dtype=self.dtype, device=self.device)
        x_k, y_k = (x.view(torch.int16), y.view(torch.int16)) if self.bf16 else (x, y)
        lists = None
        if self.path.startswith("lists"):
            # one allocation for the event lists: idx and val are its two [M, K] planes
            m, k = x.shape
            ws = torch.empty((2, m, k), dtype=torch.int32, device=self.device)
            cnt = torch.empty(m, dtype=torch.int32, device=self.device)
            lists = (env.arg(ws[0]), env.arg(ws[1].view(torch.float32)), env.arg(cnt))
        self.kc.launch_gather(env.arg(x_k), self.wt, self.bias, env.arg(y_k), self.tally,
                              env.stream, self.bf16, lists, self.wide)  # fmt: skip
        return y


def _forward_cuda(index: LinearIndex, weight: torch.Tensor, bias: torch.Tensor | None):
    (x,) = index.arrays
    return CudaLinearLaunch(index.device, index.rows, weight, bias, index.tally,
                            x.dtype).launch(x)  # fmt: skip


def count_cuda(x2d: torch.Tensor, tally: torch.Tensor) -> None:
    """Add ``x2d``'s events, ±1 events and NaN/inf to a device ``tally`` (no sync)."""
    from ..kernels import event_linear_cuda as kc

    env = CudaEnv(x2d.device)
    x = x2d.detach()
    bf16 = x.dtype == torch.bfloat16
    kc.launch_count(env.arg(x.view(torch.int16) if bf16 else x), env.arg(tally), env.stream,
                    bf16)  # fmt: skip


def _grad_weight_cuda(index: LinearIndex, gy: torch.Tensor, n_out: int) -> torch.Tensor:
    # cuBLAS: gWᵀ = xᵀ gy over the dense binary input. An event version needs column
    # lists of the events (a transpose of the compaction); at the batch sizes where a
    # weight gradient is computed the GEMM is faster than building them.
    (x,) = index.arrays
    return gy.t() @ x


def _forward(x2d, weight, bias, index):
    run = {"cpu": _forward_cpu, "cuda": _forward_cuda, "torch": reference_forward}
    return run[index.backend](index, weight, bias)


def _grad_input(gy, x2d, weight, index):
    return gy @ weight  # dense: the surrogate gradient upstream needs every input


def _grad_weight(gy, x2d, weight, index):
    run = {"cpu": _grad_weight_cpu, "cuda": _grad_weight_cuda, "torch": reference_grad_weight}
    return run[index.backend](index, gy, weight.shape[0])


EVENT_LINEAR = EventOp(_forward, _grad_input, _grad_weight)


def event_linear_apply(
    x2d: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, index: LinearIndex
) -> torch.Tensor:
    """Autograd op ``x2d [M, K] -> [M, N]`` over a prebuilt :class:`LinearIndex`.

    ``x2d`` is passed only so autograd can route its gradient; its values are those in
    ``index``. Arguments are assumed checked (see ``neurosparse.layers.event_linear``).
    """
    return apply_event_op(EVENT_LINEAR, x2d, weight, bias, index)
