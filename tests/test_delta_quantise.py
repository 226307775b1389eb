"""The Delta Activation Layer's trainable quantisation step (Yousefzadeh & Sifalakis 2021).

``quantise(x, s) = s · round(x / s)``: values and gradients against a hand-computed case,
``torch.autograd.gradcheck`` against finite differences (away from the rounding
boundaries, where the function is linear in ``s``), and the encoder option.
"""

from __future__ import annotations

import pytest
import torch

from neurosparse.errors import ParameterError
from neurosparse.layers.delta_encoder import DeltaEncoder, quantise


def test_hand_computed_values_and_gradients():
    x = torch.tensor([0.26, -0.74, 1.0, 0.1], requires_grad=True)
    s = torch.tensor(0.5, requires_grad=True)
    y = quantise(x, s)
    # x / s = 0.52, -1.48, 2.0, 0.2 -> round 1, -1, 2, 0 -> times 0.5
    assert y.tolist() == pytest.approx([0.5, -0.5, 1.0, 0.0])
    y.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0, 1.0]  # straight through
    # d/ds = round(x/s) summed: 1 - 1 + 2 + 0
    assert s.grad.item() == pytest.approx(2.0, abs=1e-6)


def test_gradcheck_in_step_and_input():
    g = torch.Generator().manual_seed(0)
    # keep x / s at least 0.05 from every half-integer so that finite differences of
    # size eps never cross a rounding boundary
    k = torch.randint(-6, 7, (20,), generator=g).double()
    frac = (torch.rand(20, generator=g, dtype=torch.float64) - 0.5) * 0.8
    s0 = 0.3
    x = ((k + frac) * s0).requires_grad_()
    s = torch.tensor(s0, dtype=torch.float64, requires_grad=True)
    # in s the function is piecewise linear and its derivative round(x/s) is exact
    assert torch.autograd.gradcheck(lambda step: quantise(x.detach(), step), (s,), eps=1e-6)
    # in x the true derivative is 0 almost everywhere; the estimator passes 1 through
    quantise(x, s).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


def test_per_channel_step_broadcasts():
    x = torch.tensor([[0.3, 0.3], [0.9, 0.9]])
    s = torch.tensor([0.25, 1.0])
    assert quantise(x, s).tolist() == [[0.25, 0.0], [1.0, 1.0]]


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), "0.5"])
def test_bad_step_is_refused(bad):
    with pytest.raises(ParameterError, match="step"):
        quantise(torch.ones(3), bad)
    with pytest.raises(ParameterError, match="quant_step"):
        DeltaEncoder(0.1, quant_step=bad)


def test_learn_needs_a_starting_step():
    with pytest.raises(ParameterError, match="quant_step"):
        DeltaEncoder(0.1, learn_quant_step=True)


def test_encoder_sends_deltas_of_the_quantised_input():
    x = torch.tensor([0.0, 0.2, 0.45, 0.55, 1.3]).view(5, 1, 1)
    enc = DeltaEncoder(threshold=0.0, quant_step=0.5, output="reference")
    # quantised: 0, 0, 0.5, 0.5, 1.5 -> deltas 0, 0, 0.5, 0, 1.0
    assert enc(x).flatten().tolist() == pytest.approx([0.0, 0.0, 0.5, 0.5, 1.5])
    enc.output = "delta"
    assert enc(x).flatten().tolist() == pytest.approx([0.0, 0.0, 0.5, 0.0, 1.0])
    # without quant_step the encoder is unchanged
    plain = DeltaEncoder(threshold=0.0)
    assert torch.equal(plain(x), torch.diff(x, dim=0, prepend=torch.zeros(1, 1, 1)))


def test_learned_step_gets_a_gradient_through_the_encoder():
    enc = DeltaEncoder(threshold=0.0, quant_step=0.5, learn_quant_step=True, output="reference")
    assert isinstance(enc.quant_step, torch.nn.Parameter)
    x = torch.tensor([0.26, 0.74, 1.0]).view(3, 1, 1)
    enc(x).sum().backward()
    # the output at t is s · round(x_t / s) (θ = 0): d/ds summed = 1 + 1 + 2
    assert enc.quant_step.grad.item() == pytest.approx(4.0, abs=1e-6)
    assert "quant_step=0.5" in repr(enc)
