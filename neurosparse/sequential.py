"""``Sequential`` that threads neuron states, so ``out, states = net(x)`` just works."""

from __future__ import annotations

import inspect

from torch import nn

from ._layout import batch_first_out, over_time, time_first
from .errors import ParameterError
from .layers.event_linear_lif import event_linear_lif, fusable

# per module class: how its forward takes a state (None: it takes none), read once
_STATE_CALLS: dict[type, str | None] = {}


def _state_call(module: nn.Module) -> str | None:
    """``"return_state"`` (``forward(x, state, return_state=True)``: the delta layers,
    which return their state only when asked), ``"positional"`` (``forward(x, state)``
    returning ``(out, state)``: recurrent cells, peers' neurons) or None."""
    cls = type(module)
    if cls not in _STATE_CALLS:
        # the class's forward, not the instance attribute: a wrapper set on one instance
        # (the energy meter counts some modules through ``forward(*args, **kwargs)``
        # wrappers) would otherwise decide for every module of the class
        try:
            ps = list(inspect.signature(cls.forward).parameters.values())[1:]  # no self
        except (TypeError, ValueError):
            ps = []
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if any(p.name == "return_state" for p in ps):
            _STATE_CALLS[cls] = "return_state"
        elif (
            len(ps) >= 2
            and ps[1].kind in positional
            or any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in ps)
        ):
            _STATE_CALLS[cls] = "positional"
        else:
            _STATE_CALLS[cls] = None
    return _STATE_CALLS[cls]


class Sequential(nn.Sequential):
    """Like ``nn.Sequential``, but modules that return ``(output, state)`` are unpacked.

    ``forward(x, states=None)`` returns ``(output, states)``: ``states[k]`` is the state
    returned by the k-th stateful module (``None`` for plain modules): neurons, delta
    layers (``DeltaEncoder``, ``DeltaLinear``, ``DeltaConv2d``, asked with
    ``return_state=True``), recurrent cells and any module returning ``(output, state)``.
    Passing ``states`` back continues every one of them from where it stopped, so a
    sequence run in chunks gives what it gives in one call.

    Torch layers that read their input as samples ``[N, C, ...]`` (convolutions, pooling,
    batch / instance / group norm, ``Dropout1d/2d/3d``, ``Upsample``; torch's own
    classes, not subclasses, which may take ``[T, B, ...]`` themselves) run on
    ``[T*B, ...]``, T merged into the batch, and their output is split back into
    ``[T, B, ...]``: what a loop over the time steps gives (SpikingJelly's multi-step
    semantics; batch norm in training mode takes its statistics over all ``T x B``
    samples of the call, in eval mode it equals the loop; ``Dropout`` draws an
    independent mask for every step). An ``nn.Flatten`` must start at axis 2
    (``nn.Flatten(2)``): one that would merge the batch or time axis raises
    :class:`~neurosparse.errors.ShapeError`. Linear, element-wise and last-axis layers
    run on ``[T, B, ...]`` as they are.

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
        x, out_states = self._run(x, states, t_b)
        return batch_first_out(x, batch_first, t_b), out_states

    def _run(self, x, states, t_b=()):
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
            call = (
                "positional"
                if getattr(module, "is_spiking_neuron", False)
                else (_state_call(module))
            )
            if call == "return_state":
                x, state = module(x, state, return_state=True)
            elif call == "positional" and state is not None:
                x = module(x, state)
            elif state is not None:
                raise ParameterError(
                    f"states[{k}] was given for module {k} ({type(module).__name__}), whose "
                    "forward takes no state, so it cannot continue from it; pass None there"
                )
            else:
                x = over_time(module, x, t_b)
            if isinstance(x, tuple):
                x, state = x
            out_states.append(state)
            k += 1
        return x, out_states
