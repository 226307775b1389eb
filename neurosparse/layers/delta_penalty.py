"""Training for temporal sparsity: the delta penalty and the per-layer sparsity report.

``delta_penalty(model)`` is the regulariser of Yousefzadeh & Sifalakis 2021 (Delta
Activation Layer): the L1 norm of the deltas every delta module transmitted in the
model's last forward call, optionally weighted by each delta's fan-out (the synapses it
drives, so the penalty is proportional to the multiply-accumulates it causes). Its
gradient reaches the layer inputs through the straight-through estimator of
``ops/delta_encode.py`` (``Δ_t = x̂_t − x̂_{t−1}``, ``∂x̂/∂x = 1``): it pulls each
activation towards its previous value, so fewer of them cross the threshold; learnable
thresholds receive their surrogate gradient too.

``temporal_sparsity(model)`` reports, per delta module, the fraction of deltas that were
zero (not sent) in the last call.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import check_choice
from ..errors import ParameterError
from .delta_encoder import DeltaModule, DeltaStream

REDUCTIONS = ("mean", "sum")


def _delta_modules(model: nn.Module) -> list[tuple[str, DeltaModule]]:
    if not isinstance(model, nn.Module):
        raise ParameterError(f"model must be an nn.Module, got {type(model).__name__}")
    found = [(name or type(m).__name__, m) for name, m in model.named_modules()
             if isinstance(m, DeltaModule)]  # fmt: skip
    if not found:
        raise ParameterError(
            f"{type(model).__name__} holds no delta module (DeltaEncoder, DeltaLinear, "
            f"DeltaConv2d, DeltaGRU, DeltaLSTM); nothing to measure"
        )
    return found


def _streams(model: nn.Module) -> list[tuple[str, str, DeltaStream]]:
    out = [(name, s, st) for name, m in _delta_modules(model)
           for s, st in m.delta_streams().items()]  # fmt: skip
    if not out:
        raise ParameterError(
            "no delta module of the model has run yet: call the model on an input first "
            "(the penalty and the report read the deltas of the last call)"
        )
    return out


def delta_penalty(
    model: nn.Module, weighted: bool = False, reduction: str = "mean"
) -> torch.Tensor:
    """L1 norm of the deltas the model's delta modules sent in its last call.

    Parameters
    ----------
    model : nn.Module
        A delta module or a model containing some; it must have been called.
    weighted : bool
        Weigh each delta by its fan-out (synapses driven: ``out_features`` for a
        DeltaLinear, ``G·hidden_size`` for the recurrent cells, the border-clipped
        footprint × output channels per group for a DeltaConv2d, ``fan_out`` for a
        DeltaEncoder), as in Yousefzadeh & Sifalakis 2021.
    reduction : {"mean", "sum"}
        ``"mean"``: per stream, the sum divided by the number of delta units × steps ×
        samples (so λ does not depend on T, B or the layer size), summed over streams;
        ``"sum"``: the plain total.

    Returns
    -------
    torch.Tensor
        A scalar with the autograd graph of the deltas (add ``λ · penalty`` to the loss).
    """
    check_choice("reduction", reduction, REDUCTIONS)
    total = None
    for _, _, st in _streams(model):
        a = st.delta.abs()
        if weighted:
            a = a * st.fan_out
        term = a.sum()
        if reduction == "mean":
            term = term / max(1, st.delta.numel())
        total = term if total is None else total + term.to(total.device)
    return total


def temporal_sparsity(model: nn.Module, per_stream: bool = False) -> dict[str, float]:
    """Fraction of zero (not sent) deltas per delta module in the last call.

    Parameters
    ----------
    model : nn.Module
        A delta module or a model containing some; it must have been called.
    per_stream : bool
        Report the input and hidden streams of recurrent cells separately
        (``"<name>.input"``, ``"<name>.hidden"``) instead of pooled per module.

    Returns
    -------
    dict
        ``{module name: sparsity in [0, 1]}`` (names as in ``model.named_modules()``).
    """
    report: dict[str, float] = {}
    pooled: dict[str, list[int]] = {}
    for name, stream, st in _streams(model):
        if per_stream:
            report[f"{name}.{stream}"] = st.sparsity
        else:
            acc = pooled.setdefault(name, [0, 0])
            acc[0] += st.nnz
            acc[1] += st.total
    for name, (nnz, total) in pooled.items():
        report[name] = 1.0 - nnz / total if total else float("nan")
    return report
