"""A ``DistributedSampler`` whose global batches do not depend on the number of processes.

Each epoch is one seeded permutation of the dataset (the same on every rank, as in
``DistributedSampler``). Step ``s`` of the epoch uses positions
``[s * G, (s + 1) * G)`` of it, ``G = batch_size * world_size``, dealt round-robin
to the ranks. So:

- W processes with batch B see, together, exactly the samples one process sees with
  batch W * B (what lets a test hold DDP to a single-process run);
- a run can resume part-way through an epoch, even on another number of processes:
  it skips the ``start`` samples already used and continues with the same order.

The tail that does not fill a whole global batch is left out of the epoch
(``drop_last``), so every step has the same batch size on every rank.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler


class GlobalBatchSampler(DistributedSampler):
    """Indices of one rank for one epoch; ``set_epoch`` and ``set_start`` before iterating.

    Parameters
    ----------
    dataset, num_replicas, rank, seed
        As for ``DistributedSampler``.
    batch_size
        Per-process batch size; with ``shuffle=False`` and ``batch_size=None`` every
        sample is used once (for evaluation: ranks may get one sample more or less).
    shuffle
        Permute each epoch with ``seed + epoch``.
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int,
        rank: int,
        batch_size: int | None,
        shuffle: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__(dataset, num_replicas, rank, shuffle=shuffle, seed=seed)
        self.batch_size = batch_size
        self.start = 0

    @property
    def global_batch(self) -> int:
        return (self.batch_size or 1) * self.num_replicas

    def steps_per_epoch(self, start: int = 0) -> int:
        """Whole global batches left in an epoch after ``start`` samples."""
        return (len(self.dataset) - start) // self.global_batch

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples of the epoch's order (a resumed epoch)."""
        self.start = int(start)

    def _order(self) -> list[int]:
        n = len(self.dataset)
        if not self.shuffle:
            return list(range(n))
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return torch.randperm(n, generator=g).tolist()

    def _positions(self) -> range:
        if self.batch_size is None:
            return range(self.start, len(self.dataset))
        end = self.start + self.steps_per_epoch(self.start) * self.global_batch
        return range(self.start, end)

    def __iter__(self) -> Iterator[int]:
        order, pos = self._order(), self._positions()
        return iter([order[i] for i in pos[self.rank :: self.num_replicas]])

    def __len__(self) -> int:
        return len(self._positions()[self.rank :: self.num_replicas])


__all__ = ["GlobalBatchSampler"]
