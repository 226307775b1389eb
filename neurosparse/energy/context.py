"""Where the time axis is: the meter's view of one top-level model call.

Layouts (``Meter(layout=...)``):

``"auto"`` (default) the meter infers time steps and batch from how modules are called
          (see ``Meter``): repeated calls of a stateful neuron = time steps; a call of a
          module that knows its own layout (neurosparse sequence mode, SpikingJelly
          ``step_mode="m"``, Norse sequence modules) = a [T, B, ...] chunk
``"TB"``  the model gets [T, B, ...] per call (neurosparse's convention)
``"BT"``  the model gets [B, T, ...] per call (NeuroBench / many snnTorch scripts)
``"B"``   the model gets one time step [B, ...] per call (step mode)

A layer called once per model call with a leading dim of T (or T·B after a
flatten) is split by time from its own tensors; a layer called T times per model
call (a Python loop over steps) gets step ``i`` for its ``i``-th call.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._tensors import TimeView

LAYOUTS = ("auto", "TB", "BT", "B")


@dataclass
class StepContext:
    layout: str
    T: int
    B: int

    def _mode(self, shape: tuple[int, ...], lead_ndim: int) -> str | None:
        T, B = self.T, self.B
        if T <= 1 or lead_ndim < 1 or self.layout == "B":
            return None
        if self.layout == "TB":
            if shape[0] == T:
                return "t0"
            if shape[0] == T * B:
                return "t0_flat"
        else:  # BT
            if lead_ndim >= 2 and shape[0] == B and shape[1] == T:
                return "t1"
            if shape[0] == B * T:
                return "t1_flat"
        return None

    def time_view(self, x: torch.Tensor, sample_ndim: int) -> TimeView | None:
        """``x`` seen time-major ([T, ...]) and a map from per-[T, ...] results back to x's lead."""
        lead_ndim = x.dim() - sample_ndim
        mode = self._mode(tuple(x.shape), lead_ndim)
        T, B = self.T, self.B
        if mode == "t0":
            return x, lambda p: p
        if mode == "t0_flat":
            return x.reshape(T, B, *x.shape[1:]), lambda p: p.reshape(T * B, *p.shape[2:])
        if mode == "t1":
            return x.movedim(1, 0), lambda p: p.movedim(0, 1)
        if mode == "t1_flat":
            return (x.reshape(B, T, *x.shape[1:]).movedim(1, 0),
                    lambda p: p.movedim(0, 1).reshape(B * T, *p.shape[2:]))
        return None

    def split(self, lead: torch.Tensor) -> torch.Tensor | None:
        """Per-step totals [T] of a lead tensor (at most two dims), or None if it has no time."""
        mode = self._mode(tuple(lead.shape), lead.dim())
        T, B = self.T, self.B
        if mode == "t0":
            return lead.reshape(T, -1).sum(1)
        if mode == "t0_flat":
            return lead.reshape(T, -1).sum(1)
        if mode == "t1":
            return lead.movedim(1, 0).reshape(T, -1).sum(1)
        if mode == "t1_flat":
            return lead.reshape(B, T, -1).sum((0, 2))
        return None

    def split_block(self, block: torch.Tensor) -> torch.Tensor | None:
        """Per-step totals [K, T] of K stacked lead tensors [K, *lead] (lead of at most 2 dims)."""
        K = block.shape[0]
        mode = self._mode(tuple(block.shape[1:]), block.dim() - 1)
        T, B = self.T, self.B
        if mode in ("t0", "t0_flat"):
            return block.reshape(K, T, -1).sum(2)
        if mode == "t1":
            return block.movedim(2, 1).reshape(K, T, -1).sum(2)
        if mode == "t1_flat":
            return block.reshape(K, B, T, -1).sum((1, 3))
        return None
