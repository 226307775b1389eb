"""delta_penalty, temporal_sparsity, to_delta and refine_for_sparsity."""

import numpy as np
import pytest
import torch
from torch import nn

from neurosparse.errors import ParameterError
from neurosparse.layers.delta_conv2d import DeltaConv2d, footprint
from neurosparse.layers.delta_encoder import DeltaEncoder
from neurosparse.layers.delta_gru import DeltaGRU
from neurosparse.layers.delta_linear import DeltaLinear
from neurosparse.layers.delta_penalty import delta_penalty, temporal_sparsity
from neurosparse.layers.delta_refine import refine_for_sparsity, to_delta


class Net(nn.Module):
    def __init__(self, th=0.1):
        super().__init__()
        self.conv = DeltaConv2d(1, 2, 3, padding=1, threshold=th)
        self.fc = DeltaLinear(2 * 4 * 4, 5, threshold=th)
        self.gru = DeltaGRU(5, 3, threshold=th)

    def forward(self, x):
        return self.gru(torch.relu(self.fc(torch.relu(self.conv(x)))))[0]


def frames(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(10, 2, 1, 4, 4, generator=g) * 0.3).cumsum(0)


def test_penalty_is_the_l1_of_every_stream():
    net = Net()
    net(frames())
    streams = [(name, s) for name in ("conv", "fc", "gru")
               for s in getattr(net, name).delta_streams().values()]  # fmt: skip
    assert len(streams) == 4  # conv input, fc input, gru input and hidden
    want_mean = sum(float(s.delta.detach().abs().mean()) for _, s in streams)
    want_sum = sum(float(s.delta.detach().abs().sum()) for _, s in streams)
    assert float(delta_penalty(net).detach()) == pytest.approx(want_mean, rel=1e-6)
    got_sum = float(delta_penalty(net, reduction="sum").detach())
    assert got_sum == pytest.approx(want_sum, rel=1e-6)
    # fan-out weights: fc drives 5 outputs per delta, the GRU 3·3 gates, the conv its
    # border-clipped 3×3 footprint × 2 output channels
    fan_conv = torch.from_numpy(np.outer(footprint(4, 3, 1, 1, 4), footprint(4, 3, 1, 1, 4)) * 2)
    d = {n: {k: s.delta.detach() for k, s in getattr(net, n).delta_streams().items()}
         for n in ("conv", "fc", "gru")}
    gru = d["gru"]["input"].abs().sum() + d["gru"]["hidden"].abs().sum()
    want_w = (float((d["conv"]["input"].abs() * fan_conv.float()).sum())
              + 5 * float(d["fc"]["input"].abs().sum()) + 9 * float(gru))  # fmt: skip
    got_w = float(delta_penalty(net, weighted=True, reduction="sum").detach())
    assert got_w == pytest.approx(want_w, rel=1e-6)


def test_temporal_sparsity_counts_zero_deltas():
    net = Net()
    net(frames(1))
    rep = temporal_sparsity(net)
    assert set(rep) == {"conv", "fc", "gru"}
    for name in ("conv", "fc"):
        d = getattr(net, name).delta_streams()["input"].delta
        assert rep[name] == pytest.approx(float((d == 0).float().mean()))
    s = net.gru.delta_streams()
    zeros = int((s["input"].delta == 0).sum() + (s["hidden"].delta == 0).sum())
    assert rep["gru"] == pytest.approx(zeros / (s["input"].delta.numel() + 10 * 2 * 3))
    per = temporal_sparsity(net, per_stream=True)
    assert set(per) == {"conv.input", "fc.input", "gru.input", "gru.hidden"}
    assert per["gru.hidden"] == pytest.approx(float((s["hidden"].delta == 0).float().mean()))
    # a bare delta module reports under its class name
    enc = DeltaEncoder(0.5)
    enc(torch.tensor([0.0, 1.0, 1.2, 2.0]).view(4, 1, 1))
    assert temporal_sparsity(enc) == {"DeltaEncoder": 0.5}


