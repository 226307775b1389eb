"""Fill the on-disk sample cache in parallel: decode + transform many recordings once.

Each process takes every ``world_size``-th sample (its shard of the work), and its
DataLoader workers decode, transform and write those samples through
:class:`~neurosparse.data.CachedDataset` (one file per sample, written atomically). A
sample already on disk is skipped, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader, Dataset

from ..data import CachedDataset
from ..errors import ParameterError
from .distributed import DistInfo, barrier


def is_cached(ds: CachedDataset, index: int) -> bool:
    # CachedDataset stores sample i as <dir>/<i>.pt (see neurosparse/data/datasets.py).
    return (Path(ds.dir) / f"{index}.pt").exists()


class _Fill(Dataset):
    """Indexing it writes one missing sample to the cache and returns only its index,
    so the workers do not ship whole spike tensors back to the main process."""

    def __init__(self, ds: CachedDataset, todo: list[int]) -> None:
        self.ds, self.todo = ds, todo

    def __len__(self) -> int:
        return len(self.todo)

    def __getitem__(self, k: int) -> int:
        self.ds[self.todo[k]]
        return self.todo[k]


def fill_cache(
    ds: CachedDataset, num_workers: int, info: DistInfo, progress: bool = False
) -> dict[str, int]:
    """Write this rank's missing samples of ``ds``; returns counts for this rank.

    Returns
    -------
    dict
        ``{"written": n, "already_cached": m}`` for this rank's shard.
    """
    if not isinstance(ds, CachedDataset):
        raise ParameterError(
            "preprocessing needs an on-disk cache: set config key 'data.cache_dir'"
        )
    mine = range(info.rank, len(ds), info.world_size)
    todo = [i for i in mine if not is_cached(ds, i)]
    if todo:
        loader = DataLoader(_Fill(ds, todo), batch_size=None, num_workers=num_workers)
        bar = _bar(len(todo), progress and info.is_main, f"caching {Path(ds.dir).name}")
        for _ in loader:
            bar.update(1)
        bar.close()
    barrier(info)
    return {"written": len(todo), "already_cached": len(mine) - len(todo)}


def _bar(total: int, enabled: bool, desc: str):
    from .._progress import progress_bar

    return progress_bar(total=total, enabled=enabled, desc=desc)


__all__ = ["fill_cache", "is_cached"]
