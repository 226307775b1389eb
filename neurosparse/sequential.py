"""``Sequential`` that threads neuron states, so ``out, states = net(x)`` just works."""

from __future__ import annotations

from torch import nn

from ._layout import batch_first_out, time_first
from .layers.event_linear_lif import event_linear_lif, fusable


class Sequential(nn.Sequential):
    """Like ``nn.Sequential``, but modules that return ``(output, state)`` are unpacked.

    ``forward(x, states=None)`` returns ``(output, states)``: ``states[k]`` is the state
    returned by the k-th stateful module (``None`` for plain modules). Passing ``states``
    back continues every neuron from where it stopped.

    Parameters
    ----------
    *args : nn.Module or OrderedDict
        The modules, as for ``nn.Sequential``.
    fuse : bool, keyword-only
        Run an ``EventLinear`` immediately followed by a LIF-family neuron as one fused
        pass (``neurosparse.layers.event_linear_lif``) when no gradient is needed (under
        ``torch.no_grad()`` / ``torch.inference_mode()``, or when neither the input nor
        any parameter requires grad). Spikes, states and the layer's op counters are the
        same as unfused; only the input currents are never written to memory. Pairs
        that cannot be fused (gradients needed, hooks on either module, dense path,
        other dtypes, CUDA tensors, where the fused kernel measured slower; see that
        module) run unfused. Default True.
    batch_first : bool or None, keyword-only
        The layout of ``x``. Every neurosparse module takes time-first ``[T, B, ...]``
        (docs/conventions.md). ``True``: ``x`` is ``[B, T, ...]`` (Tonic's
        ``PadTensors(batch_first=True)``); it is swapped on the way in, and an output
        ``[T, B, ...]`` is swapped back to ``[B, T, ...]``. ``None`` (default):
        time-first, and a CPU input that carries the zero padding of a batch-first
        batch (samples of different lengths) raises :class:`~neurosparse.errors.ShapeError`
        instead of running with batch and time swapped. The check costs a pass over the
        input, so it runs on the first :attr:`LAYOUT_CHECKS` calls only (a misconfigured
        loader shows in its first batches). ``False``: time-first, unchecked.
    """

    LAYOUT_CHECKS = 8

    def __init__(self, *args, fuse: bool = True, batch_first: bool | None = None) -> None:
        super().__init__(*args)
        self.fuse = fuse
        self.batch_first = batch_first
        self._layout_checks_left = self.LAYOUT_CHECKS

    def forward(self, x, states=None):  # type: ignore[override]
        # getattr: a model pickled before these attributes existed still runs
        batch_first = getattr(self, "batch_first", None)
        left = getattr(self, "_layout_checks_left", 0)
        x = time_first(x, batch_first, "Sequential", check=left > 0)
        if left > 0 and batch_first is None:
            self._layout_checks_left = left - 1
        t_b = tuple(x.shape[:2]) if hasattr(x, "shape") else ()
        x, out_states = self._run(x, states)
        return batch_first_out(x, batch_first, t_b), out_states

    def _run(self, x, states):
        mods = list(self)
        states = list(states) if states is not None else []
        states += [None] * (len(mods) - len(states))
        out_states = []
        k = 0
        while k < len(mods):
            module, state = mods[k], states[k]
            if self.fuse and k + 1 < len(mods) and fusable(x, module, mods[k + 1]):
                # the linear keeps its slot's (unused) state, as when it runs alone
                x, nstate = event_linear_lif(x, module, mods[k + 1], states[k + 1])
                out_states += [state, nstate]
                k += 2
                continue
            if getattr(module, "is_spiking_neuron", False):
                x, state = module(x, state)
            else:
                x = module(x)
                if isinstance(x, tuple):
                    x, state = x
            out_states.append(state)
            k += 1
        return x, out_states
