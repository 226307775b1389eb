"""Leaky and non-leaky integrate-and-fire neurons (snnTorch ``Leaky`` conventions)."""

from __future__ import annotations

import math

import torch

from .._checks import check_choice, check_finite_range
from ..errors import ParameterError
from .base import (
    SpikingNeuron,
    _param,
    check_beta,
    check_threshold,
    constant,
    reusable_params,
)
from .functional import RESETS, NeuronParams, NeuronSpec
from .surrogate import ATan, FastSigmoid, Surrogate


@reusable_params
class LIF(SpikingNeuron):
    r"""Leaky integrate-and-fire neuron.

    .. math::
        U[t] = \beta U[t-1] + I[t] - R[t]\,\theta, \qquad S[t] = H(U[t] - \theta)

    with ``R[t] = S[t-1]`` (detached) under the default delayed reset, which is exactly
    snnTorch's ``Leaky(beta, threshold, reset_mechanism, reset_delay=True)``.

    Parameters
    ----------
    beta : float or Tensor, optional
        Membrane decay per step in [0, 1] (scalar or one per neuron). Default 0.9.
    tau : float, optional
        Membrane time constant in units of ``dt``; sets ``beta = exp(-dt / tau)``.
        Give ``beta`` or ``tau``, not both.
    threshold : float or Tensor
        Firing threshold (>= 0).
    reset : {"subtract", "zero", "none"}
        Reset by subtracting the threshold, to zero, or not at all.
    surrogate : Surrogate
        Surrogate gradient (default ``FastSigmoid(25)``).
    learn_beta, learn_threshold : bool
        Make beta / threshold trainable ``nn.Parameter``s (beta is clamped to [0, 1] in
        the forward pass, as snnTorch does).
    refractory : int
        Steps after a spike during which input is ignored and no spike can occur.
    reset_delay : bool, optional
        Apply a spike's reset on the next step (snnTorch's default) or in the same step.
        Defaults to True, or False when ``refractory > 0`` (which needs the immediate reset).
        ``False`` is the plain same-step reset (as Norse and SpikingJelly reset), not
        snnTorch's ``reset_delay=False``, whose spikes differ once a subtract reset leaves
        the membrane above threshold.
    dt : float
        Step length used with ``tau``.
    alpha : float or Tensor, optional
        Give it for a synaptic current with decay ``alpha`` per step in [0, 1]:
        ``I[t] = alpha I[t-1] + x[t]`` drives the membrane instead of ``x[t]`` (snnTorch's
        ``Synaptic``).
    """

    def __init__(
        self,
        beta: float | torch.Tensor | None = None,
        threshold: float | torch.Tensor = 1.0,
        reset: str = "subtract",
        surrogate: Surrogate | None = None,
        *,
        tau: float | None = None,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        refractory: int = 0,
        reset_delay: bool | None = None,
        dt: float = 1.0,
        alpha: float | torch.Tensor | None = None,
    ) -> None:
        if beta is not None and tau is not None:
            raise ParameterError("give either beta or tau, not both")
        if tau is not None:
            check_finite_range("tau", tau, lo=1e-12)
            # checked here, not only through the beta it gives: a bad dt would otherwise be
            # reported as a beta the caller never passed
            check_finite_range("dt", dt, lo=1e-12)
            beta = math.exp(-dt / tau)
        beta = 0.9 if beta is None else beta
        check_beta(beta)
        check_threshold(threshold)
        check_choice("reset", reset, RESETS)
        check_finite_range("refractory", refractory, lo=0)
        if refractory != int(refractory):  # a fractional count would be truncated silently
            raise ParameterError(f"refractory must be a whole number of steps, got {refractory}")
        refractory = int(refractory)
        if reset_delay is None:
            reset_delay = refractory == 0
        if reset_delay and refractory > 0:
            raise ParameterError(
                "refractory > 0 needs reset_delay=False (the refractory count starts with "
                "the spike's own reset); pass reset_delay=False or leave it unset"
            )
        super().__init__(
            NeuronSpec(
                surrogate=surrogate if surrogate is not None else FastSigmoid(),
                reset=reset,
                reset_delay=bool(reset_delay),
                refractory=refractory,
                synaptic=alpha is not None,
            )
        )
        _param(beta, learn_beta, "beta", self)
        _param(threshold, learn_threshold, "threshold", self)
        if alpha is not None:
            check_finite_range("alpha", alpha, lo=0.0, hi=1.0)
        self.register_buffer("alpha", torch.as_tensor(0.0 if alpha is None else alpha,
                                                      dtype=torch.float32).clone())  # fmt: skip

    @classmethod
    def snntorch(
        cls,
        beta: float | torch.Tensor = 0.9,
        threshold: float = 1.0,
        reset_mechanism: str = "subtract",
        spike_grad: Surrogate | None = None,
        reset_delay: bool = True,
        **kw,
    ) -> LIF:
        """The parameterisation of ``snntorch.Leaky`` (same defaults, ATan(2) surrogate).

        Only snnTorch's default ``reset_delay=True`` is matched; ``False`` raises
        :class:`~neurosparse.errors.ParameterError`: snnTorch's same-step reset fires on
        other steps than ``LIF(..., reset_delay=False)`` once a subtract reset leaves the
        membrane above threshold.
        """
        _snntorch_reset_delay(reset_delay)
        return cls(beta, threshold, reset_mechanism, spike_grad or ATan(), reset_delay=True, **kw)

    @classmethod
    def snntorch_synaptic(
        cls,
        alpha: float | torch.Tensor,
        beta: float | torch.Tensor,
        threshold: float = 1.0,
        reset_mechanism: str = "subtract",
        spike_grad: Surrogate | None = None,
        reset_delay: bool = True,
        **kw,
    ) -> LIF:
        """The parameterisation of ``snntorch.Synaptic`` (subtract / none resets).

        As in :meth:`snntorch`, only ``reset_delay=True`` (snnTorch's default) is matched.
        """
        _snntorch_reset_delay(reset_delay)
        if reset_mechanism == "zero":
            raise ParameterError(
                "snntorch.Synaptic's reset-to-zero also clears the synaptic current, which LIF "
                "does not model; use reset_mechanism='subtract' or 'none'"
            )
        return cls(beta, threshold, reset_mechanism, spike_grad or ATan(), reset_delay=True,
                   alpha=alpha, **kw)  # fmt: skip

    def _beta(self) -> torch.Tensor:
        return self.beta.clamp(0, 1) if isinstance(self.beta, torch.nn.Parameter) else self.beta

    def params(self) -> NeuronParams:
        z = constant(0.0, self.threshold)
        return NeuronParams(
            beta=self._beta(), gain=constant(1.0, self.threshold), leak=z,
            threshold=self.threshold, alpha=self.alpha,
            v_reset=z, adapt=z, rho=z,
        )  # fmt: skip

    def _fresh_fields(self, p: NeuronParams) -> NeuronParams:
        # a learnable beta enters clamped, a new tensor (in the autograd graph) per call;
        # by params()' own rule (_beta), so a plain tensor that torch.func.functional_call
        # puts in _parameters stays unclamped here too
        return p if "beta" not in self._parameters else p._replace(beta=self._beta())


