"""Exact operation counters that neurosparse modules keep for the energy meter.

A module that knows what it really did (an event layer counts the synaptic
accumulates it performed, not the dense MACs it avoided) mixes in
:class:`OpCounter`. ``neurosparse.energy.Meter`` reads ``op_counts()`` from such
modules and falls back to forward hooks for every other module.

Keys (all integers, summed over time steps and batch since the last reset):

``synops``          accumulates triggered by non-zero inputs (× fan-out)
``macs``            multiply-accumulates actually executed (dense ops, graded events)
``dense_macs``      what the dense equivalent would execute
``neuron_updates``  neuron state updates
``spikes``          spikes (or non-zero deltas) emitted
``events_in``       non-zero input elements seen
``inputs_in``       input elements seen (zero or not)
``weight_bytes_read`` / ``state_bytes_rw``  memory traffic the op implies
"""

from __future__ import annotations

from collections import Counter

import torch

COUNT_KEYS = (
    "synops",
    "macs",
    "dense_macs",
    "neuron_updates",
    "spikes",
    "events_in",
    "inputs_in",
    "weight_bytes_read",
    "state_bytes_rw",
)


class OpCounter:
    """Mixin for ``nn.Module``s that count their own operations exactly."""

    def _counts(self) -> Counter:
        c = self.__dict__.get("_op_counter")
        if c is None:
            c = Counter()
            self.__dict__["_op_counter"] = c
        return c

    def count_ops(self, **amounts: int | torch.Tensor) -> None:
        """Add ``amounts`` (keys of :data:`COUNT_KEYS`) to the module's counters.

        Values may be ints or integer tensors. A tensor stays on its device and is
        summed there, in place into one int64 tensor per key, until :meth:`op_counts`
        reads it: turning it into an int here would synchronise the GPU on every
        forward call (and could not be captured in a CUDA graph).
        """
        c = self._counts()
        for key, value in amounts.items():
            if key not in COUNT_KEYS:
                raise KeyError(f"unknown counter {key!r}; expected one of {COUNT_KEYS}")
            held = c.get(key, 0)
            if isinstance(value, torch.Tensor):  # counted on the GPU (CPU paths count ints)
                if isinstance(held, torch.Tensor) and held.device == value.device:
                    held.add_(value.detach())
                else:  # the first device count of this key: a tensor of its own
                    c[key] = value.detach().to(torch.int64, copy=True) + held
            elif isinstance(held, torch.Tensor):
                held.add_(int(value))
            else:
                c[key] = held + int(value)

    def op_counts(self) -> dict[str, int]:
        """Counters accumulated since the last :meth:`reset_counters` (all keys present)."""
        c = self._counts()
        return {k: int(c.get(k, 0)) for k in COUNT_KEYS}

    def reset_counters(self) -> None:
        self._counts().clear()
