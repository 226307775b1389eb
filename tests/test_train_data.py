"""neurosparse.train data side: global batches, the parallel resumable cache, the
throughput dataset, and the model builder's event-layer option."""

import os

import numpy as np
import pytest
import torch

from neurosparse.data import NMNIST, CachedDataset, ToSpikeTensor, make_events, write_nmnist
from neurosparse.train import build_model, train
from neurosparse.train.config import ModelConfig, load_config
from neurosparse.train.data import RandomSpikes, build_data
from neurosparse.train.distributed import DistInfo
from neurosparse.train.preprocess import fill_cache, is_cached
from neurosparse.train.sampler import GlobalBatchSampler


@pytest.fixture(autouse=True)
def _restore_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def rank_batches(n, world, batch, epoch=0, start=0):
    """Per step: the union of the ranks' batches, each rank's list kept."""
    per_rank = []
    for r in range(world):
        s = GlobalBatchSampler(range(n), world, r, batch, shuffle=True, seed=5)
        s.set_epoch(epoch)
        s.set_start(start)
        idx = list(s)
        assert len(idx) == len(s)
        per_rank.append([idx[k : k + batch] for k in range(0, len(idx), batch)])
    return [sorted(sum((p[k] for p in per_rank), [])) for k in range(len(per_rank[0]))]


def test_global_batches_do_not_depend_on_the_number_of_processes():
    one = rank_batches(50, 1, 12)
    two = rank_batches(50, 2, 6)
    four = rank_batches(50, 4, 3)
    assert one == two == four and len(one) == 50 // 12  # the incomplete tail is left out
    order = torch.randperm(50, generator=torch.Generator().manual_seed(5)).tolist()
    assert one[1] == sorted(order[12:24])  # step 1 = positions 12..23 of the epoch's order
    assert rank_batches(50, 1, 12, epoch=1) != one  # a new order every epoch


def test_sampler_resumes_mid_epoch_on_another_world_size():
    full = rank_batches(48, 2, 4)  # 6 steps of 8 samples
    # 3 steps done by 2 processes = 24 samples; resume on 1 process with batch 8.
    assert rank_batches(48, 1, 8, start=24) == full[3:]


def test_random_spikes_are_deterministic_labelled_and_learnable():
    ds = RandomSpikes(40, 4, (12, 8, 2), 30, rate=0.05, pool_size=10, seed=1)
    assert ds.pool_rows == 12  # rounded up to a multiple of n_classes
    x, y = ds.to_device(torch.utils.data.default_collate([ds[i] for i in range(8)]), "cpu")
    assert x.shape == (30, 8, 2, 8, 12) and x.dtype == torch.float32
    assert y.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    again = RandomSpikes(40, 4, (12, 8, 2), 30, rate=0.05, pool_size=10, seed=1)
    assert torch.equal(again.pool("cpu"), ds.pool("cpu"))
    # label k: rows 2k, 2k+1 (of 8) fire at 3x the rate elsewhere
    for b in range(8):
        k = int(y[b])
        band = x[:, b, :, 2 * k : 2 * k + 2].mean()
        rest = torch.cat([x[:, b, :, : 2 * k], x[:, b, :, 2 * k + 2 :]], dim=2).mean()
        assert 2.0 < float(band / rest) < 4.5


