"""Bad input to neurons raises specific errors that say what was wrong."""

import re

import pytest
import torch

import neurosparse as ns
from neurosparse.errors import DTypeError, InputValueError, ParameterError, ShapeError


def test_wrong_rank():
    with pytest.raises(ShapeError, match=r"\[T, B, \.\.\.\].*got shape \(5,\)"):
        ns.LIF()(torch.rand(5))
    with pytest.raises(ShapeError, match="one time step"):
        ns.LIF().step(torch.rand(()))


def test_mismatched_state():
    lif = ns.LIF()
    _, st = lif(torch.rand(4, 2, 8))
    with pytest.raises(ShapeError, match=r"state\.v has shape \(2, 8\).*\(3, 8\)"):
        lif(torch.rand(4, 3, 8), st)
    lif.step(torch.rand(2, 8))
    with pytest.raises(ShapeError, match="reset()"):
        lif.step(torch.rand(5, 8))
    lif.reset()
    z, _ = lif.step(torch.rand(5, 8))  # after reset() a new batch size is fine
    assert z.shape == (5, 8)


def test_non_float_dtype():
    with pytest.raises(DTypeError, match=r"floating-point.*torch\.int64.*\.float\(\)"):
        ns.LIF()(torch.ones(3, 2, 4, dtype=torch.long))
    with pytest.raises(DTypeError, match="torch.Tensor"):
        ns.LIF()([[0.0]])


def test_nan_input():
    x = torch.rand(3, 2, 4)
    x[1, 0, 2] = float("nan")
    with pytest.raises(InputValueError, match="NaN"):
        ns.LIF()(x)


@pytest.mark.parametrize("beta", [-0.1, 1.5])
def test_beta_out_of_range(beta):
    with pytest.raises(ParameterError, match=r"beta must lie in \[0\.0, 1\.0\]"):
        ns.LIF(beta=beta)


def test_per_neuron_beta_out_of_range():
    with pytest.raises(ParameterError, match="beta.*values in"):
        ns.LIF(beta=torch.tensor([0.5, 1.2]))


def test_negative_threshold():
    with pytest.raises(ParameterError, match="threshold must lie in"):
        ns.LIF(threshold=-1.0)
    with pytest.raises(ParameterError, match=r"v_th must lie in \[0\.0, inf\], got -0\.5"):
        ns.CubaLIF(v_th=-0.5)


def test_bad_reset_and_options():
    with pytest.raises(ParameterError, match="reset must be one of"):
        ns.LIF(reset="hard")
    with pytest.raises(ParameterError, match="beta or tau"):
        ns.LIF(beta=0.9, tau=5.0)
    with pytest.raises(ParameterError, match="reset_delay=False"):
        ns.LIF(refractory=2, reset_delay=True)
    with pytest.raises(ParameterError, match="slope"):
        ns.surrogate.ATan(-1.0)


def test_errors_are_builtin_subclasses():
    with pytest.raises(ValueError):
        ns.LIF(beta=2.0)
    with pytest.raises(TypeError):
        ns.LIF()(torch.ones(3, 2, 4, dtype=torch.int32))


def test_tau_sets_beta():
    import math

    lif = ns.LIF(tau=10.0)
    assert lif.beta.item() == pytest.approx(math.exp(-0.1))


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: ns.LIF(beta=float("nan")), "beta"),
        (lambda: ns.LIF(beta=torch.tensor([0.5, float("nan")])), "beta"),
        (lambda: ns.LIF(threshold=float("inf")), "threshold"),
        (lambda: ns.LIF(threshold=float("nan")), "threshold"),
        (lambda: ns.LIF(tau=float("nan")), "tau"),
        (lambda: ns.LIF(tau=float("inf")), "tau"),
        (lambda: ns.LIF(tau=2.0, dt=float("nan")), "dt"),
        (lambda: ns.LIF(alpha=float("nan")), "alpha"),
        (lambda: ns.ALIF(adapt=float("inf")), "adapt"),
        (lambda: ns.ALIF(rho=float("nan")), "rho"),
        (lambda: ns.CubaLIF(v_th=float("nan")), "v_th"),
        (lambda: ns.CubaLIF(v_leak=float("nan")), "v_leak"),
        (lambda: ns.CubaLIF(v_reset=float("-inf")), "v_reset"),
        (lambda: ns.CubaLIF(dt=float("nan")), "dt"),
        (lambda: ns.surrogate.ATan(float("nan")), "ATan slope"),
    ],
)
def test_non_finite_parameters_refused(make, name):
    # NaN passed the range checks (every comparison with NaN is False): the membrane
    # turned NaN and the neuron silently never fired; an infinite threshold did the same
    # through inf * 0 in the subtract reset
    with pytest.raises(ParameterError, match=rf"^{name} must be a finite number"):
        make()


