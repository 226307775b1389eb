"""k-winners-take-all with duty-cycle boosting (nupic.torch semantics, written anew).

Winners are chosen on the *boosted* value ``x · exp((k/N − duty) · β)``; the output
keeps the *unboosted* ``x`` at the winners and zero elsewhere, so the gradient flows
only through winners. Units that have won less than their share ``k/N`` get boosted
and eventually win, which keeps every unit in use (Ahmad & Scheinkman 2019).

During training the duty cycle (a running mean of how often each unit's output is
positive) is updated after every call::

    period = min(duty_cycle_period, samples_seen)
    duty   = (duty · (period − B) + count_positive) / period

with ``B`` the number of samples in the call. At evaluation time ``k`` is enlarged
by ``k_inference_factor``.

Any number of leading dimensions is accepted (time-first ``[T, B, N]`` included): they
are all treated as samples.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import (
    check_finite,
    check_float_tensor,
    check_module_device,
    check_range,
    unwrap,
)
from ..errors import ParameterError, ShapeError


def _resolve_k(n: int, percent_on: float | None, k: int | None) -> int:
    if (percent_on is None) == (k is None):
        raise ParameterError("give exactly one of percent_on (0..1) or k (number of winners)")
    if k is None:
        check_range("percent_on", percent_on, 0.0, 1.0)
        k = int(round(n * percent_on))
    if not 1 <= int(k) <= n:
        raise ParameterError(f"k must lie in [1, {n}] (units), got {k}")
    return int(k)


def _winner_mask(boosted: torch.Tensor, k: int, dim: int, break_ties: bool) -> torch.Tensor:
    n = boosted.shape[dim]
    if k >= n:
        return torch.ones_like(boosted, dtype=torch.bool)
    if break_ties:
        idx = boosted.topk(k, dim=dim, sorted=False).indices
        return torch.zeros_like(boosted, dtype=torch.bool).scatter_(dim, idx, True)
    # Keep every unit tied with the k-th largest (may give more than k winners).
    threshold = boosted.kthvalue(n - k + 1, dim=dim, keepdim=True).values
    return boosted >= threshold


def kwinners(
    x: torch.Tensor,
    duty_cycles: torch.Tensor,
    k: int,
    boost_strength: float = 0.0,
    break_ties: bool = False,
) -> torch.Tensor:
    """Keep the ``k`` largest boosted units of the last dimension of ``x``.

    Parameters
    ----------
    x : [..., N] float tensor
    duty_cycles : [N] tensor of duty cycles (used only when ``boost_strength > 0``)
    k : int
        Winners per sample.
    boost_strength : float
        ``β``; 0 disables boosting.
    break_ties : bool
        Exactly ``k`` winners (``topk``); otherwise units tied with the k-th value all win.

    Returns
    -------
    Tensor shaped like ``x``: ``x`` at the winners, 0 elsewhere.
    """
    n = x.shape[-1]
    boosted = x.detach()
    if boost_strength > 0:
        boosted = boosted * torch.exp((k / n - duty_cycles) * boost_strength)
    mask = _winner_mask(boosted, k, -1, break_ties)
    return x.masked_fill(~mask, 0)


def kwinners2d(
    x: torch.Tensor,
    duty_cycles: torch.Tensor,
    k: int,
    boost_strength: float = 0.0,
    local: bool = False,
    break_ties: bool = False,
) -> torch.Tensor:
    """k-winners over ``[..., C, H, W]`` with one duty cycle per channel.

    ``local=False``: ``k`` winners among all ``C·H·W`` units of a sample (target density
    ``k / (C·H·W)``). ``local=True``: ``k`` winners among the ``C`` channels at every
    location (target density ``k / C``).
    """
    if x.dim() < 3:
        raise ShapeError(f"x must be [..., C, H, W], got shape {tuple(x.shape)}")
    C, H, W = x.shape[-3:]
    boosted = x.detach()
    if boost_strength > 0:
        density = k / C if local else k / (C * H * W)
        factor = torch.exp((density - duty_cycles.reshape(C, 1, 1)) * boost_strength)
        boosted = boosted * factor
    if local:
        mask = _winner_mask(boosted, k, -3, break_ties)
    else:
        flat = boosted.reshape(*x.shape[:-3], C * H * W)
        mask = _winner_mask(flat, k, -1, break_ties).reshape(x.shape)
    return x.masked_fill(~mask, 0)


class _KWinnersBase(nn.Module):
    # the boosting options and their defaults, in one place for both modules
    def __init__(
        self,
        n_duty: int,
        *,
        k_inference_factor: float = 1.5,
        boost_strength: float = 1.0,
        boost_strength_factor: float = 0.9,
        duty_cycle_period: int = 1000,
        break_ties: bool = False,
    ) -> None:
        super().__init__()
        check_range("k_inference_factor", k_inference_factor, 1.0)
        check_range("boost_strength", boost_strength, 0.0)
        check_range("boost_strength_factor", boost_strength_factor, 0.0, 1.0)
        if int(duty_cycle_period) < 1:
            raise ParameterError(f"duty_cycle_period must be >= 1, got {duty_cycle_period}")
        self.k: int | None = None
        self.k_inference: int | None = None
        self.k_inference_factor = float(k_inference_factor)
        self.boost_strength = float(boost_strength)
        self.boost_strength_factor = float(boost_strength_factor)
        self.duty_cycle_period = int(duty_cycle_period)
        self.break_ties = bool(break_ties)
        self.register_buffer("duty_cycle", torch.zeros(n_duty))
        self.register_buffer("learning_iterations", torch.zeros((), dtype=torch.long))

    def _set_k(self, k: int, units: int) -> None:
        self.k = k
        self.k_inference = min(units, int(k * self.k_inference_factor))

    def update_boost_strength(self) -> None:
        """Multiply the boost strength by ``boost_strength_factor`` (call once per epoch)."""
        self.boost_strength *= self.boost_strength_factor

    def _update_duty(self, positive_counts: torch.Tensor, samples: int) -> None:
        # duty <- (duty*(P - B) + count)/P with P = min(period, samples seen so far)
        self.learning_iterations += samples
        period = min(self.duty_cycle_period, int(self.learning_iterations))
        self.duty_cycle.mul_(period - samples).add_(positive_counts).div_(period)

    def _k_now(self) -> int:
        assert self.k is not None and self.k_inference is not None
        return self.k if self.training else self.k_inference


class KWinners(_KWinnersBase):
    """k-winners-take-all over the last dimension, with duty-cycle boosting.

    Parameters
    ----------
    n : int
        Units in the last dimension.
    percent_on : float, optional
        Winners per sample as a fraction of ``n`` (give this or ``k``).
    k : int, optional
        Winners per sample as a count (give this or ``percent_on``).

    Other Parameters
    ----------------
    k_inference_factor : float, default 1.5
        ``k`` is multiplied by this in ``eval()`` mode (capped at ``n``).
    boost_strength : float, default 1.0
        ``β`` of the boost factor ``exp((k/n − duty)·β)``; 0 disables boosting.
    boost_strength_factor : float, default 0.9
        :meth:`update_boost_strength` multiplies ``β`` by this.
    duty_cycle_period : int, default 1000
        Averaging window of the duty cycle, in samples.
    break_ties : bool, default False
        Exactly ``k`` winners even when values tie.

    Shape
    -----
    ``[..., n]`` in and out; all leading dimensions are samples.

    Examples
    --------
    >>> kw = KWinners(8, k=2, boost_strength=0.0)
    >>> kw(torch.tensor([[1., 5., 3., 0., 2., 4., 0., 0.]]))
    tensor([[0., 5., 0., 0., 0., 4., 0., 0.]])
    """

    def __init__(
        self,
        n: int,
        percent_on: float | None = None,
        k: int | None = None,
        k_inference_factor: float = 1.5,
        boost_strength: float = 1.0,
        boost_strength_factor: float = 0.9,
        duty_cycle_period: int = 1000,
        break_ties: bool = False,
    ) -> None:
        super().__init__(
            int(n),
            k_inference_factor=k_inference_factor,
            boost_strength=boost_strength,
            boost_strength_factor=boost_strength_factor,
            duty_cycle_period=duty_cycle_period,
            break_ties=break_ties,
        )
        self.n = int(n)
        self._set_k(_resolve_k(self.n, percent_on, k), self.n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_float_tensor("x", unwrap(x))
        check_module_device(self, x, type(self).__name__)
        if x.dim() < 1 or x.shape[-1] != self.n:
            raise ShapeError(f"x must be [..., {self.n}], got shape {tuple(x.shape)}")
        # a NaN makes the k-th value NaN and every comparison false: the sample came out
        # all zeros without a word; ±inf ranks fine (e.g. -inf for masked units)
        check_finite("x", x, allow_inf=True)
        out = kwinners(x, self.duty_cycle, self._k_now(), self.boost_strength, self.break_ties)
        if self.training:
            with torch.no_grad():
                flat = out.detach().reshape(-1, self.n)
                self._update_duty(flat.gt(0).sum(0, dtype=self.duty_cycle.dtype), flat.shape[0])
        return out

    def extra_repr(self) -> str:
        return (
            f"n={self.n}, k={self.k}, k_inference={self.k_inference}, "
            f"boost_strength={self.boost_strength}, duty_cycle_period={self.duty_cycle_period}"
        )


class KWinners2d(_KWinnersBase):
    """k-winners over feature maps ``[..., C, H, W]`` with per-channel duty cycles.

    Parameters
    ----------
    channels : int
        ``C``.
    percent_on : float, optional
        Winners per sample as a fraction (give this or ``k``): of the ``C·H·W`` units
        of a sample (``local=False``; the count is computed at the first call, when
        ``H·W`` is known, and again whenever ``C·H·W`` changes) or of the ``C`` channels
        at each location (``local=True``).
    k : int, optional
        Winners per sample as a count (give this or ``percent_on``), among the same units.
    local : bool
        Compete across channels at each location instead of over the whole map.
    k_inference_factor, boost_strength, boost_strength_factor, duty_cycle_period, break_ties :
        As in :class:`KWinners`. A channel's duty cycle is the fraction of its ``H·W``
        positions that were positive, averaged over samples.
    """

    def __init__(
        self,
        channels: int,
        percent_on: float | None = None,
        k: int | None = None,
        local: bool = False,
        k_inference_factor: float = 1.5,
        boost_strength: float = 1.0,
        boost_strength_factor: float = 0.9,
        duty_cycle_period: int = 1000,
        break_ties: bool = False,
    ) -> None:
        super().__init__(
            int(channels),
            k_inference_factor=k_inference_factor,
            boost_strength=boost_strength,
            boost_strength_factor=boost_strength_factor,
            duty_cycle_period=duty_cycle_period,
            break_ties=break_ties,
        )
        if (percent_on is None) == (k is None):
            raise ParameterError("give exactly one of percent_on (0..1) or k (number of winners)")
        if percent_on is not None:
            check_range("percent_on", percent_on, 0.0, 1.0)
        self.channels = int(channels)
        self.local = bool(local)
        self.percent_on = percent_on
        self._k_arg = k
        self._units: int | None = None
        if local:
            self._set_k(_resolve_k(self.channels, percent_on, k), self.channels)
            self._units = self.channels

    def _resolve_for(self, units: int) -> None:
        if self._units == units:
            return
        self._set_k(_resolve_k(units, self.percent_on, self._k_arg), units)
        self._units = units

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = check_float_tensor("x", unwrap(x))
        check_module_device(self, x, type(self).__name__)
        if x.dim() < 3 or x.shape[-3] != self.channels:
            raise ShapeError(f"x must be [..., {self.channels}, H, W], got shape {tuple(x.shape)}")
        check_finite("x", x, allow_inf=True)  # NaN would zero the sample (see KWinners)
        C, H, W = x.shape[-3:]
        if not self.local:
            self._resolve_for(C * H * W)
        out = kwinners2d(
            x, self.duty_cycle, self._k_now(), self.boost_strength, self.local, self.break_ties
        )
        if self.training:
            with torch.no_grad():
                flat = out.detach().reshape(-1, C, H, W)
                counts = flat.gt(0).sum((0, 2, 3), dtype=self.duty_cycle.dtype) / (H * W)
                self._update_duty(counts, flat.shape[0])
        return out

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, k={self.k}, local={self.local}, "
            f"boost_strength={self.boost_strength}, duty_cycle_period={self.duty_cycle_period}"
        )


__all__ = ["KWinners", "KWinners2d", "kwinners", "kwinners2d"]
