"""Delta encoding: the rule, hand-computed cases, thresholds, gradients, state, errors."""

import pytest
import torch

from neurosparse.errors import DTypeError, InputValueError, ParameterError, ShapeError
from neurosparse.layers.delta_encoder import DeltaEncoder, DeltaEncoderState, delta_encode
from neurosparse.ops.delta_encode import delta_encode_op, reference_encode


def quantise(x, thr, ref0=None):
    """x̂_t by the definition: each unit holds the last value it sent."""
    ref = torch.zeros_like(x[0]) if ref0 is None else ref0.clone()
    out = []
    for t in range(x.shape[0]):
        send = (x[t] - ref).abs() > thr
        ref = torch.where(send, x[t], ref)
        out.append(ref)
    return torch.stack(out)


def test_hand_computed_sequence():
    # one unit, θ = 0.5: 0 -> 0.3 (|0.3| ≤ θ, hold 0) -> 0.8 (send 0.8) -> 1.0 (hold)
    # -> 1.4 (|1.4 − 0.8| = 0.6 > θ, send 0.6) -> 0.85 (|−0.55| > θ, send −0.55)
    x = torch.tensor([0.0, 0.3, 0.8, 1.0, 1.4, 0.85]).view(6, 1, 1)
    enc = DeltaEncoder(threshold=0.5)
    d = enc(x)
    want = torch.tensor([0.0, 0.0, 0.8, 0.0, 0.6, 0.85 - 1.4]).view(6, 1, 1)
    torch.testing.assert_close(d, want, rtol=0, atol=1e-7)
    enc_q = DeltaEncoder(threshold=0.5, output="reference")
    xq = enc_q(x)
    assert xq.flatten().tolist() == pytest.approx([0.0, 0.0, 0.8, 0.8, 1.4, 0.85])
    # strict inequality: a change of exactly θ is not sent
    x2 = torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1)
    assert DeltaEncoder(threshold=0.5)(x2).flatten().tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_op_equals_reference_and_definition(dtype):
    torch.manual_seed(0)
    x = torch.randn(20, 3, 4, 5, dtype=dtype).cumsum(0) * 0.3
    enc = DeltaEncoder(threshold=torch.tensor([0.1, 0.3, 0.0, 0.6]), channels=4)
    enc.to(dtype)
    d, state = enc(x, return_state=True)
    thr = enc.threshold.view(4, 1).to(dtype)
    xq = quantise(x, thr)
    prev = torch.cat([torch.zeros_like(x[:1]), xq[:-1]])
    assert torch.equal(d, xq - prev)  # the delta is x̂_t − x̂_{t−1}, bit for bit
    assert torch.equal(state.ref, xq[-1])
    dr, rr = reference_encode(x, torch.zeros_like(x[0]), thr.expand(4, 5), 0.1)
    assert torch.equal(d, dr) and torch.equal(state.ref, rr)
    # the reference output is exactly x̂
    enc.output = "reference"
    assert torch.equal(enc(x), xq)


def test_zero_threshold_sends_every_change_and_only_changes():
    x = torch.tensor([1.0, 1.0, 2.0, 2.0, 2.0, -1.0]).view(6, 1, 1)
    d = DeltaEncoder(threshold=0.0)(x)
    assert d.flatten().tolist() == [1.0, 0.0, 1.0, 0.0, 0.0, -3.0]


def test_state_continues_a_split_sequence_and_step_mode():
    torch.manual_seed(1)
    x = torch.randn(12, 2, 6).cumsum(0)
    enc = DeltaEncoder(threshold=0.4)
    whole = enc(x)
    a, s = enc(x[:5], return_state=True)
    b = enc(x[5:], state=s)
    assert torch.equal(torch.cat([a, b]), whole)
    steps = torch.stack([enc.step(x[t]) for t in range(12)])
    assert torch.equal(steps, whole)
    enc.reset()
    assert torch.equal(enc.step(x[0]), whole[0])
    # a bare tensor is accepted as the references
    assert torch.equal(enc(x[5:], state=s.ref), b)
    # sequence mode starts from rest: calling again gives the same result
    assert torch.equal(enc(x), whole)


def test_counters_are_exact():
    x = torch.tensor([0.0, 0.3, 0.8, 1.0, 1.4, 0.85]).view(6, 1, 1).repeat(1, 2, 3)
    enc = DeltaEncoder(threshold=0.5)
    d = enc(x)
    c = enc.op_counts()
    assert c["spikes"] == int((d != 0).sum()) == 3 * 2 * 3
    assert c["neuron_updates"] == x.numel()
    assert c["state_bytes_rw"] == (x.numel() + 18) * 4
    st = enc.delta_streams()["input"]
    assert st.nnz == 18 and st.total == 36 and st.sparsity == pytest.approx(0.5)


def test_gradients_equal_reference_including_learnable_threshold():
    torch.manual_seed(2)
    x = (torch.randn(15, 2, 3, dtype=torch.float64).cumsum(0) * 0.4).requires_grad_()
    ref0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    thr = torch.tensor([0.2, 0.5, 0.35], dtype=torch.float64, requires_grad=True)
    g = torch.randn(15, 2, 3, dtype=torch.float64)
    gr = torch.randn(2, 3, dtype=torch.float64)
    d, r, _ = delta_encode_op(x, ref0, thr, 0.3)
    got = torch.autograd.grad((d * g).sum() + (r * gr).sum(), (x, ref0, thr))
    d2, r2 = reference_encode(x, ref0, thr, 0.3)
    want = torch.autograd.grad((d2 * g).sum() + (r2 * gr).sum(), (x, ref0, thr))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert want[2].abs().sum() > 0  # the threshold did get a gradient


