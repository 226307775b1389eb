"""Peer libraries' LIF neurons run over a whole ``[T, B, N]`` input current, the way each
library's own tutorials run them, for the benchmark scripts (imported from beside them)."""

from __future__ import annotations

from collections.abc import Callable

import torch


def snntorch_loop(leaky, cur: torch.Tensor) -> torch.Tensor:
    """Spikes ``[T, B, N]`` of an snnTorch neuron (``snn.Leaky``) stepped in a Python
    loop over the time steps of ``cur``, its membrane initialised by ``init_leaky``."""
    mem = leaky.init_leaky()
    out = []
    for t in range(cur.shape[0]):
        s, mem = leaky(cur[t], mem)
        out.append(s)
    return torch.stack(out)


def spikingjelly_lif(device) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """SpikingJelly's multi-step ``LIFNode`` (tau 2, detached reset, its default backend)
    as a function of ``cur [T, B, N]`` that resets the neuron before each sequence; None
    where SpikingJelly is not installed."""
    try:
        from spikingjelly.activation_based import neuron as sjn
    except ImportError:
        return None
    node = sjn.LIFNode(tau=2.0, step_mode="m", detach_reset=True).to(device)

    def run(cur: torch.Tensor) -> torch.Tensor:
        node.reset()
        return node(cur)

    return run
