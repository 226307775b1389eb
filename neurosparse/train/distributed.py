"""Process-group setup and the few collectives the training loop needs.

``torchrun`` (or any launcher that sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) gives several processes; without it the run is one
process and no process group is created, so the same entry point works everywhere.
NCCL serves CUDA devices, gloo the CPU.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from ..errors import DeviceError


@dataclass
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None: single process, no process group
    owns_group: bool = False  # this module created the group and must destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """True when a process group exists (collectives are needed)."""
        return self.backend is not None


def _pick_device(choice: str, local_rank: int) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise DeviceError("config key 'device' is 'cuda' but torch sees no CUDA device")
        if local_rank >= torch.cuda.device_count():
            raise DeviceError(
                f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA devices "
                "are visible; start no more processes per node than GPUs"
            )
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group the launcher describes, or run as one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    dev = _pick_device(device, local_rank)
    if world == 1:
        return DistInfo(0, 1, 0, dev, None)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    # torch._dynamo is imported lazily (by torch during training) since neurosparse stopped
    # importing it at import time; with that, a gloo rank aborted at exit now and then
    # ("terminate called without an active exception": 2 of 16 two-process runs), and
    # none did in 10 runs once it is imported before the process group starts its threads
    import torch._dynamo  # noqa: F401
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, dev, backend, owns)


def shutdown(info: DistInfo) -> None:
    if info.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def seed_process(seed: int, rank: int, step: int = 0) -> None:
    """Seed Python, NumPy and torch with a stream of their own per ``(seed, rank, step)``.

    Different ranks must not draw the same random numbers (dropout, augmentation,
    DataLoader worker seeds), yet a run must be repeatable.
    """
    state = np.random.SeedSequence([seed, rank, step]).generate_state(2)
    s = int(state[0]) << 32 | int(state[1])
    random.seed(s)
    np.random.seed(s % 2**32)
    torch.manual_seed(s)


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}  # fmt: skip
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum ``t`` over ranks (in place; a no-op for one process)."""
    if info.distributed:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def all_gather_object(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.distributed:
        if info.backend == "nccl":
            dist.barrier(device_ids=[info.local_rank])
        else:
            dist.barrier()


__all__ = [
    "DistInfo",
    "init_distributed",
    "shutdown",
    "seed_process",
    "rng_state",
    "set_rng_state",
    "all_reduce_sum",
    "all_gather_object",
    "barrier",
]
