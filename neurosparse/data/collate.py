"""Collate functions for DataLoaders over variable-length spike tensors.

A sample is ``(tensor [T_i, ...], label)``; recordings differ in ``T_i``. ``pad_time``
zero-pads at the end of time and stacks time-first (``[T_max, B, ...]``, the layout every
neurosparse module takes); ``pack_time`` does the same and also returns the lengths, so
a loss or readout can ignore the padding.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import DTypeError, ShapeError


def _labels(labels: Sequence[Any]) -> Any:
    # Integer class labels become a LongTensor (what CrossEntropyLoss takes); anything else
    # (tensors of targets, strings, None) is stacked if possible, else returned as a list.
    # NumPy integers too: Tonic's datasets (SHD, ...) yield np.int64 labels
    # Only integer 0-d tensors: int() would cut a float target (0.7 -> 0) without a word.
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
           or (torch.is_tensor(v) and v.dim() == 0 and not v.is_floating_point()
               and not v.is_complex() and v.dtype != torch.bool)
           for v in labels):  # fmt: skip
        return torch.as_tensor([int(v) for v in labels], dtype=torch.long)
    if all(torch.is_tensor(v) for v in labels):
        return torch.stack(list(labels))
    return list(labels)


def _pad(batch: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor, Any]:
    if len(batch) == 0:
        raise ShapeError("pad_time got an empty batch; a DataLoader batch has >= 1 sample")
    tensors, labels = [], []
    for i, item in enumerate(batch):
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise ShapeError(
                f"batch[{i}] must be a (tensor, label) pair, got {type(item).__name__}"
                + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else "")
            )
        x, y = item
        if isinstance(x, np.ndarray) and x.dtype.names is None:
            # a transform's NumPy frames (Tonic's ToFrame gives int16 [T, P, H, W]), as
            # Tonic's PadTensors takes them; event arrays (structured) still need binning
            x = torch.from_numpy(np.ascontiguousarray(x))
        if not torch.is_tensor(x):
            raise DTypeError(
                f"batch[{i}][0] must be a torch.Tensor or NumPy array [T, ...], got "
                f"{type(x).__name__}"
                + (" of events" if isinstance(x, np.ndarray) else "")
                + "; use a transform such as neurosparse.data.ToSpikeTensor"
            )
        tensors.append(x)
        labels.append(y)
    for i, x in enumerate(tensors):
        if x.dim() < 1:
            raise ShapeError(
                f"batch[{i}][0] is a 0-d tensor; a sample must be [T, ...] with time first "
                "(a transform such as neurosparse.data.ToSpikeTensor makes one)"
            )
    rest = tensors[0].shape[1:]
    for i, x in enumerate(tensors):
        if x.shape[1:] != rest:
            raise ShapeError(
                f"batch[{i}] has shape {tuple(x.shape)} but batch[0] has "
                f"{tuple(tensors[0].shape)}: all samples must agree after the time axis "
                "(same sensor_size in the transform)"
            )
    lengths = torch.tensor([x.shape[0] for x in tensors], dtype=torch.long)
    # The batch takes the dtype all samples promote to (as torch.stack / Tonic's PadTensors
    # do): copying into batch[0]'s dtype would turn counts 3.0 into True or 0.5 into 0.
    dtype = functools.reduce(torch.promote_types, (x.dtype for x in tensors))
    out = tensors[0].new_zeros((int(lengths.max()), len(tensors), *rest), dtype=dtype)
    for b, x in enumerate(tensors):
        out[: x.shape[0], b] = x
    return out, lengths, _labels(labels)


def pad_time(batch: Sequence[tuple[torch.Tensor, Any]]) -> tuple[torch.Tensor, Any]:
    """Stack ``[(x_i [T_i, ...], label_i)]`` into ``([T_max, B, ...], labels)``, zero-padded.

    ``x_i`` may be tensors or NumPy arrays (Tonic's ``ToFrame`` frames); the batch takes the
    dtype they promote to (int16 frames stay int16; Tonic's ``PadTensors`` makes float32).
    Integer labels come back as a ``LongTensor [B]``.
    """
    out, _, labels = _pad(batch)
    return out, labels


def pack_time(
    batch: Sequence[tuple[torch.Tensor, Any]],
) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Like :func:`pad_time`, plus ``lengths`` (``LongTensor [B]``, each sample's ``T_i``)."""
    return _pad(batch)


__all__ = ["pad_time", "pack_time"]
