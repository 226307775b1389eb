"""neurosparse.train loop: DDP equals one process on the whole batch; resume is exact;
a crash while saving keeps the last good checkpoint.

The 2-process run goes through the real entry point (``torchrun`` = ``python -m
torch.distributed.run``, gloo on CPU) in a subprocess, one thread per process.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neurosparse.train import load_checkpoint, train
from neurosparse.train.checkpoint import atomic_save
from neurosparse.train.config import load_config
from neurosparse.train.models import build_model

ROOT = Path(__file__).resolve().parent.parent

# 32 generated 8x8 recordings, 6 time bins, a 12-unit hidden layer: a step is milliseconds.
TINY = ["--data.kind", "synthetic", "--data.n_train", "32", "--data.n_test", "8",
        "--data.n_classes", "4", "--data.sensor", "8,8,2", "--data.time_bins", "6",
        "--data.dt_us", "5000", "--data.num_workers", "0", "--model.hidden", "12",
        "--train.lr", "0.01", "--train.log_every", "2", "--train.eval", "false",
        "--threads", "1", "--progress", "false", "--device", "cpu"]  # fmt: skip


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def tiny(tmp: Path, *flags: str):
    return load_config(None, [*TINY, "--output-dir", str(tmp), *flags])


def params(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].float() - b[k].float()).abs().max()) for k in a)


@pytest.mark.parametrize("layer", ["dense", "event"])
def test_ddp_two_gloo_processes_match_one_process_on_the_whole_batch(tmp_path, layer):
    if layer == "event":
        pytest.importorskip("neurosparse.layers.event_conv2d", reason="event layers not present")
    steps = ["--train.max_steps", "3", "--resume", "never", "--model.layer", layer]
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1", "PYTHONPATH": path}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "neurosparse.train", *TINY, "--data.batch_size", "4",
           "--output-dir", str(tmp_path / "ddp"), *steps]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    assert ddp["world_size"] == 2 and ddp["step"] == 3

    single = train(tiny(tmp_path / "one", "--data.batch_size", "8", *steps))
    half = train(tiny(tmp_path / "half", "--data.batch_size", "4", *steps))
    torch.manual_seed(0)  # the run's seed: its initial weights
    start = build_model(tiny(tmp_path, "--model.layer", layer).model, (2, 8, 8), 4)

    ref = params(single.model)
    assert max_diff(ddp["model"], ref) < 1e-5
    # The comparison can fail: training moved the weights, and a run on half the
    # batch (what one rank sees alone) ends elsewhere.
    assert max_diff(params(start), ref) > 1e-3
    assert max_diff(params(half.model), ref) > 1e-4
    metrics = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["backend"] == "gloo"
    assert len(metrics["param_checksums"]) == 2 and metrics["params_identical_on_all_ranks"]
    kinds = {type(m).__name__ for m in single.model.modules()}
    assert ("EventLinear" in kinds) == (layer == "event")


class Killed(Exception):
    pass


def kill_at(step: int):
    def hook(s: int) -> None:
        if s == step:
            raise Killed(f"simulated kill after step {s}")

    return hook


@pytest.mark.parametrize("kill_step", [4, 5])
def test_resume_after_kill_equals_uninterrupted_run(tmp_path, kill_step):
    # 4 steps per epoch (32 samples / batch 8), checkpoints every 3 steps and at epoch ends:
    # killed after step 4 -> resumes from the mid-epoch checkpoint of step 3;
    # killed after step 5 -> resumes from the epoch-end checkpoint of step 4.
    flags = ["--data.batch_size", "8", "--train.epochs", "2", "--train.max_steps", "7",
             "--train.checkpoint_every", "3", "--train.eval", "true"]  # fmt: skip
    full = train(tiny(tmp_path / "full", *flags))
    assert full.step == 7

    run_dir = tmp_path / "killed"
    with pytest.raises(Killed):
        train(tiny(run_dir, *flags), on_step=kill_at(kill_step))
    saved = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert saved["step"] == {4: 3, 5: 4}[kill_step]
    resumed = train(tiny(run_dir, *flags))  # resume = "auto" finds last.pt
    assert resumed.metrics["resumed_from"] is not None and resumed.step == 7

    a, b = params(full.model), params(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed parameters differ"
    opt_a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")["optimizer"]
    opt_b = load_checkpoint(run_dir / "checkpoints" / "last.pt")["optimizer"]
    for k, st in opt_a["state"].items():
        assert all(torch.equal(st[n], opt_b["state"][k][n]) for n in st)
    assert full.metrics["test_accuracy"] == resumed.metrics["test_accuracy"]


def test_atomic_save_crash_midway_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "ck" / "last.pt"
    atomic_save({"format": 1, "step": 1, "w": torch.arange(5.0)}, path)
    real_save = torch.save

    def broken_save(obj, f, *a, **k):
        real_save(obj, f, *a, **k)
        f.seek(0)
        f.truncate(40)  # half a file on disk, then the process "dies"
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="simulated"):
        atomic_save({"format": 1, "step": 2, "w": torch.zeros(5)}, path)
    monkeypatch.undo()
    ck = load_checkpoint(path)
    assert ck["step"] == 1 and torch.equal(ck["w"], torch.arange(5.0))
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temp left


def test_crash_during_training_checkpoint_leaves_last_good_one_resumable(tmp_path, monkeypatch):
    flags = ["--data.batch_size", "8", "--train.max_steps", "3", "--train.checkpoint_every", "1"]
    real_save, calls = torch.save, []

    def save_fails_second_time(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            f.write(b"\x80\x02partial")
            raise KeyboardInterrupt  # a kill arrives in the middle of the write
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save_fails_second_time)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(tmp_path / "run", *flags))
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["step"] == 1
    resumed = train(tiny(tmp_path / "run", *flags))
    full = train(tiny(tmp_path / "full", *flags))
    a, b = params(full.model), params(resumed.model)
    assert resumed.metrics["resumed_from"] and all(torch.equal(a[k], b[k]) for k in a)


def test_compile_failure_falls_back_to_eager_with_a_warning(tmp_path, monkeypatch):
    flags = ["--data.batch_size", "8", "--train.max_steps", "2"]
    eager = train(tiny(tmp_path / "eager", *flags))

    def broken_compile(model, **kw):
        def call(*a, **k):
            raise RuntimeError("custom autograd Function not supported (simulated)")

        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match="torch.compile failed, running eager"):
        fell_back = train(tiny(tmp_path / "c", *flags, "--compile"))
    assert fell_back.metrics["compiled"] is False
    assert "simulated" in fell_back.metrics["compile_note"]
    assert fell_back.metrics["param_checksums"] == eager.metrics["param_checksums"]


def test_compiled_model_trains_like_eager(tmp_path):
    # Dynamo traces the model (graph breaks around the fused neuron op); the "eager"
    # backend runs the captured graphs unchanged, so the numbers must match eager mode.
    flags = ["--data.batch_size", "8", "--train.max_steps", "2"]
    eager = train(tiny(tmp_path / "eager", *flags))
    comp = train(tiny(tmp_path / "c", *flags, "--compile", "--compile_backend", "eager"))
    assert comp.metrics["compiled"] is True and comp.metrics["compile_note"] is None
    assert max_diff(params(comp.model), params(eager.model)) < 1e-6


def test_resume_mid_window_restores_rng_and_train_metrics_exactly(tmp_path):
    # Killed after step 4, the run resumes from the step-3 checkpoint, inside a logging
    # window (log_every 2: the entry of step 4 covers steps 3 and 4). The resumed run must
    # end with the same history (that entry included) and the same global RNG state;
    # a fresh DataLoader iterator must not draw from that RNG.
    flags = ["--data.batch_size", "8", "--train.epochs", "2", "--train.max_steps", "7",
             "--train.checkpoint_every", "3", "--train.eval", "true"]  # fmt: skip
    full = train(tiny(tmp_path / "full", *flags))
    run_dir = tmp_path / "killed"
    with pytest.raises(Killed):
        train(tiny(run_dir, *flags), on_step=kill_at(4))
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 3
    resumed = train(tiny(run_dir, *flags))
    assert resumed.metrics["history"] == full.metrics["history"]
    assert resumed.metrics["train_loss"] == full.metrics["train_loss"]
    a = load_checkpoint(tmp_path / "full" / "checkpoints" / "last.pt")
    b = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    assert torch.equal(a["rng"][0]["torch"], b["rng"][0]["torch"])
    assert a["rng"][0]["python"] == b["rng"][0]["python"]
    assert a["history"] == b["history"] and a["window"] == b["window"]


def test_epoch_end_checkpoint_written_when_periodic_one_fell_on_same_step(tmp_path):
    # 4 steps per epoch and checkpoint_every 4: the periodic save of step 4 comes before
    # the epoch end; the epoch-end save of the same step (epoch 1, test accuracy) must
    # still be written, not skipped as "step 4 already saved".
    flags = ["--data.batch_size", "8", "--train.epochs", "2", "--train.checkpoint_every", "4",
             "--train.eval", "true"]  # fmt: skip
    with pytest.raises(Killed):
        train(tiny(tmp_path, *flags), on_step=kill_at(5))
    saved = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert (saved["step"], saved["epoch"], saved["consumed"]) == (4, 1, 0)
    assert saved["test_accuracy"] is not None
    assert saved["history"][-1] == {"step": 4, "epoch": 1,
                                    "test_accuracy": saved["test_accuracy"]}  # fmt: skip


def test_reported_test_accuracy_is_that_of_the_returned_model(tmp_path):
    # max_steps = 6 stops inside the second epoch (4 steps each): the reported accuracy
    # must be the final model's, recounted here by hand over all 9 test samples (2
    # processes would split them 5 + 4), not the stale one of the step-4 epoch end.
    from neurosparse.train.data import build_data

    cfg = tiny(tmp_path, "--data.batch_size", "8", "--data.n_test", "9", "--train.epochs", "3",
               "--train.max_steps", "6", "--train.eval", "true")  # fmt: skip
    res = train(cfg)
    data = build_data(cfg.data, cfg.seed)
    x, y = data.collate([data.test[i] for i in range(len(data.test))])
    res.model.eval()
    with torch.no_grad():
        correct = int((res.model(x).sum(0).argmax(1) == y).sum())
    assert res.step == 6 and res.metrics["test_accuracy"] == correct / 9
    assert res.metrics["history"][-1] == {"step": 6, "epoch": 1, "test_accuracy": correct / 9}
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["test_accuracy"] == correct / 9


@pytest.mark.parametrize(
    "flags, key",
    [
        (["--train.lr", "0.02"], "train.lr"),
        (["--model.hidden", "13"], "model.hidden"),
        (["--seed", "1"], "seed"),
        (["--data.batch_size", "4"], "global batch"),
        (["--train.optimizer", "sgd"], "train.optimizer"),
    ],
)
def test_resume_from_another_experiment_is_refused(tmp_path, flags, key):
    from neurosparse.errors import CheckpointError

    base = ["--data.batch_size", "8", "--train.max_steps", "2"]
    first = train(tiny(tmp_path, *base))
    before = (tmp_path / "checkpoints" / "last.pt").read_bytes()
    # Loaded, the old optimizer state would bring back the old lr etc. while the
    # metrics record the new config; hidden 13 would fail half-way through load_state_dict.
    with pytest.raises(CheckpointError, match=key):
        train(tiny(tmp_path, *base, *flags))
    assert (tmp_path / "checkpoints" / "last.pt").read_bytes() == before
    # the length of the run may change: that resumes
    longer = train(tiny(tmp_path, "--data.batch_size", "8", "--train.max_steps", "3"))
    assert longer.metrics["resumed_checksum"] == first.metrics["param_checksums"][0]
