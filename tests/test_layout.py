"""Time-first [T, B, ...] everywhere; batch-first input is swapped only when asked, and
refused where it can be recognised (a zero-padded batch of Tonic's PadTensors)."""

import numpy as np
import pytest
import tonic
import torch

import neurosparse as ns
from neurosparse.errors import ShapeError


def _recording(duration_us: int, seed: int) -> np.ndarray:
    """Dense synthetic events on an 8x8 sensor: every 1 ms bin holds events."""
    rng = np.random.default_rng(seed)
    n = duration_us // 20
    ev = np.zeros(n, dtype=[("t", "<i8"), ("x", "<i8"), ("y", "<i8"), ("p", "<i8")])
    ev["t"] = np.sort(rng.integers(0, duration_us, n))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 8, n), rng.integers(0, 8, n), rng.integers(0, 2, n)
    return ev


def _batch(batch_first: bool):
    to_frame = tonic.transforms.ToFrame(sensor_size=(8, 8, 2), time_window=1000)
    samples = [(torch.as_tensor(to_frame(_recording(d, i)), dtype=torch.float32), i % 2)
               for i, d in enumerate([5000, 9000, 12000])]  # fmt: skip
    return tonic.collation.PadTensors(batch_first=batch_first)(samples)[0]


def _net(**kw):
    torch.manual_seed(0)
    return ns.Sequential(nn_flatten(), ns.EventLinear(128, 10), ns.LIF(0.9, 0.5), **kw)


def nn_flatten():
    return torch.nn.Flatten(2)  # [T, B, 2, 8, 8] -> [T, B, 128]


def test_tonic_batch_first_padding_is_refused_with_the_fix():
    x = _batch(batch_first=True)  # [B=3, T, 2, 8, 8]
    assert x.shape[0] == 3 and x.shape[1] > 3
    with pytest.raises(ShapeError, match="batch_first=True"):
        _net()(x)


def test_batch_first_option_equals_time_first_input():
    xb = _batch(batch_first=True)
    xt = _batch(batch_first=False)
    assert torch.equal(xb.transpose(0, 1), xt)
    zt, st = _net()(xt)
    zb, sb = _net(batch_first=True)(xb)
    n_t = xt.shape[0]
    assert zt.shape == (n_t, 3, 10) and zb.shape == (3, n_t, 10)
    assert torch.equal(zb, zt.transpose(0, 1))
    assert torch.equal(sb[2].v, st[2].v)  # states stay [B, ...]
    assert 0 < zt.sum() < zt.numel()


def test_time_first_padded_batch_and_unpadded_batches_pass_the_check():
    to_frame = tonic.transforms.ToFrame(sensor_size=(8, 8, 2), time_window=1000)
    samples = [(torch.as_tensor(to_frame(_recording(d, i)), dtype=torch.float32), 0)
               for i, d in enumerate([5000, 9000, 12000])]  # fmt: skip
    x, _ = ns.data.pad_time(samples)
    _net()(x)  # the padding along time is the time-first signature
    _net()(torch.rand(4, 3, 2, 8, 8))  # no padding: nothing to recognise
    _net(batch_first=False)(_batch(batch_first=True))  # told not to check


def test_sequence_neuron_refuses_two_dimensional_input():
    with pytest.raises(ShapeError, match=r"\.step\(x\)"):
        ns.LIF()(torch.rand(4, 5))
    z, _ = ns.LIF().step(torch.rand(4, 5))  # one time step [B, N] is what step takes
    assert z.shape == (4, 5)


@pytest.mark.parametrize(
    "layer,x",
    [
        (ns.EventLinear(6, 3), torch.rand(4, 2, 5)),
        (ns.SparseEventLinear(6, 3, density=0.5), torch.rand(4, 2, 5)),
        (ns.DeltaLinear(6, 3), torch.rand(4, 2, 5)),
        (ns.DeltaGRU(6, 3), torch.rand(4, 2, 5)),
        (ns.EventConv2d(2, 3, 3), torch.rand(4, 2, 1, 8, 8)),
        (ns.DeltaConv2d(2, 3, 3), torch.rand(4, 2, 1, 8, 8)),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, torch.nn.Module) else "",
)
def test_layers_told_their_feature_size_refuse_other_trailing_shapes(layer, x):
    with pytest.raises(ShapeError, match="features|channels|input_size|\\[T, B"):
        layer(x)


def test_the_padding_check_runs_on_the_first_calls_only():
    net = _net()
    xt, xb = _batch(batch_first=False), _batch(batch_first=True)
    for _ in range(ns.Sequential.LAYOUT_CHECKS - 1):
        net(xt)
    with pytest.raises(ShapeError):
        net(xb)  # the last checked call
    net(xt)
    assert net._layout_checks_left == 0  # later calls pay nothing for the check


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
def test_padding_check_reads_activity_as_any_nonzero(dtype):
    """The check's row activity (|x|'s maximum != 0 for floats) is ``any`` of the row: a
    negative or NaN entry makes a step active, -0.0 does not."""
    from neurosparse._layout import check_not_padded_batch_first

    lengths = [2, 5, 3]
    x = torch.zeros(3, 5, 4, dtype=dtype)  # [B, T, F], zero after each sample's length
    for b, n in enumerate(lengths):
        x[b, :n, b % 4] = -2
    if dtype.is_floating_point:
        x[0, 1, 0] = float("nan")  # NaN inside a sample: the step stays active
    with pytest.raises(ShapeError, match="looks batch-first"):
        check_not_padded_batch_first(x, "test")
    if dtype.is_floating_point:
        x[2, 3:, :] = -0.0  # -0.0 after sample 2's length reads as padding, as any() says
        with pytest.raises(ShapeError, match="zero after 2..5 steps"):
            check_not_padded_batch_first(x, "test")
        x[2, 4, 0] = float("nan")  # a NaN after the length breaks the padding signature
        check_not_padded_batch_first(x, "test")
