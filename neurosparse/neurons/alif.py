"""Adaptive-threshold LIF (ALIF), the LSNN neuron of Bellec et al. 2018."""

from __future__ import annotations

import torch

from .._checks import check_finite_range
from .base import reusable_params
from .functional import NeuronParams
from .lif import LIF


@reusable_params
class ALIF(LIF):
    r"""LIF whose threshold rises with each spike and relaxes back.

    .. math::
        \theta[t] = \theta_0 + \kappa\, a[t], \qquad a[t+1] = \rho\, a[t] + S[t]

    (Bellec et al. 2018, "Long short-term memory and learning-to-learn in networks of
    spiking neurons"; the spike train driving ``a`` is detached.) The paper's LSNN writes
    ``b[t+1] = rho b[t] + (1 - rho) S[t]`` with threshold ``b_0 + beta_a b[t]``: the same
    dynamics with ``a = b / (1 - rho)``, i.e. ``adapt = beta_a (1 - rho)``. The reset
    subtracts the baseline threshold ``theta_0``; every other argument is :class:`LIF`'s.

    Parameters
    ----------
    adapt : float or Tensor
        Threshold increase per unit of adaptation, ``kappa`` (>= 0). Default 0.5.
    rho : float or Tensor
        Decay of the adaptation variable per step, in [0, 1]. Default 0.98 (~50 steps).
    """

    def __init__(
        self,
        beta: float | torch.Tensor | None = None,
        threshold: float | torch.Tensor = 1.0,
        reset: str = "subtract",
        surrogate=None,
        *,
        adapt: float | torch.Tensor = 0.5,
        rho: float | torch.Tensor = 0.98,
        **kw,
    ) -> None:
        super().__init__(beta, threshold, reset, surrogate, **kw)
        check_finite_range("adapt", adapt, lo=0.0)
        check_finite_range("rho", rho, lo=0.0, hi=1.0)
        self.spec = type(self.spec)(**{**self.spec.__dict__, "adaptive": True})
        self.register_buffer("adapt", torch.as_tensor(adapt, dtype=torch.float32).clone())
        self.register_buffer("rho", torch.as_tensor(rho, dtype=torch.float32).clone())

    def params(self) -> NeuronParams:
        return super().params()._replace(adapt=self.adapt, rho=self.rho)
