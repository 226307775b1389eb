"""Event-camera data: raw-format readers and writers, transforms, collation, datasets.

Readers return :class:`EventArray`, a Tonic-compatible structured array (fields t, x, y,
p) that also carries ``sensor_size`` and ``meta``.
"""

from __future__ import annotations

from ._source import MAX_SIDE
from .collate import pack_time, pad_time
from .datasets import (
    CIFAR10DVS,
    NMNIST,
    POKERDVS,
    SHD,
    CachedDataset,
    DVSGesture,
    EventFolder,
    NCaltech101,
    TonicDataset,
)
from .events import EVENT_DTYPE, EventArray, make_events
from .io import FORMATS, detect_format, iter_events, open_events, read_events
from .samples import load_sample
from .synthetic import SyntheticDVS
from .transforms import (
    Crop,
    Denoise,
    Downsample,
    TimeWindow,
    ToFrame,
    ToSpikeTensor,
    ToTimeSurface,
    ToVoxelGrid,
)
from .writers import (
    write_aedat2,
    write_aedat3,
    write_evt2,
    write_evt3,
    write_hdf5,
    write_nmnist,
)

__all__ = [
    "load_sample",
    "SyntheticDVS",
    "EVENT_DTYPE",
    "EventArray",
    "make_events",
    "FORMATS",
    "MAX_SIDE",
    "detect_format",
    "open_events",
    "read_events",
    "iter_events",
    "write_nmnist",
    "write_aedat2",
    "write_aedat3",
    "write_evt2",
    "write_evt3",
    "write_hdf5",
    "ToSpikeTensor",
    "ToFrame",
    "ToVoxelGrid",
    "ToTimeSurface",
    "Denoise",
    "Downsample",
    "Crop",
    "TimeWindow",
    "pad_time",
    "pack_time",
    "EventFolder",
    "NMNIST",
    "NCaltech101",
    "TonicDataset",
    "DVSGesture",
    "SHD",
    "CIFAR10DVS",
    "POKERDVS",
    "CachedDataset",
]
