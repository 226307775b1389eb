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

from .checkpoint import atomic_save, load_checkpoint
from .config import Config, DataConfig, ModelConfig, OptimConfig, load_config
from .loop import Trainer, TrainResult, param_checksum, train
from .models import ConvSNN, SpikingMLP, build_model

__all__ = [
    "Config",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "load_config",
    "train",
    "Trainer",
    "TrainResult",
    "param_checksum",
    "build_model",
    "SpikingMLP",
    "ConvSNN",
    "atomic_save",
    "load_checkpoint",
]