def test_straight_through_gradient_is_exact_where_nothing_is_quantised():
    # θ = 0: x̂ = x, so Δ = diff(x) and gradcheck applies to the straight-through path
    torch.manual_seed(3)
    x = torch.randn(6, 2, 3, dtype=torch.float64, requires_grad=True)
    ref0 = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    thr = torch.zeros(3, dtype=torch.float64)

    def f(x, ref0):
        d, r, _ = delta_encode_op(x, ref0, thr, 0.1)
        return d, r

    assert torch.autograd.gradcheck(f, (x, ref0))


def test_learnable_threshold_moves_with_the_penalty():
    # the L1 of the deltas falls when θ rises: its gradient on θ is negative
    torch.manual_seed(4)
    x = torch.randn(30, 4, 8).cumsum(0) * 0.2
    enc = DeltaEncoder(threshold=0.2, learn_threshold=True, grad_width=0.2)
    d = enc(x)
    d.abs().sum().backward()
    assert enc.threshold.grad < 0


def test_per_channel_threshold_on_images():
    torch.manual_seed(5)
    x = torch.randn(8, 2, 3, 4, 4).cumsum(0)
    thr = torch.tensor([0.0, 10.0, 1.0])
    d = DeltaEncoder(threshold=thr)(x)  # a 1-D tensor means per channel
    assert torch.equal(d, delta_encode(x, thr)[0])
    assert d[:, :, 1].abs().max() <= 100  # only huge jumps cross θ = 10
    torch.testing.assert_close(d[:, :, 0], torch.diff(x[:, :, 0], dim=0, prepend=torch.zeros_like(
        x[:1, :, 0])))  # fmt: skip


def test_encoder_in_front_of_norse_and_snntorch():
    norse = pytest.importorskip("norse.torch")
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(6)
    x = torch.rand(20, 2, 5).cumsum(0)
    enc = DeltaEncoder(threshold=0.3)
    d = enc(x)
    # Norse: the encoder's output is an ordinary [T, B, ...] tensor for its modules
    lif = norse.LIFBoxCell() if hasattr(norse, "LIFBoxCell") else None
    net = torch.nn.Sequential(DeltaEncoder(threshold=0.3), norse.LIF())
    spikes, _ = net(x)
    want, _ = norse.LIF()(d)
    assert torch.equal(spikes, want)
    del lif
    # snnTorch: a step loop over the delta stream
    leaky = snn.Leaky(beta=0.9)
    mem = leaky.init_leaky()
    spk = []
    enc.reset()
    for t in range(20):
        s, mem = leaky(enc.step(x[t]), mem)
        spk.append(s)
    leaky2 = snn.Leaky(beta=0.9)
    mem2 = leaky2.init_leaky()
    want2 = []
    for t in range(20):
        s, mem2 = leaky2(d[t], mem2)
        want2.append(s)
    assert torch.equal(torch.stack(spk), torch.stack(want2))
    assert torch.stack(spk).sum() > 0


def test_bad_inputs_raise_clear_errors():
    enc = DeltaEncoder(threshold=0.1)
    with pytest.raises(DTypeError, match="floating"):
        enc(torch.ones(3, 2, dtype=torch.int64))
    with pytest.raises(ShapeError, match="dimensions"):
        enc(torch.ones(3))
    with pytest.raises(InputValueError, match="NaN"):
        enc(torch.tensor([[0.0], [float("nan")]]))
    with pytest.raises(InputValueError, match="NaN"):
        enc(torch.tensor([[0.0], [float("inf")]]))
    with pytest.raises(ShapeError, match="state.ref"):
        enc(torch.ones(3, 2, 4), state=DeltaEncoderState(torch.zeros(3, 4)))
    with pytest.raises(ParameterError, match="threshold"):
        DeltaEncoder(threshold=-0.1)
    with pytest.raises(ParameterError, match="channels"):
        DeltaEncoder(threshold=0.1, per_channel=True)
    with pytest.raises(ShapeError, match="channels"):
        DeltaEncoder(threshold=torch.ones(3), channels=4)
    with pytest.raises(ShapeError, match="channels"):
        DeltaEncoder(threshold=torch.ones(3))(torch.ones(2, 1, 4))
    with pytest.raises(ParameterError, match="output"):
        DeltaEncoder(output="spikes")
    with pytest.raises(ParameterError, match="threshold"):
        delta_encode(torch.ones(2, 1), threshold=-1.0)


def test_functional_rejects_nan_threshold():
    """``|d| > NaN`` is false, so a NaN threshold sent nothing and returned all-zero
    deltas without a word (``check_range`` lets NaN through); it raises now, as the
    module's constructor does."""
    x = torch.arange(6.0).view(3, 2, 1)
    with pytest.raises(ParameterError, match="finite"):
        delta_encode(x, threshold=float("nan"))
    with pytest.raises(ParameterError, match="finite"):
        delta_encode(x, threshold=torch.tensor(float("nan")))
    # a valid θ = 0 still sends every change: x_t - x_{t-1}, the first against ref 0
    d, st = delta_encode(x, threshold=0.0)
    torch.testing.assert_close(d, torch.tensor([[[0.0], [1.0]], [[2.0], [2.0]], [[2.0], [2.0]]]))
    torch.testing.assert_close(st.ref, x[-1])
