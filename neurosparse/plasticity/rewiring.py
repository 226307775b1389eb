"""Dynamic sparse training: prune the weakest synapses, regrow as many elsewhere.

Every ``every`` calls of :meth:`Rewiring.step`, for each ``SparseEventLinear`` and each
output row: drop the ``round(fraction · k)`` synapses of smallest ``|w|`` and grow the
same number at inputs the row was not connected to before the step (so a pruned
synapse is never regrown in the same step), chosen by

- ``"random"``: uniformly (SET, Mocanu et al. 2018);
- ``"hebbian"``: largest ``|Σ_m pre[m, i] · post[m, o]|`` since the last rewiring, with
  post = the layer's synaptic drive (output without bias) (G2GNet-style);
- ``"gradient"``: largest ``|∂L/∂W[o, i]| = |Σ_m grad_out[m, o] · x[m, i]|`` of the last
  backward pass (RigL, Evci et al. 2020);
- ``"momentum"``: largest ``|M[o, i]|``, ``M`` an exponential moving average of that
  dense gradient, updated at every :meth:`Rewiring.step` (sparse momentum, Dettmers &
  Zettlemoyer 2019).

Sums over ``m`` run over every row of the layer's input, i.e. over ``T · B`` rows for a
spiking layer fed ``[T, B, in]``: the Hebbian score of a spiking input is then
``Σ_{t,b} s_i[t, b] · drive_o[t, b]``, the synaptic drive the output received in the
time steps where input ``i`` spiked (spike-count co-activity at the resolution of one
step, summed over the batch). Its absolute value is used, so an input that fires when
the drive is strongly negative scores too.

How much is rewired: ``schedule="constant"`` replaces ``fraction`` of each row at every
rewiring; ``schedule="cosine"`` decays it as RigL does,
``fraction · (1 + cos(π t / (end · total_steps))) / 2`` at step ``t``, and 0 from
``t = end · total_steps`` on.

Each row keeps exactly ``k`` synapses (constant fan-in), so the ELL storage is edited in
place: the slot of a pruned synapse receives the grown one's index and the value
``init``, and the optimizer state of that slot (Adam moments, momentum) is zeroed. The
candidate scores are a temporary dense ``[out, in]`` matrix per layer (as in RigL); the
weights themselves never get a dense mask.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_choice, check_range
from ..errors import ParameterError
from ..layers.sparse_event_linear import SparseEventLinear

PRUNE = ("magnitude",)
GROW = ("random", "hebbian", "gradient", "momentum")
SCHEDULE = ("constant", "cosine")
_RECORD = {"random": None, "hebbian": "coactivity", "gradient": "gradient",
           "momentum": "gradient"}  # fmt: skip


@dataclass
class RewireCost:
    """What one rewiring step did (summed over layers).

    ``synapse_writes`` counts rewritten ELL slots (each one index and one value write);
    ``pruned == grown`` always.
    """

    pruned: int = 0
    grown: int = 0
    synapse_writes: int = 0


def _layers(model_or_layers: nn.Module | Iterable[nn.Module]) -> list[SparseEventLinear]:
    if isinstance(model_or_layers, nn.Module):
        found = [m for m in model_or_layers.modules() if isinstance(m, SparseEventLinear)]
    else:
        found = list(model_or_layers)
        bad = [type(m).__name__ for m in found if not isinstance(m, SparseEventLinear)]
        if bad:
            raise ParameterError(f"Rewiring rewires SparseEventLinear layers only, got {bad}")
    if not found:
        raise ParameterError(
            "Rewiring found no SparseEventLinear layer in model_or_layers; pass a model "
            "containing some, or a list of them"
        )
    return found


def cosine_fraction(step: int, fraction: float, total_steps: int, end: float = 0.75) -> float:
    """RigL's rewired fraction at ``step``: ``fraction · (1 + cos(π · step / t_end)) / 2``
    for ``step < t_end = end · total_steps``, else 0 (Evci et al. 2020, eq. 1)."""
    t_end = end * total_steps
    if step >= t_end:
        return 0.0
    return fraction * (1.0 + math.cos(math.pi * step / t_end)) / 2.0


class Rewiring:
    """Periodic prune-and-regrow of ``SparseEventLinear`` layers (SET / Hebbian / RigL /
    sparse momentum).

    Parameters
    ----------
    model_or_layers : nn.Module or iterable of SparseEventLinear
        Every ``SparseEventLinear`` inside a module, or the given layers.
    every : int
        Rewire on every ``every``-th call of :meth:`step` (call it after
        ``optimizer.step()``).
    fraction : float
        Fraction of each row's synapses replaced per rewiring (``round(f · k)``, capped
        by the number of unconnected inputs, with ``f = fraction`` or its cosine decay).
    prune : {"magnitude"}
    grow : {"random", "hebbian", "gradient", "momentum"}
    init : float
        Value of a grown synapse.
    seed : int
        Seeds the random regrowth (and breaks no ties otherwise).
    optimizer : torch.optim.Optimizer, optional
        Its per-parameter state tensors shaped like ``values`` are zeroed at the rewired
        slots, so a new synapse does not inherit the old one's momentum.
    schedule : {"constant", "cosine"}
        Rewired fraction over training: constant, or RigL's cosine decay to 0 at
        ``end · total_steps`` (:func:`cosine_fraction`, evaluated at the number of
        :meth:`step` calls so far).
    total_steps : int, optional
        Length of training in :meth:`step` calls; required by ``"cosine"``.
    end : float
        Where the cosine reaches 0, as a fraction of ``total_steps`` (RigL: 0.75).
    momentum : float
        ``grow="momentum"``: decay ``β`` of the moving average ``M ← β M + (1 − β) G`` of
        the dense gradient ``G = grad_outᵀ · x`` (``[out, in]`` per layer, updated at
        every :meth:`step` from the last backward pass; the paper's SGD momentum is 0.9).
        Unlike Dettmers & Zettlemoyer, every layer keeps its own number of synapses: with
        constant fan-in there is no redistribution of the budget across layers by mean
        momentum, only the regrowth by ``|M|`` within each row.

    Attributes
    ----------
    last_cost : RewireCost or None
        Cost of the latest rewiring.
    total_cost : RewireCost
        Summed over all rewirings.
    momentum_buffers : dict
        ``grow="momentum"``: the ``[out, in]`` average ``M`` of each layer (keyed by
        layer); memory and a dense gradient per step, as in the paper.
    """

    def __init__(
        self,
        model_or_layers: nn.Module | Iterable[nn.Module],
        every: int = 100,
        fraction: float = 0.3,
        prune: str = "magnitude",
        grow: str = "random",
        init: float = 0.0,
        seed: int = 0,
        optimizer: torch.optim.Optimizer | None = None,
        schedule: str = "constant",
        total_steps: int | None = None,
        end: float = 0.75,
        momentum: float = 0.9,
    ) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ParameterError(f"every must be a positive int, got {every!r}")
        check_range("fraction", fraction, 0.0, 1.0)
        self.prune = check_choice("prune", prune, PRUNE)
        self.grow = check_choice("grow", grow, GROW)
        self.schedule = check_choice("schedule", schedule, SCHEDULE)
        if schedule == "cosine" and (
            not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1
        ):
            raise ParameterError(
                f"schedule='cosine' needs total_steps, the number of step() calls in "
                f"training (a positive int), got {total_steps!r}"
            )
        check_range("end", end, 0.0, 1.0)
        if end <= 0:
            raise ParameterError(f"end must be > 0 (a fraction of total_steps), got {end}")
        check_range("momentum", momentum, 0.0, 1.0)
        if momentum >= 1:
            raise ParameterError(f"momentum must be < 1 (else M never moves), got {momentum}")
        self.layers = _layers(model_or_layers)
        self.every = every
        self.fraction = float(fraction)
        self.total_steps = total_steps
        self.end = float(end)
        self.momentum = float(momentum)
        self.momentum_buffers: dict[SparseEventLinear, torch.Tensor] = {}
        self.init = float(init)
        self.optimizer = optimizer
        self.generator = torch.Generator().manual_seed(seed)
        self.calls = 0
        self.last_cost: RewireCost | None = None
        self.total_cost = RewireCost()
        for layer in self.layers:
            layer.record = _RECORD[self.grow]
            layer.reset_activity()

    def current_fraction(self, step: int | None = None) -> float:
        """Fraction of each row rewired at ``step`` (default: the :meth:`step` calls so
        far): ``fraction``, or its cosine decay under ``schedule="cosine"``."""
        t = self.calls if step is None else step
        if self.schedule == "cosine":
            return cosine_fraction(t, self.fraction, self.total_steps, self.end)
        return self.fraction

    def step(self) -> RewireCost | None:
        """Count a training step; rewire when it is the ``every``-th. Returns the cost
        of the rewiring, or None on steps that do not rewire."""
        self.calls += 1
        if self.grow == "momentum":
            self._update_momentum()
        if self.calls % self.every:
            return None
        return self.rewire()

    @torch.no_grad()
    def _update_momentum(self) -> None:
        for layer in self.layers:
            x, g = layer.last_input, layer.last_grad_out
            if x is None or g is None:
                continue  # no backward since the last step: nothing new to average
            grad = (g.t() @ x).float()
            m = self.momentum_buffers.get(layer)
            if m is None:
                m = torch.zeros_like(grad)
                self.momentum_buffers[layer] = m
            m.mul_(self.momentum).add_(grad, alpha=1.0 - self.momentum)
            # consumed: a step() without a new backward must not average it twice
            layer.last_input = layer.last_grad_out = None

    @torch.no_grad()
    def rewire(self) -> RewireCost:
        """Rewire every layer now (regardless of the step count), replacing
        :meth:`current_fraction` of each row."""
        cost = RewireCost()
        fraction = self.current_fraction()
        for layer in self.layers:
            n = self._rewire_layer(layer, fraction)
            cost.pruned += n
            cost.grown += n
            cost.synapse_writes += n
            layer.reset_activity()
        self.last_cost = cost
        for f in ("pruned", "grown", "synapse_writes"):
            setattr(self.total_cost, f, getattr(self.total_cost, f) + getattr(cost, f))
        return cost

    def _scores(self, layer: SparseEventLinear) -> torch.Tensor:
        """Regrowth score of every ``(out, in)`` position, larger = grown first."""
        shape = (layer.out_features, layer.in_features)
        dev = layer.values.device
        if self.grow == "random":
            return torch.rand(shape, generator=self.generator).to(dev)
        if self.grow == "hebbian":
            c = layer.coactivity
        elif self.grow == "momentum":
            c = self.momentum_buffers.get(layer)
        else:
            x, g = layer.last_input, layer.last_grad_out
            c = None if x is None or g is None else g.t() @ x
        if c is None:
            raise ParameterError(
                f"grow={self.grow!r} needs activity recorded by a forward"
                f"{'' if self.grow == 'hebbian' else ' and backward'} pass of the layer "
                "since the last rewiring; run a training step before rewiring"
            )
        return c.abs().float()

    def _rewire_layer(self, layer: SparseEventLinear, fraction: float) -> int:
        idx, val = layer.indices, layer.values
        n_out, k = idx.shape
        n = min(int(round(fraction * k)), layer.in_features - k)
        if n <= 0:
            return 0
        # stable sort: among equal |w| the lower slot goes first (deterministic)
        slots = val.detach().abs().argsort(dim=1, stable=True)[:, :n]
        scores = self._scores(layer).clone()
        # candidates: inputs unconnected *before* this step (pruned ones stay out)
        scores.scatter_(1, idx.long(), float("-inf"))
        new_cols = scores.topk(n, dim=1).indices
        idx.scatter_(1, slots, new_cols.to(idx.dtype))
        val.scatter_(1, slots, self.init)
        self._reset_slots(val, slots)
        return n_out * n

    def _reset_slots(self, param: torch.Tensor, slots: torch.Tensor) -> None:
        if param.grad is not None:
            param.grad.scatter_(1, slots, 0.0)
        if self.optimizer is None:
            return
        for buf in self.optimizer.state.get(param, {}).values():
            if isinstance(buf, torch.Tensor) and buf.shape == param.shape:
                buf.scatter_(1, slots, 0.0)
