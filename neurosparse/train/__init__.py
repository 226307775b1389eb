"""``neurosparse.train``: a small training entry point that scales out with PyTorch's own tools.

``python -m neurosparse.train --config FILE.toml`` trains a spiking classifier on event
data in one process; ``torchrun --nproc_per_node=N -m neurosparse.train ...`` runs the
same script on N GPUs (NCCL) or CPU processes (gloo) with ``DistributedDataParallel``.

Modules (one concept each): ``config`` (TOML + flags -> typed, checked config),
``data`` (datasets named by the config), ``models`` (the networks), ``sampler``
(global batches independent of the process count), ``distributed`` (process group,
seeding, collectives), ``checkpoint`` (atomic save/load), ``preprocess`` (parallel,
resumable filling of the on-disk cache), ``loop`` (the training loop).
"""

from __future__ import annotations

from . import checkpoint, config, loop, models
from .checkpoint import *  # noqa: F403
from .config import *  # noqa: F403
from .loop import *  # noqa: F403
from .models import *  # noqa: F403

# each submodule's __all__ is its public API: the names live in one list, the submodule's
__all__ = sorted({*checkpoint.__all__, *config.__all__, *loop.__all__, *models.__all__})
