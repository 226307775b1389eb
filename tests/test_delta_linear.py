"""DeltaLinear: equals the dense layer on the reference-quantised input, exactly.

Covers θ = 0 (= nn.Linear), θ > 0 against F.linear(x̂) in float64 and over 500 float32
steps (no drift), a hand-computed case, every W·Δ path, gradients (gradcheck where the
straight-through estimator is exact, a pure-torch reference elsewhere), state, counters
and bad inputs.
"""

import pytest
import torch
import torch.nn.functional as F

from neurosparse.errors import DTypeError, ParameterError, ShapeError
from neurosparse.layers.delta_linear import DeltaLinear, DeltaLinearState, delta_linear
from neurosparse.ops.delta_encode import reference_encode


def quantise(x, thr):
    """``x̂``: each unit holds the last value it sent (the oracle of every delta layer)."""
    ref = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        ref = torch.where((x[t] - ref).abs() > thr, x[t], ref)
        out.append(ref)
    return torch.stack(out)


def smooth(shape, dtype=torch.float32, seed=0, scale=0.2):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=dtype) * scale).cumsum(0)


def test_hand_computed_case():
    # two inputs, one output, W = [2, -1], b = 0.5, θ = 0.25
    layer = DeltaLinear(2, 1, threshold=0.25)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, -1.0]]))
        layer.bias.fill_(0.5)
    x = torch.tensor([[1.0, 0.0], [1.2, 0.5], [1.5, 0.6], [1.5, 0.0]]).view(4, 1, 2)
    # deltas: t0 (1, ·), t1 (held 0.2 ≤ θ, 0.5), t2 (0.5, held 0.1), t3 (·, −0.5)
    # x̂ = [1, 0], [1, 0.5], [1.5, 0.5], [1.5, 0]; z = 2·x̂0 − x̂1 + 0.5
    z = layer(x)
    assert z.flatten().tolist() == pytest.approx([2.5, 2.0, 3.0, 3.5])
    c = layer.op_counts()
    # the delta of exactly 1 is an accumulate (synop), the graded ones are MACs
    assert c["events_in"] == 4 and c["synops"] == 1 and c["macs"] == 3
    assert c["dense_macs"] == 8


