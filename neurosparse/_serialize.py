"""Files that load with ``torch.load(weights_only=True)``: tensors and plain types only.

Used by checkpoints (:mod:`neurosparse.train.checkpoint`) and the sample cache
(:class:`neurosparse.data.CachedDataset`), so that a file from someone else cannot run
code when it is loaded. :func:`to_plain` turns NumPy arrays (also structured ones, and
:class:`~neurosparse.data.EventArray` with its ``sensor_size`` / ``meta``) into a
``uint8`` tensor of their bytes plus dtype and shape, NumPy scalars into Python numbers
and paths into strings; :func:`from_plain` undoes it. Files written before (NumPy
arrays pickled as such) still load: exactly NumPy's array reconstruction is allowed for
them (``torch.serialization.safe_globals``); anything else is refused with a
:class:`~neurosparse.errors.CheckpointError` saying how to load a file you trust.
"""

from __future__ import annotations

import os
import pathlib
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError

_ARRAY = "__neurosparse_ndarray__"
_ATOMS = (type(None), bool, int, float, str, bytes, torch.Tensor, torch.Size,
          torch.dtype, torch.device)  # fmt: skip


def to_plain(obj: Any, where: str = "checkpoint") -> Any:
    """``obj`` with NumPy arrays / scalars and paths replaced by tensors and plain types.

    Containers (dict, OrderedDict, list, tuple) are rebuilt with the same type; anything
    ``torch.load(weights_only=True)`` would refuse raises :class:`CheckpointError` now,
    at save time, instead of on the next resume.
    """
    if isinstance(obj, np.generic):  # before the atoms: np.float64 is a float subclass
        return obj.item()
    if isinstance(obj, _ATOMS):
        return obj
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise CheckpointError(f"{where}: NumPy object arrays cannot be stored safely")
        a = np.ascontiguousarray(obj)
        raw = torch.from_numpy(a.reshape(-1).view(np.uint8).copy())
        out = {_ARRAY: raw, "dtype": to_plain(np.lib.format.dtype_to_descr(a.dtype)),
               "shape": list(a.shape)}  # fmt: skip
        if hasattr(obj, "sensor_size") and hasattr(obj, "meta"):  # an EventArray
            size = obj.sensor_size
            out["sensor_size"] = None if size is None else [int(v) for v in size]
            out["meta"] = to_plain(obj.meta, f"{where}.meta")
        return out
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (dict, OrderedDict)):
        out = {to_plain(k, where): to_plain(v, f"{where}[{k!r}]") for k, v in obj.items()}
        return OrderedDict(out) if isinstance(obj, OrderedDict) else out
    if isinstance(obj, (list, tuple)):
        items = [to_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    raise CheckpointError(
        f"{where} is a {type(obj).__module__}.{type(obj).__qualname__}; a checkpoint / cache "
        "may hold only tensors, NumPy arrays, numbers, strings, None and dicts / lists / "
        "tuples of them (so it loads with torch.load(weights_only=True)); convert it first"
    )


def from_plain(obj: Any) -> Any:
    """Inverse of :func:`to_plain` (NumPy arrays come back; paths stay strings)."""
    if isinstance(obj, dict):
        if _ARRAY in obj:
            raw = obj[_ARRAY].numpy().tobytes()
            dtype = np.lib.format.descr_to_dtype(from_plain(obj["dtype"]))
            arr = np.frombuffer(raw, dtype=dtype).reshape(obj["shape"]).copy()
            if "meta" in obj:
                from .data.events import EventArray

                return EventArray(arr, obj["sensor_size"], from_plain(obj["meta"]))
            return arr
        out = {k: from_plain(v) for k, v in obj.items()}
        return OrderedDict(out) if isinstance(obj, OrderedDict) else out
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(from_plain(v) for v in obj)
    return obj


def _legacy_globals() -> list:
    """What older files pickled besides tensors: NumPy arrays / scalars / dtypes (the
    NumPy RNG state) and paths; each only rebuilds a value, none runs other code."""
    try:
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # NumPy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    dtypes = [type(np.dtype(c)) for c in "?bBhHiIlLqQefdgFDG"]
    paths = [pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath,
             pathlib.PureWindowsPath]  # fmt: skip
    return [_reconstruct, scalar, np.ndarray, np.dtype, *dtypes, *paths]


def safe_load(
    path: str | os.PathLike,
    what: str = "checkpoint",
    trusted: bool = False,
    hint: str = "neurosparse.train.load_checkpoint(path, trusted=True)",
) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, decoded with :func:`from_plain`.

    Older files that pickled NumPy arrays load too (only NumPy's array reconstruction is
    allowed for them). ``trusted=True`` loads with ``weights_only=False`` (runs code
    from the file: only for files you made yourself).
    """
    path = Path(path)
    if trusted:
        return from_plain(torch.load(path, map_location="cpu", weights_only=False))
    try:
        with torch.serialization.safe_globals(_legacy_globals()):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"GLOBAL (\S+) was not an allowed global", str(exc))
        if unsafe is None:
            raise CheckpointError(
                f"{str(path)!r}: not a readable {what} (corrupt, or not written by torch.save)"
            ) from exc
        raise CheckpointError(
            f"{str(path)!r}: this {what} holds a {unsafe.group(1)} object, not only tensors "
            "and plain types, so it was refused (loading it could run code from the file). "
            f"If you trust the file (you wrote it), load it with {hint} and save it again "
            "to convert it"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise CheckpointError(
            f"{str(path)!r}: not a readable {what} (truncated or not a torch.save file: {exc})"
        ) from exc
    return from_plain(obj)