def test_bad_step_sizes_named():
    # a negative dt was reported as "beta must lie in [0, 1], got 1.65" (the beta it gave)
    with pytest.raises(ParameterError, match=r"^dt must lie in"):
        ns.LIF(tau=2.0, dt=-1.0)
    # two negative factors made a valid-looking product dt * tau_mem_inv = 0.1
    with pytest.raises(ParameterError, match=r"^tau_syn_inv must lie in \[0\.0, inf\]"):
        ns.CubaLIF(tau_mem_inv=-100.0, tau_syn_inv=-200.0, dt=-1e-3)
    # a fractional refractory count was truncated to int silently
    with pytest.raises(ParameterError, match="refractory must be a whole number.*1.5"):
        ns.LIF(refractory=1.5, reset_delay=False)


@pytest.mark.parametrize("kernels", ["numba", "torch"])
@pytest.mark.parametrize("shape", [(4,), (1, 5), (3, 5)])
def test_per_neuron_parameter_shape_mismatch(shape, kernels, monkeypatch):
    # features (5,): (4,) fits no axis, (1, 5) and (3, 5) have a batch axis; the kernel
    # failed on them with torch's expand message, and a CPU step broadcast (3, 5) against
    # the batch (a per-sample beta in step mode only)
    monkeypatch.setenv("NEUROSPARSE_KERNELS", kernels)
    x = torch.rand(6, 3, 5)
    lif = ns.LIF(beta=torch.full(shape, 0.9))
    with pytest.raises(ShapeError, match=rf"beta has shape {re.escape(str(shape))}.*\(5,\)"):
        lif(x)
    with pytest.raises(ShapeError, match=r"beta has shape .*feature shape \(5,\)"):
        lif.step(x[0])


@pytest.mark.parametrize("kernels", ["numba", "torch"])
def test_per_neuron_parameters_broadcast_over_feature_axes(kernels, monkeypatch):
    # one beta per channel (C, 1) and one threshold per position (W,) on [T, B, C, W]:
    # the accepted shapes, held to a hand-written loop of the LIF equation
    monkeypatch.setenv("NEUROSPARSE_KERNELS", kernels)
    torch.manual_seed(0)
    x = torch.rand(50, 2, 3, 4) * 0.6
    beta = torch.tensor([[0.5], [0.8], [0.95]])
    th = torch.tensor([0.4, 0.7, 1.0, 1.3])
    v, spikes = torch.zeros(2, 3, 4), []
    for t in range(x.shape[0]):
        r = (v > th).float()  # delayed reset: the previous step's spike
        v = beta * v + x[t] - r * th
        spikes.append((v > th).float())
    z, st = ns.LIF(beta, th)(x)
    assert 0 < z.sum() < z.numel()
    assert torch.equal(z, torch.stack(spikes))
    assert torch.allclose(st.v, v, atol=1e-6, rtol=0)


def test_snntorch_reset_delay_false_refused():
    # it was a bare TypeError ("multiple values for keyword argument"); snnTorch's own
    # reset_delay=False fires differently from ours (tests/test_neuron_parity.py)
    with pytest.raises(ParameterError, match="reset_delay=False is not matched"):
        ns.LIF.snntorch(0.9, reset_delay=False)
    with pytest.raises(ParameterError, match="reset_delay=False is not matched"):
        ns.LIF.snntorch_synaptic(0.5, 0.9, reset_delay=False)