def test_penalty_gradient_is_the_straight_through_difference():
    # d/dx_t of mean|Δ| = (sign Δ_t − sign Δ_{t+1}) / numel: pulls x_t towards its neighbours
    x = torch.tensor([0.0, 1.0, 1.05, 3.0, 2.0]).view(5, 1, 1).requires_grad_()
    enc = DeltaEncoder(threshold=0.1)
    d = enc(x)
    delta_penalty(enc).backward()
    s = torch.sign(d.detach()).flatten()
    nxt = torch.cat([s[1:], torch.zeros(1)])
    torch.testing.assert_close(x.grad.flatten(), (s - nxt) / 5)


def test_errors():
    with pytest.raises(ParameterError, match="no delta module"):
        delta_penalty(nn.Linear(2, 2))
    with pytest.raises(ParameterError, match="call the model"):
        temporal_sparsity(Net())
    with pytest.raises(ParameterError, match="reduction"):
        net = Net()
        net(frames())
        delta_penalty(net, reduction="max")
    with pytest.raises(ParameterError, match="nn.Module"):
        temporal_sparsity("net")
    with pytest.raises(ParameterError, match="penalty"):
        refine_for_sparsity(Net(), [], nn.functional.mse_loss, penalty=-1.0)


def test_to_delta_keeps_the_function_at_zero_threshold():
    torch.manual_seed(2)
    dense = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Sequential(nn.Linear(8, 3)))
    delta = to_delta(dense, threshold=0.0)
    assert isinstance(delta[0], DeltaLinear) and isinstance(delta[2][0], DeltaLinear)
    assert isinstance(dense[0], nn.Linear)  # the original is untouched
    x = torch.randn(7, 2, 6).cumsum(0)
    torch.testing.assert_close(delta(x), dense(x), rtol=0, atol=1e-5)
    gru = to_delta(nn.GRU(3, 4), threshold=0.0)
    assert isinstance(gru, DeltaGRU)


def _refined_sparsity(penalty):
    torch.manual_seed(3)
    model = to_delta(nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 2)), 0.02)
    g = torch.Generator().manual_seed(3)
    data = []
    for _ in range(4):  # track the first two of eight slowly drifting inputs
        x = (torch.randn(20, 8, 8, generator=g) * 0.2).cumsum(0)
        data.append((x, x[..., :2].clone()))
    model(data[0][0])
    before = temporal_sparsity(model)["2"]
    hist = refine_for_sparsity(model, data, nn.functional.mse_loss, penalty=penalty, epochs=15,
                               lr=1e-2)  # fmt: skip
    model(data[0][0])
    return before, temporal_sparsity(model)["2"], hist


def test_refine_for_sparsity_raises_sparsity():
    # measured: hidden-layer delta sparsity 0.15 -> 0.57 with the penalty (0.15 -> ~0.2
    # without), task loss 0.48 -> 0.013
    before, control, hist0 = _refined_sparsity(0.0)
    before2, after, hist = _refined_sparsity(5.0)
    assert before == before2
    assert len(hist) == 15 and set(hist[0]) == {"loss", "task_loss", "penalty", "sparsity"}
    assert hist[-1]["penalty"] < hist[0]["penalty"]
    assert hist[-1]["task_loss"] < 0.2 * hist[0]["task_loss"]  # it still learned the task
    assert after > control + 0.2, (before, control, after)


def test_a_model_that_ran_can_be_copied_and_pickled():
    # the recorded deltas hold autograd graphs, which deepcopy/pickle cannot take: the
    # copy drops them (and detaches a step-mode state)
    import copy
    import io

    net = Net()
    x = frames(4)
    y = net(x)
    net.fc.step(torch.randn(2, 32, requires_grad=True))
    twin = copy.deepcopy(net)
    assert twin.fc.delta_streams() == {} and not twin.fc.state.z.requires_grad
    torch.testing.assert_close(twin(x), y)
    buf = io.BytesIO()
    torch.save(net, buf)
    assert net.fc.delta_streams()  # the original keeps its record
