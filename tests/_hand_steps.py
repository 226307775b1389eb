"""The step loop a user writes by hand: each neuron's state passed from step to step."""

from __future__ import annotations

import torch

import neurosparse as ns


def hand_steps(net, xs) -> list[torch.Tensor]:
    """``net``'s output for each step of ``xs``, neurons stepped with explicit states."""
    mods, states, outs = list(net), {}, []
    with torch.no_grad():
        for x in xs:
            h = x
            for k, m in enumerate(mods):
                if isinstance(m, ns.SpikingNeuron):
                    h, states[k] = m.step(h, states.get(k))
                else:
                    h = m(h)
            outs.append(h)
    return outs
