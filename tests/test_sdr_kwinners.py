"""KWinners / KWinners2d: boosted selection, unboosted output, winner-only gradient, duty cycles.

Each expectation is computed independently in numpy (or by hand) from the nupic.torch
semantics stated in REFERENCES §4; nupic.torch itself is not installable here.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurosparse.errors import InputValueError, ParameterError, ShapeError
from neurosparse.sdr import KWinners, KWinners2d, kwinners


def _np_winners(x: np.ndarray, duty: np.ndarray, k: int, beta: float) -> np.ndarray:
    boosted = x * np.exp((k / x.shape[-1] - duty) * beta)
    return np.argsort(-boosted, axis=-1, kind="stable")[..., :k]


def test_hand_case_boost_changes_the_winner_but_not_the_output():
    x = torch.tensor([[1.0, 0.9]])
    duty = torch.tensor([1.0, 0.0])
    # boosted: 1·e^(0.5−1) = 0.61 < 0.9·e^(0.5) = 1.48 → unit 1 wins with its raw 0.9
    assert kwinners(x, duty, 1, boost_strength=1.0).tolist() == [[0.0, pytest.approx(0.9)]]
    assert kwinners(x, duty, 1, boost_strength=0.0).tolist() == [[1.0, 0.0]]


@pytest.mark.parametrize("beta", [0.0, 1.5])
def test_winners_match_numpy_formula_and_gradient_flows_only_through_them(beta):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 50, generator=g, requires_grad=True)
    duty = torch.rand(50, generator=g) * 0.3
    out = kwinners(x, duty, 7, beta, break_ties=True)
    idx = _np_winners(x.detach().numpy(), duty.numpy(), 7, beta)
    mask = np.zeros((6, 50), bool)
    np.put_along_axis(mask, idx, True, axis=1)
    assert np.array_equal(out.detach().numpy() != 0, mask)
    assert np.allclose(out.detach().numpy()[mask], x.detach().numpy()[mask])
    (out * torch.arange(50.0)).sum().backward()
    assert np.allclose(x.grad.numpy(), mask * np.arange(50.0))


def test_ties_all_win_unless_break_ties():
    x = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    duty = torch.zeros(4)
    assert int((kwinners(x, duty, 2) != 0).sum()) == 3
    assert int((kwinners(x, duty, 2, break_ties=True) != 0).sum()) == 2


def test_duty_cycle_recurrence_and_period_clamp():
    kw = KWinners(20, k=4, boost_strength=1.0, duty_cycle_period=10)
    rng = np.random.default_rng(1)
    duty = np.zeros(20)
    seen = 0
    for batch in (3, 5, 4, 6):
        x = torch.from_numpy(rng.random((batch, 20)).astype(np.float32))
        before = kw.duty_cycle.numpy().copy()
        out = kw(x).numpy()
        winners = _np_winners(x.numpy(), before, 4, 1.0)
        expected = np.zeros((batch, 20), bool)
        np.put_along_axis(expected, winners, True, axis=1)
        assert np.array_equal(out > 0, expected)
        seen += batch
        period = min(10, seen)
        duty = (duty * (period - batch) + expected.sum(0)) / period
        assert np.allclose(kw.duty_cycle.numpy(), duty, atol=1e-6)
    assert int(kw.learning_iterations) == 18


def test_eval_uses_k_inference_and_freezes_duty():
    kw = KWinners(40, percent_on=0.1, k_inference_factor=1.5)
    assert kw.k == 4 and kw.k_inference == 6
    kw.eval()
    x = torch.rand(3, 40) + 0.1
    assert ((kw(x) != 0).sum(1) == 6).all()
    assert float(kw.duty_cycle.abs().sum()) == 0.0


def test_time_first_input_equals_flattened_batch():
    x = torch.rand(5, 3, 30)
    a, b = KWinners(30, k=5, break_ties=True), KWinners(30, k=5, break_ties=True)
    assert torch.equal(a(x), b(x.reshape(15, 30)).reshape(5, 3, 30))
    assert torch.allclose(a.duty_cycle, b.duty_cycle)
    with pytest.raises(ShapeError, match=r"\[\.\.\., 30\]"):
        a(torch.rand(2, 31))


def test_boosting_uses_every_unit_while_plain_topk_starves_some():
    torch.manual_seed(0)
    bias = torch.linspace(1.0, 0.5, 64)  # low units are always favoured by the input
    usage = {}
    for beta in (0.0, 10.0):
        kw = KWinners(64, k=4, boost_strength=beta, duty_cycle_period=200, break_ties=True)
        won = torch.zeros(64, dtype=torch.bool)
        for _ in range(300):
            won |= (kw(bias + 0.1 * torch.rand(16, 64)) > 0).any(0)
        usage[beta] = int(won.sum())
    assert usage[10.0] == 64
    assert usage[0.0] < 20


def test_kwinners2d_global_and_local():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 4, 3, 3, 5, generator=g)  # [T, B, C, H, W]
    kw = KWinners2d(3, percent_on=0.2, boost_strength=0.0, break_ties=True)
    out = kw(x)
    assert kw.k == 9  # round(0.2 * 45)
    assert ((out.reshape(8, -1) != 0).sum(1) == 9).all()
    top = x.reshape(8, -1).topk(9).indices
    assert torch.equal(
        (out.reshape(8, -1) != 0), torch.zeros(8, 45, dtype=torch.bool).scatter(1, top, True)
    )
    local = KWinners2d(3, k=1, local=True, boost_strength=0.0)
    out_l = local(x)
    assert ((out_l != 0).sum(-3) == 1).all()
    assert torch.equal(out_l.argmax(-3), x.argmax(-3))


def test_kwinners2d_duty_is_per_channel_fraction_of_positions():
    x = torch.zeros(1, 2, 2, 2)
    x[0, 0] = torch.tensor([[4.0, 3.0], [0.1, 0.2]])
    x[0, 1] = torch.tensor([[2.0, 0.3], [0.4, 0.5]])
    kw = KWinners2d(2, k=3, boost_strength=1.0, duty_cycle_period=100)
    kw(x)  # winners 4, 3, 2 → channel 0 positive on 2 of 4 positions, channel 1 on 1
    assert torch.allclose(kw.duty_cycle, torch.tensor([0.5, 0.25]))
    # next call: channel 1 (less used) gets the larger boost e^(1/8 − 0.25) > e^(1/8 − 0.5)
    y = torch.zeros(1, 2, 2, 2)
    y[0, 0, 0, 0], y[0, 1, 0, 0] = 1.0, 0.9
    out = KWinners2d(2, k=1, boost_strength=1.0)
    out.duty_cycle.copy_(kw.duty_cycle)
    res = out(y)
    assert res[0, 1, 0, 0] == pytest.approx(0.9) and res[0, 0, 0, 0] == 0


def test_bad_arguments():
    with pytest.raises(ParameterError, match="exactly one"):
        KWinners(10)
    with pytest.raises(ParameterError, match=r"\[1, 10\]"):
        KWinners(10, k=11)


def test_positional_options_bind_as_documented():
    # the boosting options stay positional (no deprecation cycle announced for a change):
    # each lands on the attribute the docstring names
    kw = KWinners(8, None, 2, 2.0, 0.5, 0.8, 77, True)
    assert (kw.k, kw.k_inference, kw.boost_strength) == (2, 4, 0.5)
    assert (kw.boost_strength_factor, kw.duty_cycle_period, kw.break_ties) == (0.8, 77, True)
    kw2 = KWinners2d(4, None, 1, True, 3.0, 0.25, 0.5, 9, True)
    assert (kw2.k, kw2.boost_strength, kw2.duty_cycle_period, kw2.break_ties) == (1, 0.25, 9, True)
    with pytest.raises(TypeError, match="KWinners.__init__"):
        KWinners(8, k=2, boost=1.0)


def test_nan_input_raises_instead_of_silencing_the_sample():
    # a NaN made the k-th value NaN, every comparison false and the whole sample 0
    x = torch.tensor([[float("nan"), 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0]])
    with pytest.raises(InputValueError, match="NaN"):
        KWinners(4, k=2, boost_strength=0.0)(x)
    with pytest.raises(InputValueError, match="NaN"):
        KWinners2d(2, k=1, boost_strength=0.0)(x.reshape(1, 2, 2, 2))
    # ±inf rank like any value (e.g. -inf on masked units) and stay allowed
    y = KWinners(4, k=2, boost_strength=0.0)(torch.tensor([[float("-inf"), 1.0, 2.0, 5.0]]))
    assert y.tolist() == [[0.0, 0.0, 2.0, 5.0]]
