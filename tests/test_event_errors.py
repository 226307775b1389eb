"""Bad input to the event layers raises a specific, explanatory error."""

from __future__ import annotations

import pytest
import torch

from neurosparse.errors import DeviceError, DTypeError, InputValueError, ParameterError, ShapeError
from neurosparse.layers.event_conv2d import EventConv2d, event_conv2d
from neurosparse.layers.event_linear import EventLinear, event_linear


@pytest.fixture(params=["numba", "torch"])
def kernels(request, monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_KERNELS", request.param)


def test_linear_shapes():
    layer = EventLinear(5, 3)
    with pytest.raises(ShapeError, match="in_features=5"):
        layer(torch.zeros(2, 4))
    with pytest.raises(ShapeError, match=r"\[T, B, in_features\]"):
        layer(torch.zeros(5))
    with pytest.raises(ShapeError, match="dimensions"):
        layer(torch.zeros(1, 2, 3, 5))
    with pytest.raises(ShapeError, match="bias must have shape"):
        event_linear(torch.zeros(2, 5), torch.zeros(3, 5), torch.zeros(4))


def test_linear_dtypes():
    layer = EventLinear(5, 3)
    with pytest.raises(DTypeError, match="floating-point"):
        layer(torch.zeros(2, 5, dtype=torch.int64))
    with pytest.raises(DTypeError, match="float64"):
        event_linear(torch.zeros(2, 5), torch.zeros(3, 5, dtype=torch.float64))
    assert issubclass(DTypeError, TypeError)


def test_noncontiguous_weight():
    w = torch.zeros(3, 10)[:, ::2]  # every other input: neither it nor its transpose
    with pytest.raises(ShapeError, match="contiguous"):  # is contiguous
        event_linear(torch.zeros(2, 5), w)
    # the transposed layout (how EventLinear stores its weight) is accepted
    wt = torch.randn(5, 3).t()
    x = torch.ones(2, 5)
    torch.testing.assert_close(event_linear(x, wt, mode="event"), x @ wt.t())
    wc = torch.zeros(4, 4, 3, 3)[:, ::2]  # every other input channel: not contiguous
    with pytest.raises(ShapeError, match="contiguous"):
        event_conv2d(torch.zeros(1, 2, 5, 5), wc)


def test_wrong_device_weight():
    with pytest.raises(DeviceError, match="meta"):
        event_linear(torch.zeros(2, 5), torch.zeros(3, 5, device="meta"))
    with pytest.raises(DeviceError, match="meta"):
        event_conv2d(torch.zeros(1, 2, 5, 5), torch.zeros(3, 2, 3, 3, device="meta"))
    assert issubclass(DeviceError, ValueError)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_spikes(kernels, bad):
    x = torch.zeros(3, 2, 5)
    x[2, 1, 4] = bad
    with pytest.raises(InputValueError, match="NaN or infinite"):
        EventLinear(5, 3, mode="event")(x)
    with pytest.raises(InputValueError, match="NaN or infinite"):
        EventLinear(5, 3, mode="dense")(x)
    xc = torch.zeros(2, 1, 2, 6, 6)
    xc[1, 0, 1, 5, 0] = bad
    with pytest.raises(InputValueError, match="NaN or infinite"):
        EventConv2d(2, 2, 3, mode="event")(xc)


def test_conv_shapes():
    layer = EventConv2d(2, 4, 3)
    with pytest.raises(ShapeError, match="in_channels"):
        layer(torch.zeros(1, 3, 8, 8))
    with pytest.raises(ShapeError, match="smaller than"):
        layer(torch.zeros(1, 2, 2, 8))
    with pytest.raises(ShapeError, match="dimensions"):
        layer(torch.zeros(2, 8, 8))


def test_constructor_arguments():
    with pytest.raises(ParameterError, match="in_features"):
        EventLinear(0, 3)
    with pytest.raises(ParameterError, match="mode"):
        EventLinear(3, 3, mode="sparse")
    with pytest.raises(ParameterError, match="groups"):
        EventConv2d(3, 4, 3, groups=2)
    with pytest.raises(ParameterError, match="stride"):
        EventConv2d(2, 4, 3, stride=0)
    with pytest.raises(ParameterError, match="kernel_size"):
        EventConv2d(2, 4, (3, 3, 3))
    with pytest.raises(ParameterError, match="mode"):
        event_linear(torch.zeros(2, 5), torch.zeros(3, 5), mode="fast")
