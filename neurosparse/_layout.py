"""The tensor layout every module takes: time first, ``[T, B, ...]``.

Batch-first input ``[B, T, ...]`` has the same rank, so no module can tell it apart
in general; this file holds the two things that can be done about it, used by
:class:`neurosparse.Sequential`:

- :func:`time_first`: an explicit ``batch_first=True`` swaps the first two axes (and
  :func:`batch_first_out` swaps a time-first output back);
- :func:`check_not_padded_batch_first`: refuses the one batch-first tensor that can be
  recognised, a zero-padded batch of Tonic's ``PadTensors(batch_first=True)`` (each
  sample active over a prefix of its time axis, then zeros; the lengths differ).
"""

from __future__ import annotations

import torch

from .errors import ShapeError

_FIX = (
    "neurosparse modules take time-first tensors [T, B, ...]; pass batch_first=True to "
    "neurosparse.Sequential, collate with neurosparse.data.pad_time or "
    "tonic.collation.PadTensors(batch_first=False), or call x.transpose(0, 1)"
)


def time_first(
    x: torch.Tensor, batch_first: bool | None, where: str, check: bool = True
) -> torch.Tensor:
    """``x`` as ``[T, B, ...]``: swapped when ``batch_first``; checked when None and ``check``."""
    if batch_first:
        if not isinstance(x, torch.Tensor) or x.dim() < 2:
            raise ShapeError(
                f"{where} was told batch_first=True, so its input must be [B, T, ...], got "
                + (f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__)
            )
        return x.transpose(0, 1)
    if batch_first is None and check and isinstance(x, torch.Tensor):
        check_not_padded_batch_first(x, where)
    return x


def batch_first_out(y, batch_first: bool | None, t_b: tuple[int, int]):
    """Swap a time-first output ``[T, B, ...]`` back to ``[B, T, ...]`` under ``batch_first``.

    Outputs whose first two axes are not the input's ``(T, B)`` (a readout that reduced
    time, say) are returned as they are.
    """
    if batch_first and isinstance(y, torch.Tensor) and y.dim() >= 2 and tuple(y.shape[:2]) == t_b:
        return y.transpose(0, 1)
    return y


def _prefix_lengths(active: torch.Tensor) -> torch.Tensor | None:
    """Per row of a bool ``[R, L]``: its length when every row is ones then zeros, else None."""
    n = active.sum(1)
    ar = torch.arange(active.shape[1], device=active.device)
    return n if bool((active == (ar < n[:, None])).all()) else None


def check_not_padded_batch_first(x: torch.Tensor, where: str) -> None:
    """Raise :class:`ShapeError` when ``x`` looks like a zero-padded batch-first batch.

    The signature: along axis 1 every row of axis 0 is active (some non-zero entry) on a
    prefix and zero after it, the prefixes differ and the longest fills axis 1 (the
    padding of samples of different lengths), while along axis 0 the activity is not of
    that form. A time-first batch padded at the end of time has the transposed
    signature; unpadded input or input with empty time bins is never refused. Costs one
    pass over ``x`` (CUDA tensors are not inspected: it would wait for the GPU), which is
    why :class:`~neurosparse.Sequential` runs it on its first calls only.
    """
    if x.dim() < 3 or x.shape[0] < 2 or x.shape[1] < 2 or x.is_cuda or x.is_meta:
        return
    active = x.detach().reshape(x.shape[0], x.shape[1], -1).any(-1)
    rows = _prefix_lengths(active)
    if rows is None or int(rows.min()) < 1 or int(rows.max()) != x.shape[1]:
        return
    if len(torch.unique(rows)) < 2 or _prefix_lengths(active.t()) is not None:
        return
    raise ShapeError(
        f"{where} got shape {tuple(x.shape)} that looks batch-first [B, T, ...]: each of the "
        f"{x.shape[0]} entries of axis 0 is zero after {int(rows.min())}..{x.shape[1]} steps of "
        f"axis 1, the padding of samples of different lengths; {_FIX} (batch_first=False "
        "skips this check)"
    )
