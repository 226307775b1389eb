"""Checkpoints written atomically: a crash mid-save never corrupts the last good one.

The new checkpoint goes to a temporary file in the same folder, is flushed and
``fsync``-ed, then ``os.replace``-d over the old name (atomic on POSIX and Windows),
and the folder entry is synced. Until the replace, ``last.pt`` is the previous,
complete checkpoint; after it, the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..errors import ParameterError

FORMAT = 1


def _fsync_dir(folder: Path) -> None:
    # The rename itself must reach the disk, or a power loss could bring back the old name.
    if os.name != "posix":  # pragma: no cover - directories cannot be opened on Windows
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save(obj)`` to ``path`` so that ``path`` is always old-complete or new-complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint written by :func:`atomic_save` (tensors on the CPU)."""
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=False)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ParameterError(
            f"{str(path)!r} is not a neurosparse.train checkpoint (format {FORMAT})"
        )
    return ckpt


__all__ = ["atomic_save", "load_checkpoint", "FORMAT"]
