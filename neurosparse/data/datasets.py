"""Datasets: N-MNIST and folders of recordings read by our readers, Tonic's datasets when on
disk, and an on-disk cache of transformed samples.

Every dataset yields ``(events, label)`` where ``events`` is an
:class:`~neurosparse.data.EventArray` (fields t, x, y, p; ``sensor_size`` attached, so
``ToSpikeTensor(dt_us=1000)`` needs no size) before the user's ``transform``. Nothing is
ever downloaded: a missing dataset raises
:class:`~neurosparse.errors.EventFileNotFoundError` saying where the files should be.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
import types
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._serialize import safe_load, to_plain
from ..errors import CheckpointError, EventFileNotFoundError, ParameterError
from .events import EVENT_DTYPE, EventArray
from .io import read_events

EVENT_EXTENSIONS = (".bin", ".aedat", ".aedat4", ".dat", ".raw", ".h5", ".hdf5")


class EventFolder(torch.utils.data.Dataset):
    """Recordings in ``root/<class name>/<file>``; label = index of the class name (sorted).

    A class folder without recordings raises
    :class:`~neurosparse.errors.EventFileNotFoundError`: it would take a label index and
    shift the labels of the classes after it.

    Parameters
    ----------
    root
        Folder with one sub-folder per class (like torchvision's ``ImageFolder``).
    transform, target_transform
        Applied to the events / the label.
    extensions
        File endings to include (default: every format :func:`read_events` knows).
    sensor_size, format, errors
        Passed to :func:`~neurosparse.data.read_events` for every file.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        extensions: Sequence[str] = EVENT_EXTENSIONS,
        sensor_size: tuple[int, ...] | None = None,
        format: str | None = None,
        errors: str = "raise",
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise EventFileNotFoundError(
                f"dataset folder {str(self.root)!r} does not exist; expected "
                "<root>/<class name>/<recording files>"
            )
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        exts = tuple(e.lower() for e in extensions)
        self.samples = [
            (str(f), self.class_to_idx[c])
            for c in self.classes
            for f in sorted((self.root / c).iterdir())
            if f.is_file() and f.name.lower().endswith(exts)
        ]
        if not self.samples:
            raise EventFileNotFoundError(
                f"no recordings ({', '.join(exts)}) in class folders under {str(self.root)!r}"
            )
        # A folder without recordings still takes a label index and shifts every later
        # class by one (e.g. a stray '.ipynb_checkpoints', or a class missing from one
        # split), so the same class would get different labels in train and test.
        # torchvision's ImageFolder refuses such folders too.
        empty = sorted(set(self.classes) - {self.classes[s[1]] for s in self.samples})
        if empty:
            raise EventFileNotFoundError(
                f"class folder(s) {empty} under {str(self.root)!r} hold no recordings "
                f"({', '.join(exts)}); each would still take a label index and shift the "
                "labels of the classes after it: remove those folders or add their recordings"
            )
        self.targets = [s[1] for s in self.samples]
        self.transform, self.target_transform = transform, target_transform
        self.read_kw = {"sensor_size": sensor_size, "format": format, "errors": errors}

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int) -> EventArray:
        return read_events(self.samples[index][0], **self.read_kw)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        events, label = self.load(index), self.samples[index][1]
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return events, label

    def __repr__(self) -> str:
        name, root = type(self).__name__, str(self.root)
        return f"{name}(root={root!r}, n={len(self)}, transform={self.transform!r})"


def _find(root: Path, candidates: Sequence[str], what: str, layout: str) -> Path:
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    raise EventFileNotFoundError(
        f"{what} not found under {str(root)!r}: expected {layout}. neurosparse never downloads; "
        "put the extracted dataset there"
    )


class NMNIST(EventFolder):
    """N-MNIST (Orchard et al. 2015): ``root/{Train,Test}/<digit>/*.bin``, 34 x 34 pixels.

    ``root`` may also be Tonic's ``save_to`` (then ``root/NMNIST/Train/...``).
    ``first_saccade_only`` keeps events with t < 100 ms, as Tonic does. The label is the
    digit of the folder (as in Tonic), also when a split lacks some digits.
    """

    sensor_size = (34, 34, 2)

    def __init__(
        self,
        root: str | os.PathLike,
        train: bool = True,
        transform: Callable | None = None,
        target_transform: Callable | None = None,
        first_saccade_only: bool = False,
    ) -> None:
        split = "Train" if train else "Test"
        root = Path(root)
        folder = _find(
            root, [split, f"NMNIST/{split}"], f"N-MNIST {split}", f"{root}/{split}/<digit>/*.bin"
        )
        super().__init__(folder, transform, target_transform, (".bin",), self.sensor_size, "nmnist")
        # The label is the digit the folder is named after (as in Tonic's NMNIST), not
        # the folder's rank among those present: a split that lacks a digit (a subset,
        # a partial copy) must not shift the labels of the digits after it.
        digits = [str(k) for k in range(10)]
        bad = [c for c in self.classes if c not in digits]
        if bad:
            raise EventFileNotFoundError(
                f"N-MNIST folder {str(folder)!r} holds class folder(s) {bad} that are not "
                "digits 0-9; the label of a recording is its folder's digit: move them away"
            )
        self.samples = [(f, int(self.classes[k])) for f, k in self.samples]
        self.targets = [s[1] for s in self.samples]
        self.classes, self.class_to_idx = digits, {c: k for k, c in enumerate(digits)}
        self.first_saccade_only = first_saccade_only

    def load(self, index: int) -> EventArray:
        ev = super().load(index)
        return ev[ev["t"] < 100_000] if self.first_saccade_only else ev


