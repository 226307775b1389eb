"""Current-based LIF with Euler integration: Norse's ``LIFCell`` parameterisation."""

from __future__ import annotations

import torch

from .._checks import check_finite_range, check_range
from .base import SpikingNeuron, _param, constant, reusable_params
from .functional import NeuronParams, NeuronSpec
from .surrogate import SuperSpike, Surrogate


@reusable_params
class CubaLIF(SpikingNeuron):
    r"""Current-based LIF, one forward-Euler step per time step (Norse ``LIFCell``).

    .. math::
        i \leftarrow i + x, \quad
        v \leftarrow v + \tfrac{dt}{\tau_{mem}} \big((v_{leak} - v) + i\big), \quad
        i \leftarrow i - \tfrac{dt}{\tau_{syn}} i, \quad
        z = H(v - v_{th}), \quad v \leftarrow (1 - z) v + z\, v_{reset}

    The defaults are Norse's (``dt = 1 ms``, ``tau_syn_inv = 200/s``,
    ``tau_mem_inv = 100/s``, SuperSpike with alpha 100), and the arithmetic is done in
    the same order, so spikes and membranes agree with ``norse.torch.LIFCell`` exactly
    (the test suite checks it). As in Norse, the reset lets the gradient through the
    spike and the membrane starts at ``v_leak``.
    """

    def __init__(
        self,
        tau_syn_inv: float = 200.0,
        tau_mem_inv: float = 100.0,
        v_leak: float = 0.0,
        v_th: float = 1.0,
        v_reset: float = 0.0,
        dt: float = 1e-3,
        surrogate: Surrogate | None = None,
        *,
        learn_threshold: bool = False,
    ) -> None:
        # each value finite and non-negative on its own (two negative factors would pass
        # the product checks below), then the Euler step stable
        for name, value in (("tau_syn_inv", tau_syn_inv), ("tau_mem_inv", tau_mem_inv),
                            ("dt", dt)):
            check_finite_range(name, value, lo=0.0)
        for name, value in (("v_leak", v_leak), ("v_reset", v_reset)):
            check_finite_range(name, value)
        check_range("dt * tau_mem_inv", dt * tau_mem_inv, lo=0.0, hi=1.0)
        check_range("dt * tau_syn_inv", dt * tau_syn_inv, lo=0.0, hi=1.0)
        check_finite_range("v_th", v_th, lo=0.0)  # named as the caller passed it, not "threshold"
        super().__init__(
            NeuronSpec(
                surrogate=surrogate if surrogate is not None else SuperSpike(),
                reset="zero", reset_delay=False, detach_reset=False, synaptic=True, euler=True,
            ),  # fmt: skip
            v_init=v_leak,
        )
        # the same float32 products Norse forms, so the arithmetic matches bit for bit
        self.register_buffer("gain", dt * torch.as_tensor(float(tau_mem_inv)))
        self.register_buffer("alpha", -dt * torch.as_tensor(float(tau_syn_inv)))
        self.register_buffer("v_leak", torch.as_tensor(float(v_leak)))
        self.register_buffer("v_reset", torch.as_tensor(float(v_reset)))
        _param(v_th, learn_threshold, "threshold", self)

    def params(self) -> NeuronParams:
        z = constant(0.0, self.threshold)
        return NeuronParams(
            beta=1 - self.gain, gain=self.gain, leak=self.v_leak, threshold=self.threshold,
            alpha=self.alpha, v_reset=self.v_reset, adapt=z, rho=z,
        )  # fmt: skip

    def _fresh_fields(self, p: NeuronParams) -> NeuronParams:
        return p._replace(beta=1 - self.gain)  # derived: made anew per call, as params() does
