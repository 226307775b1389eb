"""The demo's training loop really learns, and its generated data behaves like a DVS."""

import numpy as np
import pytest
import torch

from neurosparse.data import SyntheticDVS
from neurosparse.demo import DemoConfig, run_demo


def test_demo_loop_learns_well_above_chance():
    # seeds 0, 1, 2 of this configuration measured 0.75, 0.87, 0.96 test accuracy
    # (chance 0.125); 0.5 leaves a wide margin for platform differences.
    res = run_demo(DemoConfig(n_train=512, n_test=256, epochs=3, seed=0), progress=False)
    assert res.chance == pytest.approx(1 / 8)
    assert res.accuracy >= 0.5
    assert set(res.spike_rates) == {"2:LIF", "4:LIF"}
    assert all(0.0 < r < 1.0 for r in res.spike_rates.values())


def test_synthetic_dvs_is_deterministic_and_valid():
    ds = SyntheticDVS(16, n_classes=4, sensor_size=(24, 20, 2), duration_us=50_000, seed=3)
    a, b = ds.events(5), SyntheticDVS(16, 4, (24, 20, 2), 50_000, seed=3).events(5)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, SyntheticDVS(16, 4, (24, 20, 2), 50_000, seed=4).events(5))
    for i in range(8):
        ev = ds.events(i)
        assert ev.sensor_size == (24, 20, 2)
        assert np.all(np.diff(ev["t"]) >= 0)
        assert ev["t"].min() >= 0 and ev["t"].max() < 50_000
        assert ev["x"].max() < 24 and ev["y"].max() < 20 and ev["x"].min() >= 0
        assert set(np.unique(ev["p"])) <= {0, 1}
        assert len(ev) > 500
    assert [ds.label(i) for i in range(8)] == [0, 1, 2, 3, 0, 1, 2, 3]


def test_synthetic_motion_direction_matches_label():
    """The event centroid moves along the labelled direction (x right for class 0, ...)."""
    ds = SyntheticDVS(8, n_classes=4, noise_rate_hz=0.0, seed=0)
    expected = {0: (1, 0), 1: (0, 1), 2: (-1, 0), 3: (0, -1)}
    for i in range(8):
        ev = ds.events(i)
        early = ev[ev["t"] < 40_000]
        late = ev[ev["t"] >= 60_000]
        dx = late["x"].mean() - early["x"].mean()
        dy = late["y"].mean() - early["y"].mean()
        ex, ey = expected[ds.label(i)]
        assert dx * ex + dy * ey > 3.0  # moved several pixels the right way


def test_synthetic_bad_arguments():
    from neurosparse.errors import ParameterError

    with pytest.raises(ParameterError, match="sensor_size"):
        SyntheticDVS(sensor_size=(32, 32, 1))
    with pytest.raises(ParameterError, match="n_classes"):
        SyntheticDVS(n_classes=1)
    with pytest.raises(IndexError):
        SyntheticDVS(4).events(4)


def test_cli_info_lists_kernels(capsys):
    from neurosparse.cli import main

    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "lif_sequence" in out and "numba" in out
    assert torch.__version__ in out


def test_progress_bars_redraw_rarely_in_a_log_file():
    # a log file keeps every redraw: off a terminal the bar is drawn at most every 30 s,
    # on a terminal as often as tqdm likes; disabled bars draw nothing
    import io

    from neurosparse._progress import LOG_INTERVAL_S, progress_bar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    log = io.StringIO()
    bar = progress_bar(total=1000, file=log, desc="x")
    assert bar.mininterval == LOG_INTERVAL_S == 30.0
    for _ in range(1000):
        bar.update(1)
    bar.close()
    assert log.getvalue().count("\r") <= 3  # first draw, final draw, close
    term = progress_bar(total=10, file=Terminal(), desc="x")
    assert term.mininterval < 1.0
    term.close()
    quiet = io.StringIO()
    off = progress_bar(range(5), enabled=False, file=quiet)
    assert list(off) == list(range(5)) and quiet.getvalue() == ""
