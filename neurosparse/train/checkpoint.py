"""Checkpoints written atomically and loaded without running code from the file.

The new checkpoint goes to a temporary file in the same folder, is flushed and
``fsync``-ed, then ``os.replace``-d over the old name (atomic on POSIX and Windows),
and the folder entry is synced. Until the replace, ``last.pt`` is the previous,
complete checkpoint; after it, the new one.

Files hold only tensors and plain types (:func:`~neurosparse._serialize.to_plain`), so
they load with ``torch.load(weights_only=True)``: a checkpoint from someone else cannot
execute code. The NumPy RNG state is stored as a ``uint8`` tensor of its bytes plus dtype
and shape. Checkpoints written before this (NumPy arrays pickled as such) still load;
anything else is refused with a :class:`~neurosparse.errors.CheckpointError` saying how
to load a file you trust (``load_checkpoint(path, trusted=True)``).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .._serialize import from_plain, safe_load, to_plain  # noqa: F401 - importable here, as before
from ..errors import CheckpointError

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
    """``torch.save(to_plain(obj))`` to ``path``, always old-complete or new-complete.

    Raises :class:`CheckpointError` before writing anything if ``obj`` holds a type that
    would not load with ``weights_only=True``.
    """
    path = Path(path)
    plain = to_plain(obj, path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(plain, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: str | os.PathLike, trusted: bool = False) -> dict[str, Any]:
    """A checkpoint written by :func:`atomic_save` (tensors on the CPU).

    Loaded with ``weights_only=True``, so the file cannot run code. ``trusted=True``
    lifts that for an old file you made yourself that holds other Python objects.
    """
    ckpt = safe_load(path, "checkpoint", trusted)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{str(path)!r} is not a neurosparse.train checkpoint (format {FORMAT})"
        )
    return ckpt


# public API (re-exported by neurosparse.train); FORMAT (and safe_load /
# to_plain / from_plain from .._serialize) serve the package's own code, imported from here by name
__all__ = ["atomic_save", "load_checkpoint"]
