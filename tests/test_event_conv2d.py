"""EventConv2d equals nn.Conv2d (forward and every gradient) on the CPU kernel and the
torch reference: activity 0 / 1% / 10% / 100%, bias or not, stride/padding/groups
variants, odd sizes. Tolerance as in test_event_linear (float32, relative to the
largest reference value: nn.Conv2d itself is that far from a float64 result).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_event_linear import _compare as compare_with_dense  # tests/ is on sys.path
from test_event_linear import assert_f32_close, spikes
from torch import nn

from neurosparse.kernels import event_conv2d as kc
from neurosparse.layers.event_conv2d import EventConv2d, event_conv2d

RATES = [0.0, 0.01, 0.1, 1.0]
# (in, out, kernel, stride, padding, groups)
GEOMETRIES = [
    (2, 4, 3, 1, 1, 1),
    (4, 6, (3, 5), (2, 1), (1, 2), 2),
    (3, 3, 2, 2, 0, 3),  # depthwise
    (2, 5, 5, 3, 2, 1),
    (1, 1, 1, 1, 0, 1),
    (3, 2, (1, 4), (1, 3), (0, 3), 1),
]


@pytest.fixture(params=["numba", "torch"])
def kernels(request, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", request.param)
    return request.param


def _compare(layer: EventConv2d, x: torch.Tensor) -> None:
    compare_with_dense(layer, x, per_step=x.dim() == 5)


@pytest.mark.parametrize("geom", GEOMETRIES, ids=str)
@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_nn_conv2d(kernels, geom, rate, bias):
    cin, cout, k, s, p, g = geom
    torch.manual_seed(1)
    layer = EventConv2d(cin, cout, k, s, p, g, bias=bias, mode="event")
    gen = torch.Generator().manual_seed(int(rate * 100) + bias)
    x = spikes((2, 3, cin, 9, 11), rate, graded=rate < 1, gen=gen)
    _compare(layer, x)
    assert layer.last_path == "event"


def test_single_step_input_and_larger_image(kernels):
    torch.manual_seed(2)
    layer = EventConv2d(3, 8, 3, stride=2, padding=1, mode="event")
    _compare(layer, spikes((4, 3, 33, 40), 0.05, False, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("mode", ["dense", "auto"])
def test_other_modes_give_the_same_result(mode):
    torch.manual_seed(0)
    layer = EventConv2d(2, 4, 3, padding=1, mode=mode)
    _compare(layer, spikes((3, 2, 2, 12, 12), 0.05, False, torch.Generator().manual_seed(2)))


def test_functional_form_and_from_dense():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, (3, 2), stride=(1, 2), padding=(2, 1), groups=2)
    ev = EventConv2d.from_dense(conv)
    assert set(ev.state_dict()) == set(conv.state_dict())
    x = spikes((5, 4, 10, 9), 0.2, True, torch.Generator().manual_seed(3))
    assert_f32_close(ev(x), conv(x))
    out = event_conv2d(x, conv.weight, conv.bias, (1, 2), (2, 1), 2, mode="event")
    assert_f32_close(out, conv(x))
    with pytest.raises(ValueError, match="dilation"):
        EventConv2d.from_dense(nn.Conv2d(2, 2, 3, dilation=2))


def test_pack_unpack_roundtrip():
    w = np.random.default_rng(0).standard_normal((6, 2, 3, 4)).astype(np.float32)
    wp = kc.pack_weight(w, 3)
    assert wp.shape == (6, 3, 4, 2)
    # channel 5 is in group 2 (channels 4, 5 -> outputs 4, 5), local channel 1
    np.testing.assert_array_equal(wp[5, 1, 2], w[4:6, 1, 1, 2])
    np.testing.assert_array_equal(kc.unpack_weight(wp, 3), w)


@pytest.mark.parametrize("n,pad,k,s", [(7, 0, 3, 1), (7, 2, 5, 1), (9, 1, 3, 2), (5, 3, 2, 3)])
def test_footprint_counts_match_a_brute_force_count(n, pad, k, s):
    n_out = (n + 2 * pad - k) // s + 1
    want = [sum(1 for o in range(n_out) for kk in range(k) if o * s - pad + kk == i)
            for i in range(n)]  # fmt: skip
    np.testing.assert_array_equal(kc.footprint_counts(n, pad, k, s, n_out), want)


def test_channels_last_model_equals_conv2d():
    """``model.to(memory_format=torch.channels_last)`` (a common GPU idiom) leaves the
    weight non-contiguous; the layer used to refuse it with advice a module user cannot
    follow. Output and weight gradient equal nn.Conv2d's."""
    torch.manual_seed(0)
    layer = EventConv2d(2, 4, 3, padding=1)
    ref = torch.nn.Conv2d(2, 4, 3, padding=1)
    ref.load_state_dict(layer.state_dict())
    layer, ref = (m.to(memory_format=torch.channels_last) for m in (layer, ref))
    assert not layer.weight.is_contiguous()
    x = (torch.rand(3, 2, 2, 8, 8) < 0.2).float()
    y = layer(x)
    torch.testing.assert_close(y, ref(x.flatten(0, 1)).view(3, 2, 4, 8, 8), atol=1e-5, rtol=1e-5)
    y.square().sum().backward()
    ref(x.flatten(0, 1)).square().sum().backward()
    torch.testing.assert_close(layer.weight.grad, ref.weight.grad, atol=1e-4, rtol=1e-4)
