"""Exact fan-out maps: how many non-zero synapses each input element drives.

For any layer that is linear in its input, the effective synaptic operations of an
input ``x`` are ``Σ_out Σ_w bin(W)·bin(x) = <bin(x), fanout>`` where
``fanout = ∂/∂z Σ layer_binW(z)`` (the adjoint applied to an all-ones output).
This is exact for strides, padding (border pixels drive fewer outputs), dilation,
groups and zero weights, and equals NeuroBench's binarised-layer count and
Sinabs' transposed-convolution fan-out map. Maps are cached per layer, input
shape and weight version, so a forward pass only pays a count and a dot product.

A map built from weights is kept for one meter at most (:func:`new_epoch`, called by
``Meter.__enter__``): the version counter does not move when weights are written
through ``weight.data`` (magnitude pruning often is) or by a fused optimizer step, and
a map kept across such a write counted the pruned synapses in every later report.
Within one meter, such writes are not seen (docs/energy.md).
"""

from __future__ import annotations

import weakref

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_AVG_POOL = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}

# layer -> {(kind, sample_shape, weight version/ptr): (map, is_uniform)}
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


_EPOCH = [0]  # bumped by every meter that starts: weight-derived maps are rebuilt


def new_epoch() -> None:
    """Make every weight-derived map stale (see the module docstring)."""
    _EPOCH[0] += 1


def _weight_key(w: torch.Tensor | None) -> tuple:
    if w is None:
        return ()
    return (_EPOCH[0], w.data_ptr(), w._version, tuple(w.shape))


def _cached(layer: nn.Module, key: tuple, build) -> tuple[torch.Tensor, bool]:
    per_layer = _CACHE.setdefault(layer, {})
    hit = per_layer.get(key)
    if hit is None:
        fan = build()
        uniform = bool(fan.numel() == 0 or fan.min() == fan.max())
        hit = (fan, uniform)
        if len(per_layer) >= 8:  # shapes/weights of one layer rarely change; keep memory flat
            per_layer.clear()
        per_layer[key] = hit
    return hit