class NCaltech101(EventFolder):
    """N-Caltech101: ``root/<class>/image_NNNN.bin`` (or Tonic's ``NCALTECH101/Caltech101/``).

    The sensor extent varies per recording (Tonic gives no size either); pass
    ``sensor_size`` to check every file against it and attach it to the events.
    """

    def __init__(self, root, transform=None, target_transform=None, sensor_size=None):
        root = Path(root)
        folder = _find(
            root,
            ["NCALTECH101/Caltech101", "Caltech101", "."],
            "N-Caltech101",
            f"{root}/<class>/*.bin",
        )
        super().__init__(folder, transform, target_transform, (".bin",), sensor_size, "nmnist")


def _to_events(raw: np.ndarray, sensor_size: tuple) -> EventArray:
    out = np.zeros(raw.shape[0], dtype=EVENT_DTYPE)
    for k in ("t", "x", "y", "p"):
        if k in raw.dtype.names:
            out[k] = raw[k]
    return EventArray(out, sensor_size, {"format": "tonic"})


class TonicDataset(torch.utils.data.Dataset):
    """A Tonic dataset read from disk (never downloaded), yielding our :class:`EventArray`.

    Parameters
    ----------
    name
        ``"DVSGesture"``, ``"SHD"``, ``"CIFAR10DVS"``, ``"POKERDVS"`` or ``"NCALTECH101"``.
    root
        Tonic's ``save_to`` folder (the dataset lives in ``root/<name>/``).
    transform, target_transform
        Applied to our events / the label.
    **tonic_kwargs
        Passed to the Tonic class (``train=`` for DVSGesture, SHD, POKERDVS).
    """

    def __init__(self, name: str, root, transform=None, target_transform=None, **tonic_kwargs):
        from . import _tonic_nodl

        classes = ("DVSGesture", "SHD", "CIFAR10DVS", "POKERDVS", "NCALTECH101")
        if name not in classes:
            raise ParameterError(f"name must be one of {list(classes)}, got {name!r}")
        cls = getattr(_tonic_nodl, name)
        self.tonic = cls(os.fspath(root), **tonic_kwargs)
        self.sensor_size = tuple(cls.sensor_size) if cls.sensor_size else None
        self.transform, self.target_transform = transform, target_transform

    def __len__(self) -> int:
        return len(self.tonic)

    def __getitem__(self, index: int):
        raw, label = self.tonic[index]
        events = _to_events(raw, self.sensor_size)
        if self.transform is not None:
            events = self.transform(events)
        if self.target_transform is not None:
            label = self.target_transform(label)
        return events, label


def DVSGesture(root, train=True, transform=None, target_transform=None) -> TonicDataset:
    """DVS128 Gesture (Amir et al. 2017) via Tonic's pre-cut copy under ``root/DVSGesture``."""
    return TonicDataset("DVSGesture", root, transform, target_transform, train=train)


def SHD(root, train=True, transform=None, target_transform=None) -> TonicDataset:
    """Spiking Heidelberg Digits (Cramer et al. 2022) via Tonic under ``root/SHD``; y = 0."""
    return TonicDataset("SHD", root, transform, target_transform, train=train)


def CIFAR10DVS(root, transform=None, target_transform=None) -> TonicDataset:
    """CIFAR10-DVS (Li et al. 2017) via Tonic's AEDAT 4 copy under ``root/CIFAR10DVS``."""
    return TonicDataset("CIFAR10DVS", root, transform, target_transform)


def POKERDVS(root, train=True, transform=None, target_transform=None) -> TonicDataset:
    """POKER-DVS (35 x 35, 4 card symbols) via Tonic under ``root/POKERDVS``."""
    return TonicDataset("POKERDVS", root, transform, target_transform, train=train)


