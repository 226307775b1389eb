"""Operation counters of the event layers equal counts made by hand, in both paths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from neurosparse.layers.event_conv2d import EventConv2d
from neurosparse.layers.event_linear import EventLinear


@pytest.mark.parametrize("mode", ["event", "dense"])
def test_linear_hand_count(mode):
    layer = EventLinear(3, 4, mode=mode)
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.5]])  # 2 spikes, 1 graded event
    layer(x)
    assert layer.last_path == mode
    assert layer.op_counts() == {
        "synops": 2 * 4,  # spikes × fan-out
        "macs": 1 * 4,  # graded events × fan-out
        "dense_macs": 2 * 3 * 4,
        "neuron_updates": 0,
        "spikes": 0,
        "events_in": 3,
        "inputs_in": 6,
        "weight_bytes_read": 3 * 4 * 4,  # one float32 weight per op
        "state_bytes_rw": 0,
    }
    layer(x.unsqueeze(0).expand(5, 2, 3))  # counters add up over calls
    assert layer.op_counts()["synops"] == 8 + 5 * 8
    layer.reset_counters()
    assert layer.op_counts()["events_in"] == 0


def test_linear_negative_spikes_count_as_accumulates():
    layer = EventLinear(4, 2, mode="event")
    layer(torch.tensor([[-1.0, 1.0, 0.0, -2.0]]))
    c = layer.op_counts()
    assert (c["synops"], c["macs"], c["events_in"]) == (2 * 2, 1 * 2, 3)


@pytest.mark.parametrize(
    "pixel,stride,expected_outputs",
    [
        ((0, 0), 1, 4),  # corner: a 3x3 kernel with padding 1 reaches 2x2 outputs
        ((2, 2), 1, 9),  # centre: the full footprint
        ((0, 4), 1, 4),  # other corner
        ((0, 2), 1, 6),  # edge
        ((0, 0), 2, 1),  # stride 2 (outputs at 0, 2, 4 of the padded grid)
        ((1, 1), 2, 4),
    ],
)
@pytest.mark.parametrize("mode", ["event", "dense"])
def test_conv_single_spike_hand_count(pixel, stride, expected_outputs, mode):
    layer = EventConv2d(1, 2, 3, stride=stride, padding=1, mode=mode)
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, pixel[0], pixel[1]] = 1.0
    y = layer(x)
    c = layer.op_counts()
    ho = y.shape[-1]
    assert c["synops"] == 2 * expected_outputs
    assert c["macs"] == 0
    assert c["events_in"] == 1 and c["inputs_in"] == 25
    assert c["dense_macs"] == 2 * ho * ho * 1 * 9
    assert c["weight_bytes_read"] == 4 * 2 * expected_outputs


@pytest.mark.parametrize("mode", ["event", "dense"])
def test_conv_counts_equal_a_convolution_of_the_event_mask(mode):
    # Independent count: convolving the event mask with all-ones weights gives, summed,
    # the number of (output, tap) pairs that meet an event -- the synaptic operations.
    torch.manual_seed(0)
    layer = EventConv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 1), groups=2, mode=mode)
    x = (torch.rand(3, 2, 4, 9, 8) < 0.2).float()
    x[x > 0] = torch.tensor([1.0, -1.0, 0.3]).repeat(1000)[: int((x > 0).sum())]
    layer(x)
    ones = torch.ones_like(layer.weight)
    flat = x.flatten(0, 1)

    def ops(mask):
        return int(F.conv2d(mask.float(), ones, None, (2, 1), (1, 1), 1, 2).sum())

    c = layer.op_counts()
    assert c["synops"] == ops(flat.abs() == 1)
    assert c["macs"] == ops((flat != 0) & (flat.abs() != 1))
    assert c["events_in"] == int((x != 0).sum())
    y = layer.to_dense()(flat)
    assert c["dense_macs"] == y.numel() * 2 * 3 * 2


def test_counts_match_between_kernel_and_reference(monkeypatch):
    x = (torch.rand(2, 3, 2, 7, 7) < 0.3).float() * 0.5
    counts = []
    for impl in ("numba", "torch"):
        monkeypatch.setenv("NEUROSPARSE_KERNELS", impl)
        layer = EventConv2d(2, 3, 3, padding=1, mode="event")
        layer(x)
        counts.append(layer.op_counts())
    assert counts[0] == counts[1]
    assert counts[0]["macs"] > 0 and counts[0]["synops"] == 0
