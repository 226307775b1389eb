"""DeltaConv2d: equals conv2d on the reference-quantised frames, with exact op counts."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_delta_linear import quantise  # the x̂ oracle (tests/ is on sys.path)

from neurosparse.errors import ParameterError, ShapeError
from neurosparse.layers.delta_conv2d import DeltaConv2d, DeltaConv2dState, footprint
from neurosparse.ops.delta_encode import reference_encode


def frames(shape, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g, dtype=dtype) * 0.3).cumsum(0)


def conv_seq(x, layer):
    t, b = x.shape[:2]
    y = F.conv2d(x.flatten(0, 1), layer.weight, layer.bias, layer.stride, layer.padding, 1,
                 layer.groups)  # fmt: skip
    return y.view(t, b, *y.shape[1:])


def test_hand_computed_case():
    # 1 channel, 2×2 image, 1×1 kernel (weight 3, bias −1), θ = 0.5
    layer = DeltaConv2d(1, 1, 1, threshold=0.5)
    with torch.no_grad():
        layer.weight.fill_(3.0)
        layer.bias.fill_(-1.0)
    x = torch.tensor([[[0.0, 1.0], [0.4, 2.0]], [[0.2, 1.6], [0.6, 2.0]]]).view(2, 1, 1, 2, 2)
    # x̂: t0 [[0, 1], [0, 2]] (0.4 held); t1 [[0, 1.6], [0.6, 2]] (0.2 held)
    z = layer(x)
    want = torch.tensor([[[-1.0, 2.0], [-1.0, 5.0]], [[-1.0, 3.8], [0.8, 5.0]]]).view(2, 1, 1, 2,
                                                                                         2)
    torch.testing.assert_close(z, want, rtol=0, atol=1e-6)
    assert layer.op_counts()["events_in"] == 4  # 1, 2 at t0; 0.6, 0.6 at t1


@pytest.mark.parametrize("mode", ["event", "dense"])
@pytest.mark.parametrize("cfg", [(1, 1, 1), (2, 1, 2), (1, 0, 1)])
def test_zero_threshold_equals_nn_conv2d(mode, cfg):
    stride, padding, groups = cfg
    torch.manual_seed(sum(cfg))
    conv = torch.nn.Conv2d(4, 6, 3, stride=stride, padding=padding, groups=groups)
    layer = DeltaConv2d.from_dense(conv, threshold=0.0, mode=mode)
    x = frames((12, 2, 4, 9, 8), seed=1)
    x[3:6, :, 1] = x[2:3, :, 1]  # a channel holds still: zero deltas
    torch.testing.assert_close(layer(x), conv_seq(x, conv), rtol=0, atol=1e-5)


@pytest.mark.parametrize("mode", ["event", "dense"])
def test_equals_conv_on_quantised_frames_float64(mode):
    x = frames((30, 2, 3, 7, 7), torch.float64, seed=2)
    thr = torch.tensor([0.1, 0.4, 0.0], dtype=torch.float64)
    layer = DeltaConv2d(3, 5, 3, stride=2, padding=1, threshold=thr, mode=mode,
                        dtype=torch.float64)  # fmt: skip
    z = layer(x)
    want = conv_seq(quantise(x, thr.view(3, 1, 1)), layer)
    torch.testing.assert_close(z, want, rtol=0, atol=1e-12)


def test_no_drift_over_500_float32_steps():
    x = frames((500, 1, 2, 6, 6), seed=3)
    layer = DeltaConv2d(2, 4, 3, padding=1, threshold=0.1, mode="event")
    z = layer(x)
    want = conv_seq(quantise(x.double(), 0.1), layer.double())
    assert (z.double() - want).abs().max() < 1e-4


def test_counts_use_border_clipped_footprints():
    x = frames((6, 2, 2, 5, 6), seed=4)
    layer = DeltaConv2d(2, 4, 3, stride=2, padding=1, groups=2, threshold=0.2)
    layer(x)
    st = layer.delta_streams()["input"]
    d = st.delta
    # every delta at (y, x) drives (out/groups) × outputs reached along y × along x
    fy = footprint(5, 3, 2, 1, 3)
    fx = footprint(6, 3, 2, 1, 3)
    per_pixel = torch.from_numpy(np.outer(fy, fx) * 2).float()
    ops = int(((d != 0).float() * per_pixel).sum())
    c = layer.op_counts()
    assert c["synops"] + c["macs"] == ops
    assert c["events_in"] == int((d != 0).sum()) == st.nnz
    assert c["dense_macs"] == 6 * 2 * 4 * 3 * 3 * 1 * 3 * 3
    # the footprint itself, by brute force on a tiny case: input 0 of 5, k=3, s=2, p=1
    assert footprint(5, 3, 2, 1, 3).tolist() == [1, 2, 1, 2, 1]


def test_gradients_equal_pure_torch_reference():
    x = frames((10, 2, 2, 5, 5), torch.float64, seed=5).requires_grad_()
    layer = DeltaConv2d(2, 3, 3, padding=1, threshold=0.25, learn_threshold=True,
                        per_channel=True, grad_width=0.25, dtype=torch.float64)  # fmt: skip
    g = torch.randn(10, 2, 3, 5, 5, dtype=torch.float64)
    params = (x, layer.weight, layer.bias, layer.threshold)
    got = torch.autograd.grad((layer(x) * g).sum(), params)
    thr = layer.threshold.view(2, 1, 1).expand(2, 5, 5)
    d, _ = reference_encode(x, torch.zeros_like(x[0]), thr, 0.25)
    want = torch.autograd.grad((conv_seq(d.cumsum(0), layer) * g).sum(), params)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_gradcheck_parameters_at_positive_threshold():
    # x̂ does not depend on the parameters: the output is exactly differentiable in them
    x = frames((4, 1, 2, 4, 4), torch.float64, seed=6)
    layer = DeltaConv2d(2, 2, 3, padding=1, threshold=0.2, dtype=torch.float64, mode="event")
    w = layer.weight.detach().clone().requires_grad_()
    b = layer.bias.detach().clone().requires_grad_()

    def f(w, b):
        return torch.func.functional_call(layer, {"weight": w, "bias": b}, (x,))

    assert torch.autograd.gradcheck(f, (w, b))


def test_state_and_step_mode():
    x = frames((9, 2, 1, 4, 4), seed=7)
    layer = DeltaConv2d(1, 2, 2, threshold=0.1)
    whole = layer(x)
    a, s = layer(x[:4], return_state=True)
    b = layer(x[4:], state=s)
    torch.testing.assert_close(torch.cat([a, b]), whole, rtol=0, atol=1e-6)
    steps = torch.stack([layer.step(x[t]) for t in range(9)])
    torch.testing.assert_close(steps, whole, rtol=0, atol=1e-6)
    assert isinstance(layer.state, DeltaConv2dState)


def test_bad_inputs_raise_clear_errors():
    layer = DeltaConv2d(2, 3, 3)
    with pytest.raises(ShapeError, match="channels"):
        layer(torch.ones(2, 1, 3, 5, 5))
    with pytest.raises(ShapeError, match="T, B, C, H, W"):
        layer(torch.ones(2, 2, 5, 5))
    with pytest.raises(ShapeError, match="smaller"):
        layer(torch.ones(2, 1, 2, 2, 2))
    with pytest.raises(ShapeError, match="state.z"):
        layer(torch.ones(2, 1, 2, 5, 5), state=DeltaConv2dState(torch.zeros(1, 2, 5, 5),
                                                                torch.zeros(1, 3, 5, 5)))
    with pytest.raises(ShapeError, match="B, C, H, W"):
        layer.step(torch.ones(2, 1, 2, 5, 5))
    with pytest.raises(ParameterError, match="groups"):
        DeltaConv2d(3, 4, 3, groups=2)
    with pytest.raises(ParameterError, match="kernel_size"):
        DeltaConv2d(2, 3, 0)
    with pytest.raises(ParameterError, match="dilation"):
        DeltaConv2d.from_dense(torch.nn.Conv2d(1, 1, 3, dilation=2))
