"""Dynamic sparse training: prune the weakest synapses, regrow as many elsewhere.

Every ``every`` calls of :meth:`Rewiring.step`, for each ``SparseEventLinear`` and each
output row: drop the ``round(fraction · k)`` synapses of smallest ``|w|`` and grow the
same number at inputs the row was not connected to before the step (so a pruned
synapse is never regrown in the same step), chosen by

- ``"random"``: uniformly (SET, Mocanu et al. 2018);
- ``"hebbian"``: largest ``|Σ_m pre[m, i] · post[m, o]|`` since the last rewiring, with
  post = the layer's synaptic drive (output without bias) (G2GNet-style);
- ``"gradient"``: largest ``|∂L/∂W[o, i]| = |Σ_m grad_out[m, o] · x[m, i]|`` of the last
  backward pass (RigL, Evci et al. 2020).

Each row keeps exactly ``k`` synapses (constant fan-in), so the ELL storage is edited in
place: the slot of a pruned synapse receives the grown one's index and the value
``init``, and the optimizer state of that slot (Adam moments, momentum) is zeroed. The
candidate scores are a temporary dense ``[out, in]`` matrix per layer (as in RigL); the
weights themselves never get a dense mask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

from .._checks import check_choice, check_range
from ..errors import ParameterError
from ..layers.sparse_event_linear import SparseEventLinear

PRUNE = ("magnitude",)
GROW = ("random", "hebbian", "gradient")
_RECORD = {"random": None, "hebbian": "coactivity", "gradient": "gradient"}


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


class Rewiring:
    """Periodic prune-and-regrow of ``SparseEventLinear`` layers (SET / Hebbian / RigL).

    Parameters
    ----------
    model_or_layers : nn.Module or iterable of SparseEventLinear
        Every ``SparseEventLinear`` inside a module, or the given layers.
    every : int
        Rewire on every ``every``-th call of :meth:`step` (call it after
        ``optimizer.step()``).
    fraction : float
        Fraction of each row's synapses replaced per rewiring (``round(fraction · k)``,
        capped by the number of unconnected inputs).
    prune : {"magnitude"}
    grow : {"random", "hebbian", "gradient"}
    init : float
        Value of a grown synapse.
    seed : int
        Seeds the random regrowth (and breaks no ties otherwise).
    optimizer : torch.optim.Optimizer, optional
        Its per-parameter state tensors shaped like ``values`` are zeroed at the rewired
        slots, so a new synapse does not inherit the old one's momentum.

    Attributes
    ----------
    last_cost : RewireCost or None
        Cost of the latest rewiring.
    total_cost : RewireCost
        Summed over all rewirings.
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
    ) -> None:
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ParameterError(f"every must be a positive int, got {every!r}")
        check_range("fraction", fraction, 0.0, 1.0)
        self.prune = check_choice("prune", prune, PRUNE)
        self.grow = check_choice("grow", grow, GROW)
        self.layers = _layers(model_or_layers)
        self.every = every
        self.fraction = float(fraction)
        self.init = float(init)
        self.optimizer = optimizer
        self.generator = torch.Generator().manual_seed(seed)
        self.calls = 0
        self.last_cost: RewireCost | None = None
        self.total_cost = RewireCost()
        for layer in self.layers:
            layer.record = _RECORD[self.grow]
            layer.reset_activity()

    def step(self) -> RewireCost | None:
        """Count a training step; rewire when it is the ``every``-th. Returns the cost
        of the rewiring, or None on steps that do not rewire."""
        self.calls += 1
        if self.calls % self.every:
            return None
        return self.rewire()

    @torch.no_grad()
    def rewire(self) -> RewireCost:
        """Rewire every layer now (regardless of the step count)."""
        cost = RewireCost()
        for layer in self.layers:
            n = self._rewire_layer(layer)
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
        else:
            x, g = layer.last_input, layer.last_grad_out
            c = None if x is None or g is None else g.t() @ x
        if c is None:
            raise ParameterError(
                f"grow={self.grow!r} needs activity recorded by a forward"
                f"{' and backward' if self.grow == 'gradient' else ''} pass of the layer "
                "since the last rewiring; run a training step before rewiring"
            )
        return c.abs().float()

    def _rewire_layer(self, layer: SparseEventLinear) -> int:
        idx, val = layer.indices, layer.values
        n_out, k = idx.shape
        n = min(int(round(self.fraction * k)), layer.in_features - k)
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
