"""Hook counters for stateless layers: Linear, (transposed) convolutions, pooling, norms.

Each counter gets the module, its positional inputs and output, the step context, the
layer's :class:`LayerCounts` (to fill in static facts) and a per-layer scratch dict, and
returns lead tensors (see ``_tensors``) keyed by count name.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _tensors as tt
from .context import StepContext
from .counts import LayerCounts
from .fanout import (
    adaptive_pool_fanout,
    adaptive_windows,
    conv_fanout,
    module_linear_fanout,
    pool_fanout,
    pool_geometry,
)

ADAPTIVE_POOL_TYPES = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                       nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)
POOL_TYPES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d,
              nn.AvgPool3d, *ADAPTIVE_POOL_TYPES)
FOLDABLE_NORMS = (nn.modules.batchnorm._BatchNorm,)
NORM_TYPES = FOLDABLE_NORMS + (nn.LayerNorm, nn.GroupNorm)


def params_bytes(module: nn.Module, recurse: bool = True) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters(recurse=recurse))


def delta_counts(x, sample_ndim: int, ctx: StepContext, scratch: dict, per_in: int,
                 nnz=None) -> dict[str, tt.Lead]:
    """Changed input elements since the previous step, and elements compared.

    The previous step's input is kept in ``scratch`` between calls; empty when the meter
    was created with ``temporal=False``.
    """
    if scratch.get("no_delta"):
        return {}
    view = ctx.time_view(x, sample_ndim)
    d = tt.delta_nonzero(x, sample_ndim, view, None if view else scratch.get("prev"), nnz)
    if view is None:
        scratch["prev"] = x.detach()
    return {"delta_events_in": d, "delta_inputs_in": tt.full_lead(x, sample_ndim, per_in)}


def synaptic_counts(
    x: torch.Tensor,
    out: torch.Tensor,
    sample_ndim: int,
    fan: torch.Tensor,
    uniform: bool,
    dense_per_lead: float,
    dense_synops_per_lead: float,
    weight_elem_bytes: int,
    module_bytes: int,
    ctx: StepContext,
    rec: LayerCounts,
    scratch: dict,
) -> dict[str, tt.Lead]:
    """Counts shared by every layer that is linear in its input."""
    nnz = tt.binary_rows(x, sample_ndim)
    binary = nnz is not None
    nz = None
    if not binary:
        nz = x.detach() != 0
        nnz = tt.nonzero_lead(x, sample_ndim, nz)
    eff = tt.fanout_dot(x, fan, uniform, sample_ndim, nz, nnz, binary)
    ternary, spiking = True, None
    if not binary:
        steps = _ternary_steps(x, sample_ndim, ctx)
        if steps is None:  # no time axis: one rule for the call
            ternary = tt.is_ternary(x, float(nnz.sum()))
        else:
            ternary, spiking = _split_rule(steps, x, sample_ndim, ctx)
    n_lead = max(math.prod(tt.lead_shape(x, sample_ndim)), 1)
    per_in = x.numel() // n_lead
    per_out = out.numel() // n_lead
    rec.units = max(rec.units, out.numel() // tt.time_batch_size(x, sample_ndim))
    if spiking is not None:  # some steps spike, others carry graded values
        kind = {"synops": eff * spiking, "macs": eff * ~spiking}
    else:
        kind = {"synops" if ternary else "macs": eff}
    counts = {
        **kind,
        "dense_macs": tt.full_lead(x, sample_ndim, dense_per_lead),
        "dense_synops": tt.full_lead(x, sample_ndim, dense_synops_per_lead),
        "events_in": nnz,
        "inputs_in": tt.full_lead(x, sample_ndim, per_in),
        "weight_bytes_read": eff * weight_elem_bytes,
        "dense_weight_bytes_read": tt.full_lead(x, sample_ndim, module_bytes),
        "activation_bytes": tt.full_lead(x, sample_ndim, (per_in + per_out) * x.element_size()),
        **delta_counts(x, sample_ndim, ctx, scratch, per_in, nnz if binary else None),
    }
    return counts


def _ternary_steps(x: torch.Tensor, sample_ndim: int, ctx: StepContext) -> torch.Tensor | None:
    """Per time step of a stacked or whole-sequence input, whether all its values are in
    {-1, 0, 1} (bool ``[T]``), or None when it has no time axis. NeuroBench's rule is per
    call, which a step loop meets once per step: an event-count frame (Tonic ``ToFrame``)
    is 0/1 in sparse steps and counts elsewhere, and one count used to turn the whole
    sequence into MACs."""
    view = ctx.time_view(x, sample_ndim) if ctx.T > 1 else None
    if view is None:
        return None
    a = view[0].detach().abs().reshape(view[0].shape[0], -1)
    return ((a == 0) | (a == 1)).all(1)


def _split_rule(steps: torch.Tensor, x: torch.Tensor, sample_ndim: int, ctx: StepContext):
    """(all steps ternary, lead mask of the ternary steps where only some are, else None)."""
    if bool(steps.all()):
        return True, None
    if not bool(steps.any()):
        return False, None
    tv, back = ctx.time_view(x, sample_ndim)
    lead = tt.lead_shape(tv, sample_ndim)
    return False, back(steps.reshape(-1, *([1] * (len(lead) - 1))).expand(lead))


def count_linear(module: nn.Linear, args, out, ctx, rec, scratch) -> dict[str, tt.Lead]:
    return _linear_counts(module, module.weight, args[0], out, ctx, rec, scratch)


def _linear_counts(module, weight, x, out, ctx, rec, scratch) -> dict[str, tt.Lead]:
    """The counts of ``x @ weightᵀ`` (``weight`` [out, in]) in ``module``."""
    fan, uniform = module_linear_fanout(module, weight)
    n_out, n_in = weight.shape
    rec.params_bytes = params_bytes(module)
    return synaptic_counts(
        x, out, 1, fan, uniform, n_in * n_out, n_in * n_out,
        weight.element_size(), rec.params_bytes, ctx, rec, scratch,
    )


def norse_li_linear(module: nn.Module) -> bool:
    """Norse's ``LILinearCell``: a weight of its own feeding leaky integrators (a readout)."""
    return any(c.__module__.startswith("norse.torch.module") and c.__name__ == "LILinearCell"
               for c in type(module).__mro__)


