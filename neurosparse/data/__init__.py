"""Event-camera data: raw-format readers and writers, transforms, collation, datasets.

Readers return :class:`EventArray`, a Tonic-compatible structured array (fields t, x, y,
p) that also carries ``sensor_size`` and ``meta``.
"""

from __future__ import annotations

from .collate import pack_time, pad_time
from .events import EVENT_DTYPE, EventArray, make_events
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

__all__ = [
    "EVENT_DTYPE",
    "EventArray",
    "make_events",
    "SyntheticDVS",
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
]
