"""``Sequential`` that threads neuron states, so ``out, states = net(x)`` just works."""

from __future__ import annotations

from torch import nn


class Sequential(nn.Sequential):
    """Like ``nn.Sequential``, but modules that return ``(output, state)`` are unpacked.

    ``forward(x, states=None)`` returns ``(output, states)``: ``states[k]`` is the state
    returned by the k-th stateful module (``None`` for plain modules). Passing ``states``
    back continues every neuron from where it stopped.
    """

    def forward(self, x, states=None):  # type: ignore[override]
        states = list(states) if states is not None else [None] * len(self)
        out_states = []
        for module, state in zip(self, states):
            if getattr(module, "is_spiking_neuron", False):
                x, state = module(x, state)
            else:
                x = module(x)
                if isinstance(x, tuple):
                    x, state = x
            out_states.append(state)
        return x, out_states
