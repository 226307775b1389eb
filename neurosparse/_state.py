"""``StepState``: where a module keeps the state of its ``step`` calls, and how it moves.

Every stateful module (neurons, delta layers, delta recurrent cells) keeps the state of
its last :meth:`step` call in ``self.state`` (a NamedTuple of tensors, or None before the
first step and after :meth:`reset`). It is not a buffer: it is not saved in a
``state_dict`` (it describes a stream, not the model) and it keeps its autograd graph
between steps (BPTT). Like a buffer, it follows ``.to()`` / ``.cuda()`` / ``.double()``:
``nn.Module._apply`` applies the same conversion to it.
"""

from __future__ import annotations

import torch
from torch import nn


def _map_tensors(fn, value):
    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple):
        items = [_map_tensors(fn, v) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


class StepState(nn.Module):
    """Mixin: ``self.state`` for step mode, moved with the module, cleared by ``reset()``."""

    state: object = None

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        super()._apply(fn, recurse)
        if self.state is not None:
            self.state = _map_tensors(fn, self.state)
        return self

    def _step(self, run, state):
        """``run(state)`` for one step: an explicit ``state`` is used as given and the kept
        one is left alone; None continues from the kept state and keeps the new one.

        ``run`` takes the state to start from (None: from rest) and returns
        ``(output, new_state)``; so does this.
        """
        if state is not None:
            return run(state)
        out, new = run(self.state)
        self._keep_state(new)
        return out, new

    def _keep_state(self, new: object) -> None:
        """``self.state = new``, without ``nn.Module.__setattr__`` where that is the same.

        Its search of the parameter, buffer and module dicts costs a few µs per step. Once
        ``state`` is a plain instance attribute it is in none of them (registering a name
        that is an attribute raises, and assigning a Parameter, Module or buffer removes
        the attribute), so for a tuple (or None) on a module that keeps
        ``nn.Module.__setattr__``, writing the instance dict is what that method does.
        """
        if ((new is None or isinstance(new, tuple)) and "state" in self.__dict__
                and type(self).__setattr__ is nn.Module.__setattr__):  # fmt: skip
            self.__dict__["state"] = new
        else:
            self.state = new

    def reset(self) -> None:
        """Forget the state kept by :meth:`step` (start a new stream)."""
        self.state = None