@pytest.fixture
def nmnist_root(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("Train", 6), ("Test", 2)):
        for digit in (0, 1):
            os.makedirs(tmp_path / split / str(digit))
            for i in range(n // 2):
                m = 300
                ev = make_events(np.sort(rng.integers(0, 60_000, m)), rng.integers(0, 34, m),
                                 rng.integers(0, 34, m), rng.integers(0, 2, m))  # fmt: skip
                write_nmnist(tmp_path / split / str(digit) / f"{i:05d}.bin", ev)
    return tmp_path


def test_fill_cache_parallel_resumable_and_sharded(nmnist_root, tmp_path):
    cfg = load_config(None, ["--data.kind", "nmnist", "--data.root", str(nmnist_root),
                             "--data.cache_dir", str(tmp_path / "cache"),
                             "--data.time_bins", "6", "--data.dt_us", "10000"])  # fmt: skip
    data = build_data(cfg.data, cfg.seed)
    ds = data.train
    assert isinstance(ds, CachedDataset) and len(ds) == 6
    one = DistInfo(0, 1, 0, torch.device("cpu"), None)
    # rank 1 of 2 fills only its shard (odd samples)
    odd = fill_cache(ds, 0, DistInfo(1, 2, 1, torch.device("cpu"), None))
    assert odd == {"written": 3, "already_cached": 0}
    assert [is_cached(ds, i) for i in range(6)] == [False, True] * 3
    # two DataLoader workers fill the rest; nothing already cached is redone
    assert fill_cache(ds, 2, one) == {"written": 3, "already_cached": 3}
    direct = NMNIST(nmnist_root, train=True,
                    transform=ToSpikeTensor(NMNIST.sensor_size, dt_us=10000, n_time_bins=6,
                                            start_time=0))  # fmt: skip
    for i in range(6):
        x, y = torch.load(ds.dir / f"{i}.pt", weights_only=False)
        x0, y0 = direct[i]
        assert torch.equal(x, x0) and y == y0 and x.shape == (6, 2, 34, 34)
    # an interrupted fill: two samples lost; only they are written again
    os.remove(ds.dir / "1.pt")
    os.remove(ds.dir / "4.pt")
    kept = {i: os.stat(ds.dir / f"{i}.pt").st_mtime_ns for i in (0, 2, 3, 5)}
    assert fill_cache(ds, 2, one) == {"written": 2, "already_cached": 4}
    assert all(os.stat(ds.dir / f"{i}.pt").st_mtime_ns == t for i, t in kept.items())
    assert torch.equal(torch.load(ds.dir / "4.pt", weights_only=False)[0], direct[4][0])


def test_training_from_the_cache_equals_training_from_the_files(nmnist_root, tmp_path):
    base = ["--data.kind", "nmnist", "--data.root", str(nmnist_root), "--data.time_bins", "6",
            "--data.dt_us", "10000", "--data.batch_size", "2", "--model.hidden", "8",
            "--train.max_steps", "3", "--train.eval", "false", "--threads", "1",
            "--progress", "false", "--resume", "never", "--device", "cpu"]  # fmt: skip
    plain = train(load_config(None, [*base, "--output-dir", str(tmp_path / "a")]))
    cached = train(load_config(None, [*base, "--output-dir", str(tmp_path / "b"),
                                      "--data.cache_dir", str(tmp_path / "c")]))  # fmt: skip
    assert plain.metrics["param_checksums"] == cached.metrics["param_checksums"]
    assert len(list((tmp_path / "c").rglob("*.pt"))) == 6  # every train sample went through it


@pytest.mark.parametrize("arch, shape", [("mlp", (2, 10, 10)), ("conv", (2, 32, 32))])
def test_event_layer_model_equals_dense_model(arch, shape):
    kw = {"arch": arch, "hidden": 16, "channels": [4, 8], "pool": 2, "threshold": 0.2}
    torch.manual_seed(0)
    dense = build_model(ModelConfig(**kw), shape, 3)
    torch.manual_seed(0)
    event = build_model(ModelConfig(**kw, layer="event"), shape, 3)
    kinds = [type(m).__name__ for m in event.modules()]
    n_event = kinds.count("EventLinear") + kinds.count("EventConv2d")
    assert n_event == (3 if arch == "conv" else 2) and "Linear" not in kinds
    x = (torch.rand(10, 2, *shape) < 0.2).float()
    a, b = dense(x), event(x)
    assert a.shape == (10, 2, 3) and a.sum() > 0
    assert torch.equal(a, b)
    # Sequence-mode neurons start from rest on every call: no state leaks between
    # batches, nor between the samples of one batch.
    event(torch.ones_like(x))
    assert torch.equal(event(x), b)
    assert torch.equal(dense(x[:, 1:]), a[:, 1:])
    a.sum().backward()
    b.sum().backward()
    for (n, p), (_, q) in zip(dense.named_parameters(), event.named_parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), n
