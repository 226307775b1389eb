"""Event-camera data: raw-format readers and writers, transforms, collation, datasets.

Readers return :class:`EventArray`, a Tonic-compatible structured array (fields t, x, y,
p) that also carries ``sensor_size`` and ``meta``.

Each submodule's ``__all__`` is its public API; this package re-exports all of them (the
names live in one list, the submodule's); of the private ``_source`` only
:data:`MAX_SIDE`.
"""

from __future__ import annotations

from . import _source, collate, datasets, events, io, samples, synthetic, transforms, writers
from ._source import *  # noqa: F403
from .collate import *  # noqa: F403
from .datasets import *  # noqa: F403
from .events import *  # noqa: F403
from .io import *  # noqa: F403
from .samples import *  # noqa: F403
from .synthetic import *  # noqa: F403
from .transforms import *  # noqa: F403
from .writers import *  # noqa: F403

_SUBMODULES = (_source, collate, datasets, events, io, samples, synthetic, transforms, writers)
__all__ = sorted(set().union(*(m.__all__ for m in _SUBMODULES)))
