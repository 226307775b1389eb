"""The ``sparse_event_linear`` op: ELL weights (constant fan-in) driven by sparse events.

The op of :class:`neurosparse.layers.SparseEventLinear`: its registration, the per-input
transpose of ``indices`` (built once per version of ``indices`` and kept in the
module's cache dict), the CPU event op over ``kernels/sparse_event_linear.py``,
the CUDA path of ``ops/sparse_event_linear.py`` and the pure-torch reference (the dense
matrix scattered from the ELL storage, then a matmul), chosen by the registry.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .._checks import check_finite, check_float_tensor, check_rank, check_same_device
from ..errors import InputValueError, ShapeError
from . import registry
from . import sparse_event_linear as fast
from .event_autograd import EventOp, apply_event_op

OP = "sparse_event_linear"
registry.register(OP, "cpu", "cuda", covers="float32")

# Above this input rate the kernel's forward walks the ELL rows (every synapse, in order)
# instead of the events' fan-out lists (random writes). Crossover measured on the 2-core
# dev VM, 4096 -> 4096 at 10% density: ~0.1-0.15 at batch 1 and 16.
GATHER_RATE = 0.1


def dense_weight(indices: torch.Tensor, values: torch.Tensor, in_features: int) -> torch.Tensor:
    """The ``[out, in]`` matrix the ELL storage stands for (differentiable in ``values``)."""
    w = torch.zeros(values.shape[0], in_features, dtype=values.dtype, device=values.device)
    return w.scatter_add(1, indices.long(), values)


def reference_sparse_event_linear(
    x2d: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None,
    in_features: int,
) -> torch.Tensor:
    """Pure-torch reference: ``F.linear`` with the dense matrix of the ELL storage."""
    return F.linear(x2d, dense_weight(indices, values, in_features), bias)


def ell_index(indices: torch.Tensor, in_features: int, cache: dict | None = None) -> tuple:
    """Checked per-input transpose ``(ptr, t_out, t_slot)`` of ``indices`` (NumPy).

    With a ``cache`` dict, it is rebuilt only when ``indices`` changes (storage or
    version counter: every in-place torch edit, e.g. rewiring, bumps it; writes through
    ``.numpy()`` or ``.data`` do not -- clear the cache after those).
    """
    key = (indices.data_ptr(), indices._version, tuple(indices.shape))
    if cache is not None and cache.get("key") == key:
        return cache["index"]
    if indices.dtype != torch.int32 or indices.dim() != 2:
        raise ShapeError(f"indices must be int32 [out, k], got {indices.dtype} "
                         f"{tuple(indices.shape)}")  # fmt: skip
    # the kernels do not bounds-check: an out-of-range index would corrupt memory
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= in_features):
        raise InputValueError(
            f"indices must lie in [0, {in_features}), got values in "
            f"[{int(indices.min())}, {int(indices.max())}]"
        )
    from ..kernels import sparse_event_linear as k

    index = k.ell_transpose(indices.detach().cpu().contiguous().numpy(), in_features)
    if cache is not None:
        cache["key"], cache["index"] = key, index
    return index


# the CPU kernels as an event op (ops/event_autograd.py); its index is
# ``(indices, per-input transpose, cache)``
def _cpu_forward(x2d, values, bias, ix):
    indices, transpose, cache = ix
    return fast.cpu_forward(x2d, values, bias, indices, transpose, cache, GATHER_RATE)


def _cpu_grad_input(gy, x2d, values, ix):
    from ..kernels import sparse_event_linear as k

    gx = np.empty(x2d.shape, np.float32)
    k.grad_input(gy.numpy(), ix[0].numpy(), values.detach().numpy(), gx)
    return torch.from_numpy(gx)


def _cpu_grad_values(gy, x2d, values, ix):
    from ..kernels import sparse_event_linear as k

    gv = np.empty(values.shape, np.float32)
    k.grad_values(x2d.detach().numpy(), gy.numpy(), *ix[1], gv)
    return torch.from_numpy(gv)


ELL_LINEAR_CPU = EventOp(_cpu_forward, _cpu_grad_input, _cpu_grad_values, saves_input=True)


def _use_kernel(x2d: torch.Tensor, values: torch.Tensor, bias: torch.Tensor | None) -> bool:
    dtypes = {t.dtype for t in (x2d, values, bias) if t is not None}
    why = None if dtypes == {torch.float32} else (
        f"the kernels take float32 input, weights and bias, not {sorted(map(str, dtypes))}")
    return registry.use_kernel(OP, x2d.device.type, why)


def sparse_event_linear(
    x: torch.Tensor,
    indices: torch.Tensor,
    values: torch.Tensor,
    bias: torch.Tensor | None,
    in_features: int,
    cache: dict | None = None,
) -> torch.Tensor:
    """Functional form: ``x [..., in] -> [..., out]`` with ELL weights ``indices/values``.

    Parameters
    ----------
    x : torch.Tensor
        ``[T, B, in]`` or ``[B, in]`` events (binary or graded; zeros are skipped).
    indices : torch.Tensor
        int32 ``[out, k]``, input index of each synapse.
    values : torch.Tensor
        ``[out, k]`` weights (gradients flow to these only).
    bias : torch.Tensor, optional
        ``[out]``.
    in_features : int
    cache : dict, optional
        Keeps the per-input transpose of ``indices`` between calls (see
        :func:`ell_index`), and the derived copies of the fast paths
        (``neurosparse/ops/sparse_event_linear.py``: uint16 indices, weights in
        per-input order, device copies); without it the transpose is rebuilt every call.

    Notes
    -----
    float32 on the CPU runs the Numba kernels, float32 on CUDA the numba-cuda kernels
    (``kernels/sparse_event_linear_cuda.py``); anything else the torch reference.

    Returns
    -------
    torch.Tensor
        Equal (to float32 rounding) to ``F.linear(x, dense_weight(indices, values), bias)``.
    """
    x = check_float_tensor("input", x)
    check_rank("input", x, (2, 3), "[T, B, in_features] or [B, in_features]")
    if x.shape[-1] != in_features:
        raise ShapeError(
            f"input has {x.shape[-1]} features (shape {tuple(x.shape)}) but the layer "
            f"expects in_features={in_features}"
        )
    check_same_device("input", x, values, "the weights")
    check_same_device("indices", indices, values, "the weights")
    check_finite("input", x)
    if indices.shape != values.shape:
        raise ShapeError(f"indices {tuple(indices.shape)} and values {tuple(values.shape)} "
                         "must have one shape [out, k]")  # fmt: skip
    index = ell_index(indices, in_features, cache)
    x2d = x.reshape(-1, in_features).contiguous()
    if _use_kernel(x2d, values, bias):
        indices = indices.contiguous()
        if x2d.device.type == "cuda":
            y2d = fast.sparse_event_linear_cuda(x2d, indices, values, bias, index, cache)
        else:
            y2d = apply_event_op(ELL_LINEAR_CPU, x2d, values, bias, (indices, index, cache))
    else:
        y2d = reference_sparse_event_linear(x2d, indices, values, bias, in_features)
    return y2d.reshape(*x.shape[:-1], values.shape[0])
