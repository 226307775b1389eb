"""``SparseEventLinear``: sparse weights (constant fan-in, ELL) driven by sparse events.

Storage: output unit ``o`` reads ``k = round(density · in_features)`` inputs
``indices[o, :]`` (int32 buffer, no duplicates in a row) with weights ``values[o, :]``
(the parameter). There is no dense mask: rewiring (``neurosparse.plasticity``) edits
these two tensors in place.

Cost: the per-input transpose of ``indices`` (which ``(out, slot)`` pairs each input
feeds, O(nnz)) is built once per version of ``indices``; the event walk visits it only
for the inputs that are non-zero, so forward and the value gradient cost Σ over events
of that input's fan-out. The input gradient is dense (a surrogate chain upstream needs
every input). Above an input rate of ``GATHER_RATE`` the forward instead walks the ELL
rows in order (every synapse, vectorised, uint16 index copies), which is faster for
dense-ish inputs; the op counters describe the event-driven cost either way.

The op (``neurosparse/ops/ell_linear.py``) has three implementations: the Numba CPU
kernels (``kernels/sparse_event_linear.py``), the numba-cuda kernels
(``kernels/sparse_event_linear_cuda.py``, wrapped in ``neurosparse/ops/sparse_event_linear.py``),
both float32, and a pure-torch reference (the dense matrix scattered from the ELL
storage, then a matmul), which runs other dtypes and ``NEUROSPARSE_KERNELS=torch``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from .._checks import (
    check_choice,
    check_float_tensor,
    check_module_device,
    check_range,
    unwrap,
)
from .._counters import OpCounter
from ..errors import ParameterError
from ..ops.ell_linear import (  # noqa: F401 - the op's names, importable from here too
    GATHER_RATE,
    OP,
    dense_weight,
    ell_index,
    reference_sparse_event_linear,
    sparse_event_linear,
)

FAN_IN = ("constant",)
CONNECTIVITY = ("random", "groups")
RECORD = (None, "coactivity", "gradient")


def fan_in_for(in_features: int, density: float) -> int:
    """Synapses per output unit: ``round(density · in_features)``, at least 1."""
    return max(1, min(in_features, int(round(density * in_features))))


def group_ids(n: int, groups: int) -> torch.Tensor:
    """Group of each of ``n`` units split into ``groups`` contiguous, near-equal groups.

    Unit ``i`` is in group ``floor(i · groups / n)`` (sizes differ by at most one).
    Returns int64 ``[n]``.
    """
    return torch.arange(n) * groups // n


def initial_indices(
    in_features: int,
    out_features: int,
    k: int,
    connectivity: str,
    groups: int | None,
    generator: torch.Generator,
) -> torch.Tensor:
    """Initial synapses ``[out, k]`` (int32, each row sorted and distinct).

    ``"random"``: each row draws ``k`` distinct inputs uniformly. ``"groups"``
    (G2GNet-style modular start): inputs and outputs are split by :func:`group_ids`;
    output group ``g`` ranks the input groups by ring distance ``g, g+1, g-1, g+2,
    g-2, ...`` (mod ``groups``) and takes its ``k`` inputs from the best-ranked groups:
    all of them from group ``g`` (uniformly, distinct) when ``k`` ≤ its width, else the
    whole of group ``g`` first, then the whole of the next-ranked group, and so on, the
    last group used contributing a uniform random subset. Both draw one
    ``[out, in]`` uniform matrix from ``generator`` (so the weights drawn after it are
    the same for either choice).
    """
    keys = torch.rand(out_features, in_features, generator=generator)
    if connectivity == "groups":
        g_out = group_ids(out_features, groups)
        g_in = group_ids(in_features, groups)
        fwd = (g_in[None, :] - g_out[:, None]) % groups  # steps forward on the ring
        bwd = (g_out[:, None] - g_in[None, :]) % groups
        # rank 0 = own group, 2d-1 = d groups forward, 2d = d groups back; a group
        # exactly opposite (fwd == bwd) counts as forward. The uniform key in [0, 1)
        # only orders inputs inside one group, so whole groups are used in rank order.
        rank = torch.where(fwd <= bwd, 2 * fwd - 1, 2 * bwd).clamp(min=0)
        keys = keys.double() + rank  # float64: key + rank never rounds up to rank + 1
    cols = keys.argsort(1)[:, :k]
    return cols.sort(1).values.to(torch.int32).contiguous()


class SparseEventLinear(OpCounter, nn.Module):
    """Linear layer with sparse weights (constant fan-in, ELL) and sparse event inputs.

    Parameters
    ----------
    in_features, out_features : int
    density : float
        Fraction of inputs each output reads; ``k = round(density · in_features)``.
    fan_in : {"constant"}
        Every output has exactly ``k`` synapses (Structured RigL's layout).
    bias : bool
    seed : int
        Seeds the initial connectivity and weights.
    connectivity : {"random", "groups"}
        Initial synapses: ``k`` distinct uniformly random inputs per output, or the
        modular group-to-group start of G2GNet (Konstantaropoulos et al. 2025): inputs
        and outputs split into ``groups`` contiguous groups, output group ``g`` reading
        input group ``g`` (and, when ``k`` exceeds that group's width, the whole group
        plus the nearest groups on the ring ``g+1, g-1, g+2, ...``); see
        :func:`initial_indices`. Rewiring may later connect across groups.
    groups : int, optional
        Number of groups, ``1 ≤ groups ≤ min(in_features, out_features)``; required
        with ``connectivity="groups"``, must be None with ``"random"``.

    Attributes
    ----------
    indices : torch.Tensor
        int32 buffer ``[out, k]``, sorted and distinct per row at initialisation.
    values : nn.Parameter
        ``[out, k]``, uniform in ``±1/sqrt(k)`` (``nn.Linear``'s bound for fan-in ``k``).
    record : {None, "coactivity", "gradient"}
        Set by ``neurosparse.plasticity.Rewiring``: ``"coactivity"`` accumulates
        ``coactivity[o, i] += Σ_m (y - bias)[m, o] · x[m, i]`` (the synaptic drive times
        the input) until :meth:`reset_activity`; ``"gradient"`` keeps the last input and
        the gradient of the output (``last_input``, ``last_grad_out``).

    Notes
    -----
    Counters (``op_counts()``): ``synops`` = Σ over ±1 input events of that input's
    fan-out (synapses touched), ``macs`` = the same over graded events, ``events_in``,
    ``inputs_in``, ``dense_macs`` = inputs × out_features, ``weight_bytes_read`` =
    touched synapses × (value + index bytes).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        density: float = 0.1,
        fan_in: str = "constant",
        bias: bool = True,
        seed: int = 0,
        connectivity: str = "random",
        groups: int | None = None,
    ) -> None:
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ParameterError(f"{name} must be a positive int, got {v!r}")
        check_range("density", density, 0.0, 1.0)
        if density <= 0:
            raise ParameterError(f"density must be > 0 (some synapses per output), got {density}")
        self.fan_in = check_choice("fan_in", fan_in, FAN_IN)
        self.connectivity = check_choice("connectivity", connectivity, CONNECTIVITY)
        if connectivity == "random" and groups is not None:
            raise ParameterError(
                f"groups={groups!r} is only used with connectivity='groups' (got "
                "connectivity='random'); drop it or set connectivity='groups'"
            )
        if connectivity == "groups" and (
            not isinstance(groups, int) or isinstance(groups, bool)
            or not 1 <= groups <= min(in_features, out_features)
        ):  # fmt: skip
            raise ParameterError(
                "connectivity='groups' needs groups, an int in [1, min(in_features, "
                f"out_features)] = [1, {min(in_features, out_features)}] (every group "
                f"must hold at least one input and one output), got {groups!r}"
            )
        self.groups = groups
        self.in_features = in_features
        self.out_features = out_features
        self.density = float(density)
        k = fan_in_for(in_features, density)
        g = torch.Generator().manual_seed(seed)
        idx = initial_indices(in_features, out_features, k, connectivity, groups, g)
        self.register_buffer("indices", idx)
        bound = 1 / math.sqrt(k)
        w = (torch.rand(out_features, k, generator=g) * 2 - 1) * bound
        self.values = nn.Parameter(w)
        if bias:
            self.bias = nn.Parameter((torch.rand(out_features, generator=g) * 2 - 1) * bound)
        else:
            self.register_parameter("bias", None)
        self.record: str | None = None
        self._index_cache: dict = {}
        self.reset_activity()

    @property
    def k(self) -> int:
        """Synapses per output unit."""
        return self.values.shape[1]

    def fan_out(self) -> torch.Tensor:
        """Synapses each input feeds (int64 ``[in_features]``)."""
        ptr = ell_index(self.indices, self.in_features, self._index_cache)[0]
        return torch.from_numpy(np.diff(ptr))

    def dense_weight(self) -> torch.Tensor:
        """The equivalent dense ``[out, in]`` weight (zeros where no synapse)."""
        return dense_weight(self.indices, self.values, self.in_features)

    def to_dense(self) -> nn.Linear:
        """An ``nn.Linear`` holding the masked dense copy of this layer's weights."""
        lin = nn.Linear(self.in_features, self.out_features, self.bias is not None)
        with torch.no_grad():
            lin.weight.copy_(self.dense_weight())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin

    def reset_activity(self) -> None:
        """Forget the recorded co-activity / last input and output gradient."""
        self.coactivity: torch.Tensor | None = None
        self.last_input: torch.Tensor | None = None
        self.last_grad_out: torch.Tensor | None = None

    def _fan_out_on(self, device: torch.device) -> torch.Tensor:
        # kept per version of ``indices`` and device: a host->device copy every call
        # would cost more than the counting itself
        key = (self.indices.data_ptr(), self.indices._version, device)
        cached = self.__dict__.get("_fan_cache")
        if cached is None or cached[0] != key:
            cached = (key, self.fan_out().to(device))
            self.__dict__["_fan_cache"] = cached
        return cached[1]

    def _count(self, x2d: torch.Tensor) -> None:
        # tensors, not ints: on a GPU the counters stay on the device (OpCounter)
        xd = x2d.detach()
        fan = self._fan_out_on(xd.device)
        nz = xd != 0
        unit = xd.abs() == 1
        touched_unit = (unit.sum(0) * fan).sum()
        touched_all = (nz.sum(0) * fan).sum()
        self.count_ops(
            synops=touched_unit,
            macs=touched_all - touched_unit,
            events_in=nz.sum(),
            inputs_in=xd.numel(),
            dense_macs=xd.shape[0] * self.in_features * self.out_features,
            weight_bytes_read=touched_all
            * (self.values.element_size() + self.indices.element_size()),
        )

    def _record(self, x2d: torch.Tensor, y: torch.Tensor) -> None:
        check_choice("record", self.record, RECORD)
        n_out = self.out_features
        if self.record == "coactivity":
            y2d = y.detach().reshape(-1, n_out)
            drive = y2d if self.bias is None else y2d - self.bias.detach()
            c = drive.t() @ x2d.detach()
            self.coactivity = c if self.coactivity is None else self.coactivity + c
        elif self.record == "gradient" and y.requires_grad:
            self.last_input = x2d.detach()

            # on the returned tensor itself: a hook on a view of it would never fire
            def keep(g: torch.Tensor) -> None:
                self.last_grad_out = g.detach().reshape(-1, n_out)

            y.register_hook(keep)

    def train(self, mode: bool = True) -> SparseEventLinear:
        """As ``nn.Module.train``; also drops the per-input weight copy that eval-mode
        calls keep (``ops/sparse_event_linear.py``), so ``layer.eval()`` after an edit
        of ``values.data`` rebuilds it."""
        for key in ("csc_values", "csc_values_seen"):
            self._index_cache.pop(key, None)
        return super().train(mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, in]`` or ``[B, in]`` events -> ``[T, B, out]`` / ``[B, out]``.

        In eval mode the CPU path keeps a per-input copy of the weights between calls
        (faster batch-1 inference). It follows in-place edits that move ``values``'
        version counter; after writing through ``values.data``, call ``layer.eval()``
        again.
        """
        x = check_float_tensor("input", unwrap(x))
        check_module_device(self, x, "SparseEventLinear")
        self._index_cache["values_frozen"] = not self.training
        y = sparse_event_linear(x, self.indices, self.values, self.bias, self.in_features,
                                self._index_cache)  # fmt: skip
        x2d = x.reshape(-1, self.in_features)
        self._count(x2d)
        if self.record is not None:
            self._record(x2d, y)
        return y

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, k={self.k}, "
            f"density={self.density}, fan_in={self.fan_in!r}, bias={self.bias is not None}"
        )
