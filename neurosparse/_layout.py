"""The tensor layout every module takes: time first, ``[T, B, ...]``.

Batch-first input ``[B, T, ...]`` has the same rank, so no module can tell it apart
in general; this file holds the two things that can be done about it, used by
:class:`neurosparse.Sequential`:

- :func:`time_first`: an explicit ``batch_first=True`` swaps the first two axes (and
  :func:`batch_first_out` swaps a time-first output back);
- :func:`check_not_padded_batch_first`: refuses the one batch-first tensor that can be
  recognised, a zero-padded batch of Tonic's ``PadTensors(batch_first=True)`` (each
  sample active over a prefix of its time axis, then zeros; the lengths differ).

It also holds how :class:`neurosparse.Sequential` applies torch's per-sample layers
(convolutions, pooling, batch norm, ...) to a sequence: :func:`over_time`.
"""

from __future__ import annotations

import torch
from torch import nn

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


# torch layers that read their input as samples [N, C, ...]: given [T, B, C, ...] they would
# take T for the batch and B for the channels (an error, or a silently wrong result when
# the sizes happen to fit, e.g. BatchNorm1d(F) on [T, B, F] with B == F). Over a sequence
# they run on [T*B, C, ...], as each step [B, C, ...] runs in a loop over time and as
# SpikingJelly's SeqToANNContainer runs them. Element-wise and last-axis layers (Linear,
# Dropout, activations, LayerNorm, padding) act the same on [T, B, ...] and need nothing.
PER_SAMPLE = (
    nn.modules.conv._ConvNd,
    nn.modules.pooling._MaxPoolNd,
    nn.modules.pooling._AvgPoolNd,
    nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd,
    nn.modules.pooling._LPPoolNd,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.FeatureAlphaDropout,
    nn.Upsample,
)


def over_time(module: nn.Module, x, t_b: tuple[int, int]):
    """``module(x)`` for a sequence ``x [T, B, ...]``, as a loop over its time steps gives.

    A :data:`PER_SAMPLE` layer of torch's own classes (a subclass, e.g. a peer's
    multi-step layer, runs as it is) runs on ``x`` with T merged into the batch, ``[T*B, ...]``,
    and its output is split back into ``[T, B, ...]`` (SpikingJelly's multi-step
    semantics). Batch norm in training mode therefore takes its statistics over all
    ``T x B`` samples of the call, not per step; in eval mode it equals the loop. Only an
    ``x`` that still has the sequence's ``(T, B)`` leading axes ``t_b`` is treated so: an
    output that no longer does (after a readout that reduced time) runs as is, and so
    does a subclass (a peer's multi-step layer takes ``[T, B, ...]`` itself).

    Raises
    ------
    ShapeError
        For an ``nn.Flatten`` that would merge the batch (or time) axis of ``x`` into
        its features: over ``[T, B, ...]`` flatten from axis 2 (``nn.Flatten(2)``).
    """
    # torch's own classes only: a subclass may take [T, B, ...] itself (SpikingJelly's
    # layer.Conv2d and layer.Flatten with step_mode="m" do), so it runs as it is
    if not (isinstance(x, torch.Tensor) and x.dim() >= 3 and tuple(x.shape[:2]) == t_b
            and type(module).__module__.startswith("torch.")):  # fmt: skip
        return module(x)
    if isinstance(module, nn.Flatten) and (
        module.start_dim % x.dim() < min(2, module.end_dim % x.dim())
    ):
        raise ShapeError(
            f"nn.Flatten(start_dim={module.start_dim}) on a sequence of shape "
            f"{tuple(x.shape)} [T, B, ...] would merge its "
            f"{'time' if module.start_dim % x.dim() == 0 else 'batch'} axis into the "
            "features; use nn.Flatten(2) (start_dim=2) to flatten each sample's features"
        )
    if isinstance(module, PER_SAMPLE):
        return module(x.flatten(0, 1)).unflatten(0, t_b)
    return module(x)


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
    if (x.dim() < 3 or x.shape[0] < 2 or x.shape[1] < 2 or x.is_cuda or x.is_meta
            or x.numel() == 0):
        return
    rows = x.detach().reshape(x.shape[0], x.shape[1], -1)
    # |x|'s row maximum is non-zero exactly where any(-1) is true (NaN included: NaN != 0),
    # and 3.5x faster on CPU floats ([100, 32, 1024]: 2.6 against 9.2 ms, 1 thread)
    active = rows.abs().amax(-1).ne(0) if rows.is_floating_point() else rows.any(-1)
    lengths = _prefix_lengths(active)
    if lengths is None or int(lengths.min()) < 1 or int(lengths.max()) != x.shape[1]:
        return
    if len(torch.unique(lengths)) < 2 or _prefix_lengths(active.t()) is not None:
        return
    raise ShapeError(
        f"{where} got shape {tuple(x.shape)} that looks batch-first [B, T, ...]: each of the "
        f"{x.shape[0]} entries of axis 0 is zero after {int(lengths.min())}..{x.shape[1]} steps of "
        f"axis 1, the padding of samples of different lengths; {_FIX} (batch_first=False "
        "skips this check)"
    )