def _snntorch_reset_delay(reset_delay: bool) -> None:
    """Refuse ``reset_delay=False`` in the snnTorch constructors, which promise equal spikes.

    snnTorch's same-step reset also applies the delayed reset of the previous membrane
    and then subtracts ``(spk - reset) * threshold``, so a membrane still above threshold
    after a subtract reset is tested on ``beta * v + x - threshold`` and fires on other
    steps than ``LIF(..., reset_delay=False)``, which tests ``beta * v + x``.
    """
    if not reset_delay:
        raise ParameterError(
            "reset_delay=False is not matched: snnTorch's same-step reset fires on other "
            "steps than LIF(..., reset_delay=False) once a membrane stays above threshold "
            "after its reset; use LIF(beta, threshold, reset, ATan(), reset_delay=False) for "
            "the plain same-step reset, or keep snnTorch's default reset_delay=True"
        )


@reusable_params
class IF(LIF):
    """Integrate-and-fire neuron: an :class:`LIF` without leak (``beta = 1``)."""

    def __init__(
        self,
        threshold: float | torch.Tensor = 1.0,
        reset: str = "subtract",
        surrogate: Surrogate | None = None,
        **kw,
    ) -> None:
        if "beta" in kw or "tau" in kw or "alpha" in kw:
            raise ParameterError("IF has no leak; use LIF for beta / tau")
        super().__init__(1.0, threshold, reset, surrogate, **kw)