@pytest.mark.parametrize("mode", ["event", "dense", "auto"])
def test_zero_threshold_equals_nn_linear_every_step(mode):
    torch.manual_seed(1)
    lin = torch.nn.Linear(24, 10)
    layer = DeltaLinear.from_dense(lin, threshold=0.0, mode=mode)
    x = smooth((40, 3, 24), seed=1)
    x[5:9, :, :6] = 0.0  # some inputs hold still: zero deltas
    torch.testing.assert_close(layer(x), lin(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", ["event", "dense"])
def test_equals_dense_on_quantised_input_float64(mode):
    x = smooth((60, 4, 16), torch.float64, seed=2)
    thr = torch.linspace(0.0, 0.6, 16, dtype=torch.float64)
    layer = DeltaLinear(16, 7, threshold=thr, mode=mode, dtype=torch.float64)
    z = layer(x)
    want = F.linear(quantise(x, thr), layer.weight, layer.bias)
    torch.testing.assert_close(z, want, rtol=0, atol=1e-12)
    sp = layer.delta_streams()["input"].sparsity
    assert 0.2 < sp < 1.0  # the thresholds suppressed a real share of the deltas


@pytest.mark.parametrize("mode", ["event", "dense"])
def test_no_drift_over_500_float32_steps(mode):
    torch.manual_seed(3)
    x = smooth((500, 2, 64), seed=3, scale=0.3)
    layer = DeltaLinear(64, 32, threshold=0.1, mode=mode)
    z = layer(x)
    want = F.linear(quantise(x.double(), 0.1), layer.weight.double(), layer.bias.double())
    err = (z.double() - want).abs().amax((1, 2))
    assert err.max() < 1e-4, err.max()
    # the last steps are no worse than the first: nothing accumulates
    assert err[-50:].max() < 1e-5 + 4 * err[:50].max()


def test_chunked_and_step_mode_equal_one_call():
    x = smooth((30, 3, 12), seed=4)
    layer = DeltaLinear(12, 5, threshold=0.15)
    whole = layer(x)
    a, s = layer(x[:11], return_state=True)
    b, s2 = layer(x[11:], state=s, return_state=True)
    torch.testing.assert_close(torch.cat([a, b]), whole, rtol=0, atol=1e-6)
    steps = torch.stack([layer.step(x[t]) for t in range(30)])
    torch.testing.assert_close(steps, whole, rtol=0, atol=1e-6)
    torch.testing.assert_close(layer.state.z, s2.z, rtol=0, atol=1e-6)
    layer.reset()
    torch.testing.assert_close(layer.step(x[0]), whole[0])
    # functional form
    z, st = delta_linear(x, layer.weight, layer.bias, 0.15)
    torch.testing.assert_close(z, whole, rtol=0, atol=1e-6)
    assert isinstance(st, DeltaLinearState)


def test_flattens_image_like_input():
    x = smooth((5, 2, 3, 4, 4), seed=5)
    layer = DeltaLinear(48, 6, threshold=0.1)
    torch.testing.assert_close(layer(x), layer(x.reshape(5, 2, 48)))


def reference_delta_linear(x, weight, bias, thr, width):
    """Pure torch: the reference encoder, then the dense layer on x̂ = Σ Δ (autograd)."""
    d, _ = reference_encode(x, torch.zeros_like(x[0]), thr, width)
    return F.linear(d.cumsum(0), weight, bias)


def test_gradients_equal_pure_torch_reference():
    torch.manual_seed(6)
    x = smooth((25, 3, 9), torch.float64, seed=6).requires_grad_()
    layer = DeltaLinear(9, 4, threshold=0.2, per_channel=True, learn_threshold=True,
                        grad_width=0.2, dtype=torch.float64, mode="event")  # fmt: skip
    g = torch.randn(25, 3, 4, dtype=torch.float64)
    params = (x, layer.weight, layer.bias, layer.threshold)
    got = torch.autograd.grad((layer(x) * g).sum(), params)
    th = layer.threshold.clamp(min=0)
    want = torch.autograd.grad(
        (reference_delta_linear(x, layer.weight, layer.bias, th, 0.2) * g).sum(), params
    )
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert got[3].abs().sum() > 0


def test_gradcheck_parameters_at_positive_threshold():
    # x̂ does not depend on W or b, so z = W x̂ + b is differentiable in them exactly
    x = smooth((8, 2, 5), torch.float64, seed=7)
    w = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, b: delta_linear(x, w, b, 0.3, mode="event")[0],
                                    (w, b))  # fmt: skip


def test_gradcheck_input_at_zero_threshold():
    # θ = 0: x̂ = x and the straight-through gradient is the true one
    x = torch.randn(6, 2, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w: delta_linear(x, w, None, 0.0)[0], (x, w))


def test_counters_and_sparsity_match_the_deltas():
    x = smooth((20, 2, 10), seed=8)
    layer = DeltaLinear(10, 6, threshold=0.2)
    layer(x)
    st = layer.delta_streams()["input"]
    nnz = int((st.delta != 0).sum())
    c = layer.op_counts()
    assert c["events_in"] == nnz == st.nnz
    assert c["macs"] + c["synops"] == nnz * 6
    assert c["dense_macs"] == 20 * 2 * 10 * 6
    assert c["inputs_in"] == 400 and c["weight_bytes_read"] == nnz * 6 * 4
    assert st.sparsity == pytest.approx(1 - nnz / 400)


def test_bad_inputs_raise_clear_errors():
    layer = DeltaLinear(4, 3)
    with pytest.raises(ShapeError, match="in_features|4"):
        layer(torch.ones(3, 2, 5))
    with pytest.raises(ShapeError, match="dimensions"):
        layer(torch.ones(3, 4))
    with pytest.raises(DTypeError):
        layer(torch.ones(3, 2, 4, dtype=torch.int32))
    with pytest.raises(ShapeError, match="state.x_ref"):
        layer(torch.ones(3, 2, 4), state=DeltaLinearState(torch.zeros(5, 4), torch.zeros(5, 3)))
    with pytest.raises(ShapeError, match="DeltaLinearState"):
        layer(torch.ones(3, 2, 4), state=torch.zeros(2, 4))
    with pytest.raises(ShapeError, match="one time step"):
        layer.step(torch.ones(3, 2, 4))
    with pytest.raises(DTypeError, match="float64"):
        layer(torch.ones(3, 2, 4, dtype=torch.float64))  # layer is float32
    with pytest.raises(ParameterError, match="out_features"):
        DeltaLinear(4, 0)
    with pytest.raises(ParameterError, match="mode"):
        DeltaLinear(4, 3, mode="sparse")
    with pytest.raises(ShapeError, match="threshold"):
        DeltaLinear(4, 3, threshold=torch.ones(3))
    with pytest.raises(ParameterError, match="nn.Linear"):
        DeltaLinear.from_dense(torch.nn.Conv2d(1, 1, 1))


def test_functional_rejects_bad_weight_bias_and_nan_threshold():
    """The functional takes the caller's tensors: a 1-D weight, a bias that is not
    ``[out]`` and a NaN threshold raise named errors (they failed with a bare unpacking
    error, inside ``expand``, or -- NaN, and a ``[B, out]`` bias -- not at all: a NaN θ
    never sends, so the output stayed at the bias)."""
    x, w, b = torch.ones(3, 2, 4), torch.ones(3, 4), torch.ones(3)
    with pytest.raises(ShapeError, match="weight must have 2 dimensions"):
        delta_linear(x, torch.ones(4), b)
    with pytest.raises(ShapeError, match=r"bias must have shape \(3,\)"):
        delta_linear(x, w, torch.ones(5))
    with pytest.raises(ShapeError, match=r"bias must have shape \(3,\)"):
        delta_linear(x, w, torch.ones(2, 3))  # one per sample: was broadcast silently
    with pytest.raises(DTypeError, match="bias"):
        delta_linear(x, w, torch.ones(3, dtype=torch.float64))
    with pytest.raises(ParameterError, match="finite"):
        delta_linear(x, w, b, threshold=float("nan"))
    with pytest.raises(ParameterError, match="finite"):
        delta_linear(x, w, b, threshold=torch.tensor([0.1, float("nan"), 0.1, 0.1]))
    # the checks pass what they should: a valid call still equals F.linear at θ = 0
    torch.testing.assert_close(delta_linear(x, w, b)[0], F.linear(x, w, b))
