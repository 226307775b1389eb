"""Turn a trained dense model into a delta model and fine-tune it for temporal sparsity.

``to_delta(model, threshold)`` swaps every ``nn.Linear``, ``nn.Conv2d``, ``nn.GRU`` and
``nn.LSTM`` (one layer, time first) for its delta twin holding the same parameters; with
θ = 0 the new model computes the same function on time-first sequences. Then
``refine_for_sparsity`` trains it with the delta penalty added to the task loss (the
"refinement phase" of Yousefzadeh & Sifalakis 2021), and records the loss and the
temporal sparsity as it goes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable

import torch
from torch import nn

from ..errors import ParameterError
from .delta_conv2d import DeltaConv2d
from .delta_gru import DeltaGRU
from .delta_linear import DeltaLinear
from .delta_lstm import DeltaLSTM
from .delta_penalty import delta_penalty, temporal_sparsity


def _convert(m: nn.Module, threshold: float, kw: dict) -> nn.Module | None:
    if isinstance(m, nn.Linear):
        return DeltaLinear.from_dense(m, threshold, **kw)
    if isinstance(m, nn.Conv2d):
        return DeltaConv2d.from_dense(m, threshold, **kw)
    if isinstance(m, nn.GRU):
        return DeltaGRU.from_dense(m, threshold, **kw)
    if isinstance(m, nn.LSTM):
        return DeltaLSTM.from_dense(m, threshold, **kw)
    return None


def to_delta(model: nn.Module, threshold: float = 0.0, inplace: bool = False, **kw) -> nn.Module:
    """A copy of ``model`` (or ``model`` itself with ``inplace``) with delta layers.

    Every ``nn.Linear``/``nn.Conv2d``/``nn.GRU``/``nn.LSTM`` becomes
    ``DeltaLinear``/``DeltaConv2d``/``DeltaGRU``/``DeltaLSTM`` with the same parameters
    and delta threshold ``threshold``; ``kw`` goes to their constructors
    (``learn_threshold``, ``per_channel``, ``mode`` ...). The delta layers take
    time-first sequences (``[T, B, ...]``), so the model must feed them such.
    """
    if not isinstance(model, nn.Module):
        raise ParameterError(f"model must be an nn.Module, got {type(model).__name__}")
    out = model if inplace else copy.deepcopy(model)
    top = _convert(out, threshold, kw)
    if top is not None:
        return top
    for name, child in list(out.named_children()):
        new = _convert(child, threshold, kw)
        if new is not None:
            setattr(out, name, new)
        else:
            to_delta(child, threshold, inplace=True, **kw)
    return out


def refine_for_sparsity(
    model: nn.Module,
    data: Iterable,
    loss_fn: Callable,
    penalty: float = 1e-3,
    epochs: int = 1,
    lr: float = 1e-4,
    weighted: bool = False,
    optimizer: torch.optim.Optimizer | None = None,
) -> list[dict[str, float]]:
    """Fine-tune a delta model with ``loss_fn(model(x), y) + penalty · delta_penalty``.

    Parameters
    ----------
    model : nn.Module
        Holding delta modules (see :func:`to_delta`).
    data : iterable of (x, y)
        Batches, ``x`` time first; iterated once per epoch.
    loss_fn : callable
        ``loss_fn(output, y) -> scalar tensor``.
    penalty : float
        λ of the delta penalty (≥ 0).
    epochs : int
    lr : float
        Adam's learning rate (ignored when ``optimizer`` is given).
    weighted : bool
        Weigh deltas by fan-out in the penalty.
    optimizer : torch.optim.Optimizer, optional

    Returns
    -------
    list of dict
        Per epoch: mean ``loss``, ``task_loss``, ``penalty`` and the mean over layers of
        the temporal ``sparsity`` seen during the epoch.
    """
    if not (isinstance(penalty, (int, float)) and penalty >= 0):
        raise ParameterError(f"penalty must be a non-negative number, got {penalty!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ParameterError(f"epochs must be a positive int, got {epochs!r}")
    opt = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    model.train()
    for _ in range(epochs):
        sums = {"loss": 0.0, "task_loss": 0.0, "penalty": 0.0, "sparsity": 0.0}
        n = 0
        for x, y in data:
            out = model(x)
            task = loss_fn(out, y)
            pen = delta_penalty(model, weighted=weighted)
            loss = task + penalty * pen
            opt.zero_grad()
            loss.backward()
            opt.step()
            sp = temporal_sparsity(model)
            sums["loss"] += float(loss.detach())
            sums["task_loss"] += float(task.detach())
            sums["penalty"] += float(pen.detach())
            sums["sparsity"] += sum(sp.values()) / len(sp)
            n += 1
        if n == 0:
            raise ParameterError("data yielded no batch")
        history.append({k: v / n for k, v in sums.items()})
    return history