def count_norse_li_linear(module: nn.Module, args, out, ctx, rec, scratch):
    """``LILinearCell(x, state)``: the product with ``input_weights`` [hidden, in] counted
    as a Linear's, plus one leaky-integrator update per hidden unit (v and i), no spikes."""
    x = args[0]
    n_out = module.input_weights.shape[0]
    rec.state_vars = 2
    counts = _linear_counts(module, module.input_weights, x, tt.first_tensor(out), ctx, rec,
                            scratch)  # fmt: skip
    counts["neuron_updates"] = tt.full_lead(x, 1, n_out)
    counts["state_bytes_rw"] = tt.full_lead(x, 1, n_out * 2 * 2 * x.element_size())
    rec.note("Norse LILinearCell: a linear product into leaky integrators (no spikes)")
    return counts


def count_conv(module: nn.modules.conv._ConvNd, args, out, ctx, rec, scratch):
    x = args[0]
    nd = len(module.kernel_size)
    sample_ndim = nd + 1
    sample_shape = tuple(x.shape[-sample_ndim:])
    fan, uniform = conv_fanout(module, sample_shape)
    ones_fan, _ = conv_fanout(module, sample_shape, ones=True)
    taps = math.prod(module.kernel_size)
    n_lead = max(math.prod(tt.lead_shape(x, sample_ndim)), 1)
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        # each input element scatters to (C_out / groups) × kernel taps
        dense = (x.numel() // n_lead) * (module.out_channels // module.groups) * taps
    else:
        dense = (out.numel() // n_lead) * (module.in_channels // module.groups) * taps
    rec.params_bytes = params_bytes(module)
    return synaptic_counts(
        x, out, sample_ndim, fan, uniform, dense, float(ones_fan.sum()),
        module.weight.element_size(), rec.params_bytes, ctx, rec, scratch,
    )


def count_pool(module: nn.Module, args, out, ctx, rec, scratch):
    x = args[0]
    nd = int(type(module).__name__[-2])  # MaxPool2d -> 2
    sample_ndim = nd + 1
    if getattr(module, "dilation", 1) not in (1, (1,) * nd):
        rec.note("pool dilation ignored in the fan-out map")
    out = tt.first_tensor(out)  # (out, indices) with return_indices=True
    size, out_size = tuple(x.shape[-nd:]), tuple(out.shape[-nd:])
    if isinstance(module, ADAPTIVE_POOL_TYPES):
        fan, uniform = adaptive_pool_fanout(module, tuple(x.shape[-sample_ndim:]), out_size)
        taps = math.prod(sum(b - a for a, b in adaptive_windows(n, o))
                         for n, o in zip(size, out_size))
    else:
        fan, uniform = pool_fanout(module, tuple(x.shape[-sample_ndim:]))
        taps = _pool_window_taps(module, size, out_size)
    dense = x.shape[-sample_ndim] * taps
    rec.note("pooling counted as sum-pooling: one accumulate per input event and window")
    return synaptic_counts(x, out, sample_ndim, fan, uniform, dense, float(fan.sum()),
                           0, 0, ctx, rec, scratch)


def _pool_window_taps(module: nn.Module, size: tuple[int, ...], out_size: tuple[int, ...]):
    """Taps of all windows of one channel, each clipped to the padded input as the pooling
    op clips it: a ``ceil_mode`` edge window reaching past the padding is smaller."""
    nd = len(size)
    k, s, p = pool_geometry(module, nd)
    total = 1
    for n, o, kd, sd, pd in zip(size, out_size, k, s, p):
        total *= sum(min(i * sd + kd, n + 2 * pd) - i * sd for i in range(o))
    return total


def count_norm(module: nn.Module, args, out, ctx, rec, scratch):
    x = args[0]
    sample_ndim = max(x.dim() - 1, 0)
    per = x.numel() // max(math.prod(tt.lead_shape(x, sample_ndim)), 1)
    rec.params_bytes = params_bytes(module)
    rec.units = max(rec.units, per)
    counts = {
        "dense_macs": tt.full_lead(x, sample_ndim, per),
        "dense_weight_bytes_read": tt.full_lead(x, sample_ndim, rec.params_bytes),
        "activation_bytes": tt.full_lead(x, sample_ndim, 2 * per * x.element_size()),
    }
    if isinstance(module, FOLDABLE_NORMS):
        rec.note("batch norm assumed folded into the previous layer in event execution")
    else:
        counts["macs"] = counts["dense_macs"]
    return counts
