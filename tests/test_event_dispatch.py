"""mode="auto": the event path below the crossover and dense above it; how the crossover
is found (measured here and cached, tables, overrides) and the CUDA model."""

from __future__ import annotations

import json
import math

import pytest
import torch

from neurosparse.layers import dispatch
from neurosparse.layers.event_conv2d import EventConv2d
from neurosparse.layers.event_linear import EventLinear


@pytest.fixture(autouse=True)
def isolated_cache(monkeypatch, tmp_path):
    # never read or write the user's cache from a test
    monkeypatch.setenv("NEUROSPARSE_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("NEUROSPARSE_EVENT_CROSSOVER", raising=False)
    monkeypatch.setattr(dispatch, "_MEASURED", None)
    monkeypatch.setattr(dispatch, "_FIXED", {})


def test_nearest_measured_shape_supplies_the_crossover(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_MEASURE_CROSSOVER", "0")
    monkeypatch.setattr(dispatch, "LINEAR_CPU", [((100, 10, 10), 0.2), ((10**4, 1000, 1000), 0.05)])
    monkeypatch.setitem(dispatch._TABLES, ("linear", "cpu"), dispatch.LINEAR_CPU)
    assert dispatch.crossover("linear", "cpu", (64, 12, 9)) == 0.2
    assert dispatch.crossover("linear", "cpu", (3200, 4096, 4096)) == 0.05
    # a device without a table falls back to the CPU table
    assert dispatch.crossover("linear", "mps", (64, 12, 9)) == 0.2


def test_the_nearest_entry_is_kept_per_shape_but_not_across_a_new_table(monkeypatch):
    monkeypatch.setattr(dispatch, "_NEAREST", {})
    monkeypatch.setattr(dispatch, "CONV_CPU", [((1, 2, 128, 128, 8, 5), 0.3)])
    monkeypatch.setitem(dispatch._TABLES, ("conv2d", "cpu"), dispatch.CONV_CPU)
    shape = (1, 2, 128, 128, 8, 5)
    assert dispatch.crossover("conv2d", "cpu", shape) == 0.3
    assert dispatch._NEAREST[("conv2d", "cpu", shape)] == (dispatch.CONV_CPU, 0.3)
    monkeypatch.setitem(dispatch._TABLES, ("conv2d", "cpu"), [((1, 2, 128, 128, 8, 5), 0.07)])
    assert dispatch.crossover("conv2d", "cpu", shape) == 0.07  # the new table, searched
    monkeypatch.setattr(dispatch, "_FIXED", {("conv2d", "cpu"): 0.5})
    assert dispatch.crossover("conv2d", "cpu", shape) == 0.5  # an override still wins


def test_measured_tables_are_rates():
    for table in dispatch._TABLES.values():
        assert table, "every table holds at least one measurement"
        for shape, rate in table:
            assert all(isinstance(d, int) and d > 0 for d in shape)
            assert 0.0 <= rate <= 1.0  # 0: dense always won, 1: event always won


def test_cpu_crossover_is_measured_once_and_cached(monkeypatch, tmp_path):
    calls = []

    def fake_measure(shape, reps=3):
        calls.append(shape)
        return 0.123

    monkeypatch.setattr(dispatch, "measure_linear_cpu", fake_measure)
    big = (512, 2048, 2048)
    assert dispatch.crossover("linear", "cpu", big) == 0.123
    assert dispatch.crossover("linear", "cpu", (500, 2000, 2100)) == 0.123  # same bucket
    assert calls == [(512, 2048, 2048)]
    files = list(tmp_path.glob("crossover-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text()) == {"9x11x11": 0.123}
    monkeypatch.setattr(dispatch, "_MEASURED", None)  # a new process reads the file
    assert dispatch.crossover("linear", "cpu", big) == 0.123
    assert len(calls) == 1
    # small shapes are not measured: the table answers
    assert dispatch.crossover("linear", "cpu", (8, 64, 64)) in dict(dispatch.LINEAR_CPU).values()
    assert len(calls) == 1


def test_measurement_runs_and_gives_a_rate_in_range(monkeypatch):
    # the real measurement on a small shape (its timings are not asserted): it returns a
    # crossover between 0 and the highest probed rate
    monkeypatch.setattr(dispatch, "_SAMPLE_S", 1e-4)
    rate = dispatch.measure_linear_cpu((64, 256, 256), reps=1)
    assert 0.0 <= rate <= max(dispatch._RATES)


def test_crossover_from_ratios_interpolates_where_the_ratio_passes_one():
    rates = (0.01, 0.1, 1.0)
    # ratio 0.5 at 1 %, 2 at 10 %: in log space the ratio passes 1 halfway -> sqrt(0.001)
    assert dispatch.crossover_from_ratios(rates, [0.5, 2.0]) == pytest.approx(0.1**1.5)
    # exactly 1 counts as a win (the event path was not slower)
    assert dispatch.crossover_from_ratios(rates, [1.0, 1.0, 3.0]) == pytest.approx(0.1)
    # lost at the lowest rate: dense for every input but the all-zero one
    assert dispatch.crossover_from_ratios(rates, [1.3]) == 0.0
    # never lost: the highest rate measured (a lower bound)
    assert dispatch.crossover_from_ratios(rates, [0.1, 0.2, 0.9]) == 1.0
    # a win after the first loss is not trusted; measurement cut short: last win
    assert dispatch.crossover_from_ratios(rates, [0.5, float("inf"), 0.1]) == 0.01
    assert dispatch.crossover_from_ratios(rates, [0.5]) == 0.01
    assert dispatch.crossover_from_ratios(rates, [float("nan")]) == 0.0
    # a target below 1: where the event path takes half the dense time (log-midway here)
    assert dispatch.crossover_from_ratios(rates, [0.25, 1.0], 0.5) == pytest.approx(0.1**1.5)
    # 0.25 -> 0.6 passes 0.5 at log(2) / log(2.4) of the way from 1 % to 10 %
    want = 0.01 * 10 ** (math.log(2) / math.log(2.4))
    assert dispatch.crossover_from_ratios(rates, [0.25, 0.6, 3.0], 0.5) == pytest.approx(want)


def test_measurement_stops_at_the_first_loss_and_auto_follows_it(monkeypatch):
    # a model machine: the event path costs rate / 0.07 of the dense one (crossover 7 %)
    probed = []

    def model_ratio(event, dense, rounds):
        x = event.__defaults__[0]
        rate = float(x.mean())
        probed.append(rate)
        return max(rate, 1e-4) / 0.07

    monkeypatch.setattr(dispatch, "_alternating_ratio", model_ratio)
    got = dispatch.measure_linear_cpu((64, 512, 64))
    assert len(probed) == dispatch._RATES.index(0.1) + 1  # stopped at 10 %, the first loss
    assert 0.05 < got < 0.1 and got == pytest.approx(0.07, rel=0.15)
    monkeypatch.setattr(dispatch, "measure_linear_cpu", lambda shape, reps=5: got)
    shape = (512, 2048, 2048)
    assert dispatch.choose_path("auto", "linear", "cpu", shape, 0.06) == "event"
    assert dispatch.choose_path("auto", "linear", "cpu", shape, 0.08) == "dense"
    monkeypatch.setenv("NEUROSPARSE_EVENT_CROSSOVER", "0.5")  # the documented override
    assert dispatch.choose_path("auto", "linear", "cpu", shape, 0.08) == "event"


def test_alternating_ratio_interleaves_and_takes_the_median(monkeypatch):
    order = []
    clock = iter(range(10**6))
    monkeypatch.setattr(dispatch.time, "perf_counter", lambda: next(clock) * 1e-3)
    monkeypatch.setattr(dispatch, "_SAMPLE_S", 1e-3)  # one call per sample at 1 ms a tick
    ratio = dispatch._alternating_ratio(lambda: order.append("e"), lambda: order.append("d"), 3)
    assert order[4:] == ["e", "d"] * 3  # after warm-up and calibration: e d e d e d
    assert ratio == pytest.approx(1.0)  # every sample one tick long


def test_overrides(monkeypatch):
    monkeypatch.setenv("NEUROSPARSE_MEASURE_CROSSOVER", "0")
    monkeypatch.setenv("NEUROSPARSE_EVENT_CROSSOVER", "0.7")
    assert dispatch.crossover("linear", "cpu", (8, 64, 64)) == 0.7
    assert dispatch.crossover("conv2d", "cuda", (1, 2, 3, 9, 100)) == 0.7
    dispatch.set_crossover("linear", "cpu", 0.01)
    assert dispatch.crossover("linear", "cpu", (8, 64, 64)) == 0.01
    dispatch.set_crossover("linear", "cpu", None)
    assert dispatch.crossover("linear", "cpu", (8, 64, 64)) == 0.7


def test_cuda_model_reads_the_precision():
    prec = torch.get_float32_matmul_precision()
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        torch.set_float32_matmul_precision("highest")
        assert dispatch.dense_precision(torch.float32) == "fp32"
        strict = dispatch.dense_linear_us(4096, 4096, 4096, torch.float32)
        torch.set_float32_matmul_precision("high")
        assert dispatch.dense_precision(torch.float32) == "tf32"
        assert dispatch.dense_linear_us(4096, 4096, 4096, torch.float32) < strict
    finally:
        torch.set_float32_matmul_precision(prec)
        torch.backends.cuda.matmul.allow_tf32 = tf32
    assert dispatch.dense_precision(torch.bfloat16) == "bf16"
    # one row: weight bytes decide, bf16 weights are half the bytes of fp32
    assert dispatch.dense_linear_us(1, 4096, 4096, torch.bfloat16) == pytest.approx(
        dispatch.dense_linear_us(1, 4096, 4096, torch.float32) / 2)


def test_cuda_auto_is_dense_unless_overridden():
    f32 = torch.float32
    for rows in (1, 4, 256):
        assert dispatch.cuda_linear_path("auto", rows, 4096, 4096, f32) == "dense"
    assert dispatch.cuda_linear_path("event", 512, 16, 16, f32) == "event"
    assert dispatch.cuda_linear_path("dense", 1, 8192, 8192, f32) == "dense"
    dispatch.set_crossover("linear", "cuda", 1.0)
    assert dispatch.cuda_linear_path("auto", 512, 16, 16, f32) == "event"
    with pytest.raises(ValueError, match="mode"):
        dispatch.cuda_linear_path("fast", 1, 16, 16, f32)


@pytest.mark.parametrize("rate,path", [(0.02, "event"), (0.5, "dense")])
def test_auto_follows_the_activity(monkeypatch, rate, path):
    monkeypatch.setattr(dispatch, "crossover", lambda op, device, shape: 0.1)
    torch.manual_seed(0)
    lin = EventLinear(200, 10)
    conv = EventConv2d(2, 3, 3, padding=1)
    x = (torch.rand(4, 200) < rate).float()
    xc = (torch.rand(2, 2, 10, 10) < rate).float()
    assert torch.allclose(lin(x), lin.to_dense()(x), atol=1e-5)
    assert torch.allclose(conv(xc), conv.to_dense()(xc), atol=1e-5)
    assert lin.last_path == path and conv.last_path == path


@pytest.mark.parametrize("mode", ["event", "dense"])
def test_forced_modes_ignore_the_activity(mode):
    lin = EventLinear(50, 5, mode=mode)
    for rate in (0.0, 1.0):
        lin((torch.rand(3, 50) < rate).float())
        assert lin.last_path == mode


def test_a_single_small_row_takes_the_dense_path_by_the_table(monkeypatch):
    # a streaming step of 1024 -> 512 at 5 % input: the event path's fixed cost made it
    # 2.3x slower than F.linear when auto took the 0.40 of a 320-row shape
    monkeypatch.setenv("NEUROSPARSE_MEASURE_CROSSOVER", "0")
    assert dispatch.choose_path("auto", "linear", "cpu", (1, 1024, 512), 0.05) == "dense"
    assert dispatch.choose_path("auto", "linear", "cpu", (1, 256, 256), 0.01) == "dense"
    # a single 1024 x 1024 row is already measured on the machine, not looked up
    monkeypatch.setenv("NEUROSPARSE_MEASURE_CROSSOVER", "1")
    calls = []
    monkeypatch.setattr(dispatch, "measure_linear_cpu", lambda shape: calls.append(shape) or 0.3)
    assert dispatch.crossover("linear", "cpu", (1, 1024, 1024)) == 0.3
    assert dispatch.crossover("linear", "cpu", (1, 1024, 512)) == 0.0
    assert calls == [(1, 1024, 1024)]
