"""Event Conv2d as an autograd op: each input event scatters its kernel footprint.

Same three steps as the event Linear (``ops/event_linear.py``):

1. :func:`scan_conv2d` -- count pass over ``x[N, C, H, W]``: events, NaN/inf, and the
   exact synaptic operations (an event reaches ``O/groups × ny(y) × nx(x)`` outputs,
   fewer at the borders and with strides).
2. :func:`index_conv2d` -- compressed rows of the events, one row per input image row.
3. :func:`event_conv2d_apply` -- the autograd Function. Forward: output rows gather the
   footprints of the events above them (``kernels/event_conv2d.py``). Backward:
   ``grad_W`` sums ``v · grad_y`` over the footprint of each *event* only; ``grad_x`` is
   the dense transposed convolution of ``grad_y`` (what the surrogate chain needs);
   ``grad_b = Σ grad_y``.

Implementations as for the Linear: Numba CPU, Numba CUDA (``kernels/
event_conv2d_cuda.py``) on float32, and a pure-torch reference (per-tap ``index_add_``
scatters) for other dtypes and ``NEUROSPARSE_KERNELS=torch``. Dilation is 1 and padding
is zeros (``padding_mode="zeros"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import torch

from ..errors import InputValueError
from . import event_linear as _lin
from . import registry
from .event_autograd import EventOp, apply_event_op
from .event_linear import backend, cuda_read, empty_cpu

OP = "event_conv2d"
registry.register(OP, "cpu", "cuda")

_REF_CHUNK_ELEMS = 1 << 24


@dataclass(frozen=True)
class ConvGeometry:
    """Sizes of one event convolution (dilation 1, zero padding)."""

    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    groups: int

    @property
    def ho(self) -> int:
        return (self.h + 2 * self.ph - self.kh) // self.sh + 1

    @property
    def wo(self) -> int:
        return (self.w + 2 * self.pw - self.kw) // self.sw + 1

    @property
    def og(self) -> int:
        return self.c_out // self.groups

    @property
    def cg(self) -> int:
        return self.c_in // self.groups

    @property
    def dense_macs(self) -> int:
        """Every tap of every output, padding included (what a dense conv executes)."""
        return self.n * self.c_out * self.ho * self.wo * self.cg * self.kh * self.kw

    def footprints(self) -> tuple[np.ndarray, np.ndarray]:
        """Outputs reached along y (``[H]``) and x (``[W]``) by an input pixel."""
        from ..kernels.event_conv2d import footprint_counts

        return (footprint_counts(self.h, self.ph, self.kh, self.sh, self.ho),
                footprint_counts(self.w, self.pw, self.kw, self.sw, self.wo))  # fmt: skip


@dataclass
class ConvScan:
    """What the count pass found: events and exact synaptic ops (split ±1 / graded)."""

    geom: ConvGeometry
    nnz: int | None  # None (with the ops): a CUDA scan not read back, see ``exact``
    unit_ops: int | None
    graded_ops: int | None
    backend: str
    counts: Any = None
    index: Any = None
    device_counts: Any = None  # CUDA, not read back: (cnt [rows], rowstats [rows, 3])

    @property
    def rate(self) -> float:
        if self.nnz is None:
            raise RuntimeError("the scan's rate is unknown: it was not read back from the "
                               "GPU; call scan.read_back() first")  # fmt: skip
        g = self.geom
        return self.nnz / max(1, g.n * g.c_in * g.h * g.w)

    @property
    def exact(self) -> bool:
        """Whether the counts are host ints (False: a CUDA scan not read back)."""
        return self.nnz is not None

    def read_back(self, name: str = "input") -> ConvScan:
        """The exact scan (one synchronisation on CUDA; raises on NaN/inf)."""
        if self.exact:
            return self
        nnz, unit, graded, bad = cuda_read(*self.device_counts)
        if bad:
            _raise_bad(name)
        og = self.geom.og
        return ConvScan(self.geom, nnz, unit * og, graded * og, self.backend,
                        index=self.index)  # fmt: skip

    def op_counts(self) -> tuple:
        """``(±1 synaptic ops, graded ops, events)``: ints, or int64 device tensors
        summed on the GPU when the scan was not read back (no synchronisation)."""
        if self.exact:
            return self.unit_ops, self.graded_ops, self.nnz
        cnt, rowstats = (torch.as_tensor(a, device=self.index.device)
                         for a in self.device_counts)  # fmt: skip
        s = rowstats[:, :2].sum(0) * self.geom.og
        return s[0], s[1], cnt.sum()


@dataclass
class ConvIndex:
    """Events as compressed rows over input image rows ``n * H + y`` (column ``c * W + x``).

    ``cpu``: ``rowptr, idx, val`` NumPy arrays; ``cuda``: ``boff, idx, val`` device arrays
    in ``(x, c)`` order plus the input (the weight gradient builds its own per-channel
    index from it); ``torch``: ``n, c, y, x, v`` of ``x.nonzero()``.
    """

    backend: str
    device: torch.device
    geom: ConvGeometry
    arrays: tuple


def _raise_bad(name: str) -> None:
    raise InputValueError(f"{name} contains NaN or infinite values; spikes must be finite")


def scan_conv2d(
    x: torch.Tensor, geom: ConvGeometry, name: str = "input", exact: bool = True
) -> ConvScan:
    """Count pass: events, NaN/inf (raises), exact synaptic operations.

    ``exact=False`` on CUDA skips reading the counts to the host (see ``scan_linear``).
    """
    bk = backend(x, OP)
    fy, fx = geom.footprints()
    if bk == "cpu":
        from ..kernels import event_index as ei

        counts, wunit, wgraded, bad = ei.scan_rows(x.detach().numpy(), fx)
        if bad >= 0:
            _raise_bad(name)
        rows_fy = np.tile(fy.astype(np.int64), geom.n)
        unit = int(rows_fy @ wunit) * geom.og
        graded = int(rows_fy @ wgraded) * geom.og
        return ConvScan(geom, int(counts.sum()), unit, graded, bk, counts=counts)
    if bk == "cuda":
        index, (cnt, rowstats) = _cuda_scan(x, geom, fy, fx)
        scan = ConvScan(geom, None, None, None, bk, index=index, device_counts=(cnt, rowstats))
        return scan if not exact else scan.read_back(name)
    xd = x.detach()
    if not bool(torch.isfinite(xd).all()):
        _raise_bad(name)
    fan = torch.from_numpy(np.outer(fy, fx).astype(np.int64)).to(x.device)
    one = xd.abs() == 1
    unit = int(((one.sum((0, 1))) * fan).sum()) * geom.og
    graded = int((((xd != 0) & ~one).sum((0, 1)) * fan).sum()) * geom.og
    return ConvScan(geom, int(torch.count_nonzero(xd)), unit, graded, bk)


def index_conv2d(x: torch.Tensor, scan: ConvScan) -> ConvIndex:
    """Compressed rows of the events of ``x`` (after :func:`scan_conv2d`)."""
    if scan.index is not None:
        return scan.index
    if scan.backend == "cpu":
        from ..kernels import event_index as ei

        arrays = ei.csr_from_counts(x.detach().numpy(), scan.counts)
        return ConvIndex("cpu", x.device, scan.geom, arrays)
    xd = x.detach()
    n, c, y, xx = xd.nonzero(as_tuple=True)
    return ConvIndex("torch", x.device, scan.geom, (n, c, y, xx, xd[n, c, y, xx]))


# -- CPU kernels -------------------------------------------------------------------------
def _n_chunks(items: int, per_thread: int) -> int:
    return max(1, min(items, numba.get_num_threads() * per_thread))


def _forward_cpu(index: ConvIndex, weight: torch.Tensor, bias: torch.Tensor | None):
    from ..kernels import event_conv2d as kc

    g = index.geom
    # packed per call (a conv weight is small): a cached copy would miss ``.data`` writes
    wp = kc.pack_weight(weight.detach().numpy(), g.groups)
    b = np.zeros(g.c_out, np.float32) if bias is None else bias.detach().numpy()
    out = empty_cpu((g.n, g.c_out, g.ho, g.wo))
    kc.forward(*index.arrays, wp, b, out.numpy(), g.h, g.w, g.sh, g.sw, g.ph, g.pw,
               _n_chunks(g.n * g.ho, 8))  # fmt: skip
    return out


def _grad_weight_cpu(index: ConvIndex, gy: torch.Tensor) -> torch.Tensor:
    from ..kernels import event_conv2d as kc

    g = index.geom
    g_cl = gy.permute(0, 2, 3, 1).contiguous().numpy()
    partial = np.zeros((_n_chunks(g.n * g.h, 1), g.c_in, g.kh, g.kw, g.og), np.float32)
    kc.conv_grad_weight(*index.arrays, g_cl, g.h, g.w, g.sh, g.sw, g.ph, g.pw, partial)
    return torch.from_numpy(kc.unpack_weight(partial.sum(0), g.groups))


# -- pure-torch reference ---------------------------------------------------------------
def _tap_events(index: ConvIndex, ky: int, kx: int):
    """Events that tap ``(ky, kx)`` maps inside the output, with their output pixel."""
    g = index.geom
    n, c, y, x, v = index.arrays
    ty = y + g.ph - ky
    tx = x + g.pw - kx
    ok = (ty >= 0) & (tx >= 0) & (ty % g.sh == 0) & (tx % g.sw == 0)
    ok &= (ty // g.sh < g.ho) & (tx // g.sw < g.wo)
    return n[ok], c[ok], ty[ok] // g.sh, tx[ok] // g.sw, v[ok]


def reference_forward(
    index: ConvIndex, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """Scatter in plain torch: per tap, every event adds ``v · W[group, c', ky, kx]``."""
    g = index.geom
    out = torch.zeros(g.n * g.c_out * g.ho * g.wo, dtype=weight.dtype, device=weight.device)
    j = torch.arange(g.og, device=weight.device)
    for ky in range(g.kh):
        for kx in range(g.kw):
            n, c, oy, ox, v = _tap_events(index, ky, kx)
            o = (c // g.cg)[:, None] * g.og + j  # [E, Og] output channels of each event
            flat = ((n[:, None] * g.c_out + o) * g.ho + oy[:, None]) * g.wo + ox[:, None]
            contrib = v[:, None] * weight[o, (c % g.cg)[:, None], ky, kx]
            out.index_add_(0, flat.reshape(-1), contrib.reshape(-1))
    out = out.view(g.n, g.c_out, g.ho, g.wo)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def reference_grad_weight(index: ConvIndex, gy: torch.Tensor) -> torch.Tensor:
    """``gW[o, c', ky, kx] += v · gy[n, o, oy, ox]`` over every event's footprint."""
    g = index.geom
    gw = torch.zeros(g.c_out, g.cg, g.kh, g.kw, dtype=gy.dtype, device=gy.device)
    j = torch.arange(g.og, device=gy.device)
    for ky in range(g.kh):
        for kx in range(g.kw):
            n, c, oy, ox, v = _tap_events(index, ky, kx)
            o = (c // g.cg)[:, None] * g.og + j
            grads = gy[n[:, None], o, oy[:, None], ox[:, None]]  # [E, Og]
            tap = torch.zeros(g.c_out, g.cg, dtype=gy.dtype, device=gy.device)
            tap.index_put_((o, (c % g.cg)[:, None].expand_as(o)), v[:, None] * grads,
                           accumulate=True)  # fmt: skip
            gw[:, :, ky, kx] = tap
    return gw


# -- CUDA kernels --------------------------------------------------------------------------
_FOOTPRINTS: dict[tuple, list[torch.Tensor]] = {}


def _cuda_scan(x: torch.Tensor, geom: ConvGeometry, fy: np.ndarray, fx: np.ndarray):
    from ..kernels import event_conv2d_cuda as kc

    env = _lin.CudaEnv(x.device)
    key = (geom.h, geom.w, geom.kh, geom.kw, geom.sh, geom.sw, geom.ph, geom.pw, str(x.device))
    fans = _FOOTPRINTS.get(key)
    if fans is None:  # a host->device copy blocks the host: once per geometry
        fans = _FOOTPRINTS[key] = [torch.from_numpy(f.astype(np.int64)).to(x.device)
                                   for f in (fy, fx)]  # fmt: skip
    boff, idx, val, cnt, rowstats = kc.conv_index(env.view(x), *map(env.view, fans), env.alloc,
                                                  env.stream)  # fmt: skip
    return ConvIndex("cuda", x.device, geom, (boff, idx, val, x.detach())), (cnt, rowstats)


def _forward_cuda(index: ConvIndex, weight: torch.Tensor, bias: torch.Tensor | None):
    from ..kernels import event_conv2d_cuda as kc

    g = index.geom
    env = _lin.CudaEnv(index.device)
    out, ov = env.tensor((g.n, g.c_out, g.ho, g.wo))
    kc.launch_conv_forward(index.arrays[:3], env.view(weight),
                           None if bias is None else env.view(bias), ov, g.c_in, g.h, g.w,
                           g.sh, g.sw, g.ph, g.pw, env.stream)  # fmt: skip
    return out


def _grad_weight_cuda(index: ConvIndex, gy: torch.Tensor) -> torch.Tensor:
    from ..kernels import event_conv2d_cuda as kc

    g = index.geom
    env = _lin.CudaEnv(index.device)
    partial = kc.conv_grad_weight_partial(env.view(index.arrays[3]), env.view(gy), g.cg,
                                          g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, env.alloc,
                                          env.stream)  # fmt: skip
    return torch.as_tensor(partial, device=index.device).sum(0)


def _forward(x, weight, bias, index):
    run = {"cpu": _forward_cpu, "cuda": _forward_cuda, "torch": reference_forward}
    return run[index.backend](index, weight, bias)


def _grad_input(gy, x, weight, index):
    g = index.geom
    return torch.nn.grad.conv2d_input((g.n, g.c_in, g.h, g.w), weight, gy, (g.sh, g.sw),
                                      (g.ph, g.pw), 1, g.groups)  # fmt: skip


def _grad_weight(gy, x, weight, index):
    run = {"cpu": _grad_weight_cpu, "cuda": _grad_weight_cuda, "torch": reference_grad_weight}
    return run[index.backend](index, gy)


EVENT_CONV2D = EventOp(_forward, _grad_input, _grad_weight, bias_dims=(0, 2, 3))


def event_conv2d_apply(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, index: ConvIndex
) -> torch.Tensor:
    """Autograd op ``x [N, C, H, W] -> [N, O, Ho, Wo]`` over a prebuilt :class:`ConvIndex`."""
    return apply_event_op(EVENT_CONV2D, x, weight, bias, index)