def _adjoint_ones(fn, sample_shape: tuple[int, ...]) -> torch.Tensor:
    """Gradient of ``fn(z).sum()`` w.r.t. a zero input ``z`` of one sample (float64, CPU)."""
    z = torch.zeros((1, *sample_shape), dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        (g,) = torch.autograd.grad(fn(z).sum(), z)
    return g[0].detach()


def linear_fanout(weight: torch.Tensor, ones: bool = False) -> tuple[torch.Tensor, bool]:
    """Fan-out of each input feature of ``y = x Wᵀ``: non-zero weights per column.

    ``weight`` has shape [out, in]; returns ([in] float64 on CPU, uniform?).
    """
    if ones:
        fan = torch.full((weight.shape[1],), float(weight.shape[0]), dtype=torch.float64)
        return fan, True
    fan = _column_nonzeros(weight.detach()).to(torch.float64).cpu()
    return fan, bool(fan.numel() == 0 or fan.min() == fan.max())


def _column_nonzeros(w: torch.Tensor) -> torch.Tensor:
    """Non-zeros per column of ``w`` [out, in]: one row-major pass of
    ``kernels/weight_stats.py`` for contiguous fp32/fp64 CPU weights (20x faster than
    ``count_nonzero(dim=0)`` at 4096², see there; every meter rebuilds this map), torch
    elsewhere (on a GPU the count stays there) or under ``NEUROSPARSE_KERNELS=torch``."""
    from . import _tensors as tt

    if w.dim() == 2 and tt._kernel_takes(w):
        from ..kernels import weight_stats

        out = np.zeros(w.shape[1], dtype=np.int64)
        weight_stats.column_nonzeros(w.numpy(), out)
        return torch.from_numpy(out)
    return torch.count_nonzero(w, dim=0)


def module_linear_fanout(
    layer: nn.Module, weight: torch.Tensor, ones: bool = False
) -> tuple[torch.Tensor, bool]:
    """Cached :func:`linear_fanout` of one of ``layer``'s weight matrices."""
    key = ("linear", ones, _weight_key(weight), tuple(weight.shape))
    return _cached(layer, key, lambda: linear_fanout(weight, ones)[0])


def zero_weights(layer: nn.Module, weight: torch.Tensor) -> int:
    """Zero entries of one of ``layer``'s weights, cached like the fan-out maps (per
    meter, layer and weight version)."""
    w = weight.detach()
    if weight.is_inference():  # no version counter to key a cache on
        return w.numel() - int(torch.count_nonzero(w))
    nonzero, _ = _cached(layer, ("nonzero", _weight_key(weight)),
                         lambda: torch.count_nonzero(w).reshape(1).cpu())
    return w.numel() - int(nonzero)


def conv_fanout(
    layer: nn.modules.conv._ConvNd, sample_shape: tuple[int, ...], ones: bool = False
) -> tuple[torch.Tensor, bool]:
    """Fan-out map [C_in, *spatial] of a (transposed) convolution for one input sample."""
    w = layer.weight
    key = ("conv", ones, tuple(sample_shape), _weight_key(None if ones else w), tuple(w.shape))

    def build() -> torch.Tensor:
        wb = torch.ones(w.shape, dtype=torch.float64) if ones else (
            (w.detach() != 0).to(torch.float64).cpu())
        if isinstance(layer, nn.modules.conv._ConvTransposeNd):
            nd = len(sample_shape) - 1
            fn = _CONV_T[nd]

            def op(z):
                return fn(z, wb, None, layer.stride, layer.padding, layer.output_padding,
                          layer.groups, layer.dilation)
        else:
            def op(z):
                # _conv_forward applies non-zero padding modes (reflect, circular) too
                return layer._conv_forward(z, wb, None)
        return _adjoint_ones(op, sample_shape)

    return _cached(layer, key, build)


def pool_fanout(
    layer: nn.Module, sample_shape: tuple[int, ...]
) -> tuple[torch.Tensor, bool]:
    """Windows each input element falls into, for Max/Avg pooling (treated as sum-pooling)."""
    nd = len(sample_shape) - 1
    k, s, p = pool_geometry(layer, nd)
    ceil = bool(getattr(layer, "ceil_mode", False))
    key = ("pool", tuple(sample_shape), k, s, p, ceil)

    def build() -> torch.Tensor:
        def op(z):
            # a sum over the real input elements of each window: avg-pool's divisor
            # counts the clipped edge windows of ``ceil_mode`` (or the padding) apart,
            # so ``avg * area`` would count an element of a clipped window 2-4 times
            if nd == 1:  # avg_pool1d has no divisor_override
                return F.avg_pool2d(z.unsqueeze(-2), (1, *k), (1, *s), (0, *p), ceil,
                                    divisor_override=1)
            return _AVG_POOL[nd](z, k, s, p, ceil, divisor_override=1)

        return _adjoint_ones(op, sample_shape)

    return _cached(layer, key, build)


def adaptive_windows(n: int, o: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows along an axis of ``n`` inputs and ``o`` outputs:
    output ``i`` pools ``[floor(i n / o), ceil((i + 1) n / o))`` (windows may overlap)."""
    return [((i * n) // o, -(-((i + 1) * n) // o)) for i in range(o)]


def adaptive_pool_fanout(
    layer: nn.Module, sample_shape: tuple[int, ...], out_size: tuple[int, ...]
) -> tuple[torch.Tensor, bool]:
    """Windows each input element falls into, for adaptive Avg/Max pooling; the windows
    are products of per-axis intervals, so the count is the product of per-axis counts."""
    key = ("adaptive", tuple(sample_shape), tuple(out_size))
    size = sample_shape[1:]

    def build() -> torch.Tensor:
        fan = torch.ones(size, dtype=torch.float64)
        for d, (n, o) in enumerate(zip(size, out_size)):
            held = torch.zeros(n, dtype=torch.float64)
            for a, b in adaptive_windows(n, o):
                held[a:b] += 1
            fan = fan * held.view(*[-1 if e == d else 1 for e in range(len(size))])
        return fan.expand(sample_shape[0], *size).contiguous()

    return _cached(layer, key, build)


def pool_geometry(layer: nn.Module, nd: int) -> tuple[tuple[int, ...], ...]:
    """Kernel size, stride and padding of a pooling layer, one entry per spatial axis."""
    stride = layer.stride if layer.stride is not None else layer.kernel_size
    return (_tuple(layer.kernel_size, nd), _tuple(stride, nd), _tuple(layer.padding, nd))


def _tuple(v, n: int) -> tuple[int, ...]:
    if isinstance(v, (tuple, list)):
        return tuple(int(x) for x in v)
    return (int(v),) * n
