"""Datasets for ``neurosparse.train``: what ``[data]`` names, as spike tensors.

``kind``:

- ``synthetic``: :class:`~neurosparse.data.SyntheticDVS` moving bars (generated, no
  files), binned by :class:`~neurosparse.data.ToSpikeTensor` -- runs anywhere;
- ``nmnist``: :class:`~neurosparse.data.NMNIST` from ``root`` (``Train/``, ``Test/``);
- ``random``: Bernoulli spike frames (rate ``spike_rate``, a brighter row band per
  class so the task is learnable) for throughput runs. A pool of ``pool_size``
  samples is generated once and kept on the training device as bytes, so the timed
  loop measures the network and the gradient exchange, not the CPU data pipeline.

With ``cache_dir`` set, samples pass through the data package's on-disk cache
(:class:`~neurosparse.data.CachedDataset`, one file per sample, written atomically):
the first epoch, or ``--preprocess-only``, fills it; later epochs and runs read it.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..data import NMNIST, CachedDataset, SyntheticDVS, ToSpikeTensor, pad_time
from .config import DataConfig


@dataclass
class DataBundle:
    """The datasets of a run and how a loader batch becomes ``(x [T, B, ...], y [B])``."""

    train: Dataset
    test: Dataset | None
    n_classes: int
    input_shape: tuple[int, ...]  # one time step of one sample, [C, H, W]
    collate: Callable[[list[Any]], Any]


def batch_to_device(dataset: Dataset, batch: Any, device: torch.device):
    """A loader batch of ``dataset`` as ``(x [T, B, ...] float32, labels [B])`` on ``device``."""
    if isinstance(dataset, RandomSpikes):
        return dataset.to_device(batch, device)
    x, y = batch
    return x.to(device, non_blocking=True), y.to(device, non_blocking=True)


class RandomSpikes(Dataset):
    """``(index, label)`` items; the spike frames are rows of a pool on the device.

    Sample ``i`` is pool row ``i % P`` with label ``i % n_classes`` (``P`` is a multiple
    of ``n_classes``, so the two agree). Row ``r`` fires with probability
    ``spike_rate`` everywhere and ``3 * spike_rate`` in horizontal band ``r % n_classes``.
    """

    def __init__(self, n: int, n_classes: int, sensor: tuple[int, int, int], time_bins: int,
                 rate: float, pool_size: int, seed: int) -> None:  # fmt: skip
        self.n, self.n_classes = n, n_classes
        self.sensor, self.time_bins, self.rate, self.seed = sensor, time_bins, rate, seed
        self.pool_rows = -(-min(pool_size, n) // n_classes) * n_classes
        self._pools: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[int, int]:
        return index, index % self.n_classes

    def _row(self, r: int) -> torch.Tensor:
        w, h, c = self.sensor
        p = torch.full((c, h, w), self.rate)
        k = r % self.n_classes
        p[:, k * h // self.n_classes : (k + 1) * h // self.n_classes] *= 3
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + r)
        return torch.rand((self.time_bins, c, h, w), generator=g) < p.clamp(max=1.0)

    def pool(self, device: torch.device) -> torch.Tensor:
        """The pool ``[P, T, C, H, W]`` (bool) on ``device``, made on first use."""
        key = str(device)
        if key not in self._pools:
            rows = [self._row(r).to(device) for r in range(self.pool_rows)]
            self._pools[key] = torch.stack(rows)
        return self._pools[key]

    def to_device(self, batch, device: torch.device):
        idx, y = batch
        # non_blocking: a blocking host->device copy would wait for the previous step
        idx, y = idx.to(device, non_blocking=True), y.to(device, non_blocking=True)
        pool = self.pool(device)
        return pool[idx % pool.shape[0]].transpose(0, 1).contiguous().float(), y

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers need the indices only, never the device pool.
        return {**self.__dict__, "_pools": {}}


def _cache_key(cfg: DataConfig, split: str, seed: int) -> str:
    # What identifies a cached sample: source, split, binning -- not batch size etc.
    keys = ("kind", "n_train", "n_test", "n_classes", "sensor", "time_bins", "dt_us")
    ident = {k: v for k, v in asdict(cfg).items() if k in keys}
    if cfg.kind == "nmnist":
        ident["root"] = str(Path(cfg.root).resolve())
        ident.pop("n_train"), ident.pop("n_test"), ident.pop("n_classes"), ident.pop("sensor")
    ident.update(split=split, seed=seed)
    text = json.dumps(ident, sort_keys=True)
    return f"{cfg.kind}-{split}-" + hashlib.sha1(text.encode()).hexdigest()[:12]


def build_data(cfg: DataConfig, seed: int) -> DataBundle:
    """The train / test datasets that ``cfg`` describes."""
    if cfg.kind == "random":
        if cfg.cache_dir:
            warnings.warn("data.cache_dir is ignored for data.kind = 'random' (nothing to decode)",
                          RuntimeWarning, stacklevel=2)  # fmt: skip
        w, h, c = cfg.sensor
        args = ((w, h, c), cfg.time_bins, cfg.spike_rate, cfg.pool_size)
        train = RandomSpikes(cfg.n_train, cfg.n_classes, *args, seed=seed)
        test = RandomSpikes(cfg.n_test, cfg.n_classes, *args, seed=seed + 1)
        collate = torch.utils.data.default_collate
        return DataBundle(train, test, cfg.n_classes, (c, h, w), collate)
    if cfg.kind == "synthetic":
        size = tuple(cfg.sensor)
        tf = ToSpikeTensor(sensor_size=size, dt_us=cfg.dt_us, n_time_bins=cfg.time_bins,
                           start_time=0)  # fmt: skip
        duration = cfg.dt_us * cfg.time_bins
        train = SyntheticDVS(cfg.n_train, cfg.n_classes, size, duration, seed=seed, transform=tf)
        test = SyntheticDVS(cfg.n_test, cfg.n_classes, size, duration, seed=seed + 1,
                            transform=tf)  # fmt: skip
        n_classes = cfg.n_classes
    else:  # nmnist
        size = NMNIST.sensor_size
        tf = ToSpikeTensor(sensor_size=size, dt_us=cfg.dt_us, n_time_bins=cfg.time_bins,
                           start_time=0)  # fmt: skip
        train = NMNIST(cfg.root, train=True, transform=tf)
        test = NMNIST(cfg.root, train=False, transform=tf)
        n_classes = 10
    if cfg.cache_dir:
        train = CachedDataset(train, cfg.cache_dir, key=_cache_key(cfg, "train", seed))
        test = CachedDataset(test, cfg.cache_dir, key=_cache_key(cfg, "test", seed))
    return DataBundle(train, test, n_classes, (size[2], size[1], size[0]), pad_time)


__all__ = ["DataBundle", "RandomSpikes", "build_data", "batch_to_device"]
