"""``neurosparse report`` and the named samples it reads."""

import json
from pathlib import Path

import pytest
import torch

from neurosparse.cli import main
from neurosparse.data import load_sample
from neurosparse.data.fetch_recordings import data_dir, missing_reason
from neurosparse.errors import ParameterError

ROOT = Path(__file__).resolve().parent.parent
NMNIST = data_dir() / "nmnist"


def test_synthetic_sample_shape_and_determinism():
    a, b = load_sample("synthetic-dvs:3"), load_sample("synthetic-dvs:3")
    assert a.shape == (20, 3, 2, 32, 32)
    assert torch.equal(a, b)
    assert 0.01 < a.mean().item() < 0.5


@pytest.mark.skipif(not NMNIST.is_dir(), reason=str(missing_reason("nmnist")))
def test_nmnist_sample_counts_events():
    from neurosparse.data import NMNIST as Dataset

    x = load_sample(f"nmnist:{NMNIST}:2")
    assert x.shape[1:] == (2, 2, 34, 34)
    ds = Dataset(NMNIST, train=False)
    # binary 1 ms bins: at most one spike per pixel per bin, so <= the event count
    for b in range(2):
        assert 0 < x[:, b].sum().item() <= len(ds[b][0])


def test_unknown_sample_names():
    with pytest.raises(ParameterError, match="unknown sample"):
        load_sample("cifar-sample")
    with pytest.raises(ParameterError, match="positive integer"):
        load_sample("synthetic-dvs:0")


def test_report_command_counts_first_layer_exactly(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = main(["report", f"{ROOT}/examples/report_model.py:build", "--data", "synthetic-dvs:4",
                 "--hardware", "loihi,cpu-45nm", "--json", str(out), "--plot",
                 str(tmp_path / "r.png")])
    assert code == 0
    rep = json.loads(out.read_text())
    x = load_sample("synthetic-dvs:4")
    first = next(layer for layer in rep["layers"] if layer["type"] == "Linear")
    # every input spike triggers one accumulate per output unit (128)
    assert first["totals"]["synops"] == int(x.sum().item()) * 128
    assert first["totals"]["dense_macs"] == x.numel() * 128
    lif = next(layer for layer in rep["layers"] if layer["type"] == "LIF")
    assert lif["state_vars"] == 1
    assert {h["name"] for h in rep["hardware"]} >= {"loihi", "cpu-45nm"}
    assert (tmp_path / "r.png").stat().st_size > 1000
