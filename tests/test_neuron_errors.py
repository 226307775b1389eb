"""Bad input to neurons raises specific errors that say what was wrong."""

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
    with pytest.raises(ParameterError, match="threshold"):
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
