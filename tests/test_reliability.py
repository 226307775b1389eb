"""Files cannot run code when loaded (checkpoints), and LIF's edge cases of the time axis."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

import neurosparse as ns
from neurosparse.errors import CheckpointError, ShapeError
from neurosparse.train.checkpoint import FORMAT, atomic_save, load_checkpoint
from neurosparse.train.distributed import rng_state, set_rng_state


class TouchOnLoad:
    """Unpickling this runs ``Path.touch``: stands in for any code a file could run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def trained_state():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model(torch.rand(5, 4)).sum().backward()
    opt.step()
    random.seed(1)
    np.random.seed(2)
    return model, opt, rng_state()


def draws():
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def checkpoint(model, opt, rng):
    return {"format": FORMAT, "step": 3, "model": model.state_dict(),
            "optimizer": opt.state_dict(), "rng": [rng], "history": [{"loss": np.float64(0.5)}],
            "config": {"out": Path("/tmp/x"), "betas": (0.9, 0.99)}}  # fmt: skip


def test_checkpoint_holds_only_tensors_and_plain_types(tmp_path):
    model, opt, rng = trained_state()
    expected = draws()
    path = atomic_save(checkpoint(model, opt, rng), tmp_path / "last.pt")
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
    torch.load(path, weights_only=True)  # what load_checkpoint does, without our decoding
    ckpt = load_checkpoint(path)
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt["model"][k], v)
    assert ckpt["optimizer"]["state"][0]["exp_avg"].equal(opt.state_dict()["state"][0]["exp_avg"])
    assert ckpt["history"][0]["loss"] == 0.5 and ckpt["config"]["betas"] == (0.9, 0.99)
    assert ckpt["config"]["out"] == "/tmp/x"  # paths come back as strings
    set_rng_state(ckpt["rng"][0])  # the RNG state round-trips: same draws as before saving
    assert draws() == expected


def test_checkpoint_written_by_the_older_format_still_resumes(tmp_path):
    model, opt, rng = trained_state()
    expected = draws()
    old = tmp_path / "old.pt"
    torch.save(checkpoint(model, opt, rng), old)  # pickles NumPy arrays as the old code did
    assert torch.serialization.get_unsafe_globals_in_checkpoint(str(old))  # needs numpy
    ckpt = load_checkpoint(old)
    assert isinstance(ckpt["rng"][0]["numpy"][1], np.ndarray)
    set_rng_state(ckpt["rng"][0])
    assert draws() == expected


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "x": TouchOnLoad(marker)}, evil)
    with pytest.raises(CheckpointError, match="trusted=True"):
        load_checkpoint(evil)
    assert not marker.exists()
    load_checkpoint(evil, trusted=True)  # the documented escape hatch does run it
    assert marker.exists()


def test_atomic_save_refuses_what_would_not_load(tmp_path):
    with pytest.raises(CheckpointError, match="TouchOnLoad"):
        atomic_save({"format": FORMAT, "x": TouchOnLoad(tmp_path / "m")}, tmp_path / "c.pt")
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.pt")


def test_lif_refuses_an_empty_sequence_like_torch_rnn():
    with pytest.raises(RuntimeError, match="larger than 0"):  # the torch behaviour we follow
        torch.nn.RNN(3, 4)(torch.zeros(0, 2, 3))
    with pytest.raises(ShapeError, match="T = 0"):
        ns.neurons.LIF()(torch.zeros(0, 2, 3))


@pytest.mark.parametrize("make", [
    lambda: ns.DeltaEncoder(threshold=float("nan")),
    lambda: ns.sdr.KWinners(16, percent_on=float("nan")),
    lambda: ns.SparseEventLinear(8, 8, density=float("nan")),
])  # fmt: skip
def test_range_checks_refuse_nan(make):
    """Every comparison with NaN is false, so a range test alone let a NaN setting in,
    where it silenced a layer (a threshold never crossed) or broke it later."""
    with pytest.raises(ns.errors.ParameterError, match="nan"):
        make()