def _describe(obj: Any, depth: int = 0) -> str:
    """A text that names what ``obj`` computes, equal across processes (no ids/addresses).

    Used for :class:`CachedDataset`'s default key: ``repr`` of a lambda or of an object
    without its own ``__repr__`` holds a memory address, which differs in every process.
    """
    if depth > 8:
        raise ParameterError("the dataset is nested too deeply to describe; pass key=")
    d = depth + 1
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes)):
        return repr(obj)
    if isinstance(obj, os.PathLike):
        return f"path:{os.fspath(obj)}"
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(map(repr, obj)) if isinstance(obj, (set, frozenset)) else obj
        return f"{type(obj).__name__}[" + ",".join(_describe(v, d) for v in items) + "]"
    if isinstance(obj, dict):
        items = sorted(obj.items(), key=lambda kv: repr(kv[0]))
        return "{" + ",".join(f"{k!r}:{_describe(v, d)}" for k, v in items) + "}"
    if isinstance(obj, np.ndarray):
        return f"ndarray{obj.dtype.str}{obj.shape}:{hashlib.sha1(obj.tobytes()).hexdigest()}"
    if isinstance(obj, torch.Tensor):
        return _describe(obj.detach().cpu().numpy(), d)
    if isinstance(obj, np.generic):
        return repr(obj.item())
    if isinstance(obj, functools.partial):
        return "partial" + _describe([obj.func, obj.args, obj.keywords], d)
    if inspect.ismethod(obj):
        return f"method({_describe(obj.__func__, d)},{_describe(obj.__self__, d)})"
    if isinstance(obj, types.CodeType):  # also the nested lambdas among co_consts
        return "code" + _describe([obj.co_code, obj.co_consts, obj.co_names], d)
    if inspect.isfunction(obj):
        where = f"function {obj.__module__}.{obj.__qualname__}"
        if depth > 4:  # deep (or recursive) helpers: their name, not their code
            return where
        cells = [c.cell_contents for c in obj.__closure__ or ()]
        # module-level values the code reads (e.g. a threshold) change what it computes
        used = {
            n: (f"module {v.__name__}" if inspect.ismodule(v) else v)
            for n in obj.__code__.co_names
            if n in obj.__globals__ and not n.startswith("__")
            for v in [obj.__globals__[n]]
        }
        parts = [obj.__code__, obj.__defaults__, obj.__kwdefaults__, cells, used]
        return where + _describe(parts, d)
    if isinstance(obj, type) or inspect.isbuiltin(obj):
        return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj)}"
    name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if isinstance(obj, torch.nn.Module):  # its weights live in _parameters / _buffers
        return f"{name}:{obj!r}" + _describe(obj.state_dict(), d)
    if hasattr(obj, "__dict__") or hasattr(type(obj), "__slots__"):
        fields = dict(getattr(obj, "__dict__", {}))
        for slot in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, slot):
                fields[slot] = getattr(obj, slot)
        return f"{name}(" + _describe(fields, d) + ")"
    text = repr(obj)
    if " at 0x" in text or " object at " in text:
        raise ParameterError(
            f"cannot derive a cache key that is the same in every process from {name} "
            f"(its repr holds a memory address: {text[:80]}); pass CachedDataset(key=...)"
        )
    return f"{name}:{text}"


def cache_key(dataset: Any) -> str:
    """:class:`CachedDataset`'s default key: the same for the same dataset in any process."""
    return hashlib.sha1(_describe(dataset).encode()).hexdigest()[:16]


class CachedDataset(torch.utils.data.Dataset):
    """Cache ``dataset[i]`` (after its transform) on disk; later reads load the saved sample.

    Files go to ``cache_dir/<key>/<i>.pt``, written atomically so several DataLoader
    workers can fill the cache at once. ``key`` defaults to :func:`cache_key`: a hash of the
    dataset's class, files and settings and of its transform (for a function, its code,
    constants and closure), which is the same in every process, so the cache is reused by
    later runs and a different transform does not reuse stale samples. Pass ``key``
    explicitly when the dataset's state does not identify its data (e.g. it reads from a
    database handle).

    Samples are stored as tensors and plain types (NumPy arrays and
    :class:`~neurosparse.data.EventArray` as tensors of their bytes) and loaded with
    ``torch.load(weights_only=True)``, so a cache file from someone else cannot run code.
    A file written by an older version that holds other objects is not loaded: the
    sample is recomputed and the file replaced (with a warning).
    """

    def __init__(self, dataset, cache_dir: str | os.PathLike, key: str | None = None) -> None:
        self.dataset = dataset
        if key is None:
            key = cache_key(dataset)
        self.dir = Path(cache_dir) / key
        self.dir.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        path = self.dir / f"{index}.pt"
        if path.exists():
            try:
                return safe_load(path, "cached sample")
            except CheckpointError as exc:
                warnings.warn(
                    f"{path}: {exc}; recomputing the sample and replacing the file",
                    RuntimeWarning,
                    stacklevel=2,
                )
        sample = self.dataset[index]
        plain = to_plain(sample, f"sample {index}")
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        torch.save(plain, tmp)
        os.replace(tmp, path)
        return sample


__all__ = [
    "EventFolder",
    "NMNIST",
    "NCaltech101",
    "TonicDataset",
    "DVSGesture",
    "SHD",
    "CIFAR10DVS",
    "POKERDVS",
    "CachedDataset",
    "cache_key",
]
