"""``GraphStream``: a spiking net run one time step per call, replayed from a CUDA graph.

Streaming inference (a DVS camera in real time, batch 1, one step per call) is bound by
host time when each step launches its kernels from Python: on an H100 the 2-layer
4096-4096-4096 LIF net of ``benchmarks/gpu_events.py`` takes 365 µs per eager step and
22.7 µs per step replayed from a CUDA graph (``benchmarks/RESULTS.md``). A graph replays
kernels, not Python, so a net is capturable only when every step reads and writes the
same memory: the neurons' states must live in static buffers that each step rewrites
(``step(x, state, out=state)``), not in tensors the module rebinds. ``GraphStream`` sets
that up for the modules of a ``Sequential``: static state buffers per neuron, a warm-up
on a side stream, the capture, and op counters that stay exact across replays.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping

import torch
from torch import nn
from torch.nn.modules import module as _nn_module

from ._counters import OpCounter
from ._state import StepState
from .errors import DeviceError, DTypeError, ParameterError, ShapeError
from .layers.dispatch import LiveCount
from .neurons.base import SpikingNeuron
from .neurons.functional import NeuronState
from .sequential import _state_call


def _flatten(net) -> list[nn.Module]:
    if isinstance(net, (nn.Sequential, nn.ModuleList)):
        return [m for child in net for m in _flatten(child)]
    if isinstance(net, nn.Module):
        return [net]
    if isinstance(net, Iterable) and not isinstance(net, (str, bytes, Mapping)):
        return [m for child in net for m in _flatten(child)]
    raise ParameterError(
        "GraphStream takes a Sequential, a ModuleList, a module or a list of modules, got "
        f"{type(net).__name__}"
    )


_PEERS = {"snntorch": "from_snntorch", "norse": "from_norse",
          "spikingjelly": "from_spikingjelly"}  # fmt: skip
# names under which a forward takes the state it continues from (recurrent cells,
# snnTorch's ``mem``, Norse's ``state``); another second argument (a mask) is an input
_STATE_ARGS = {"state", "states", "hx", "h", "h0", "hidden", "mem", "prev_state", "s"}


def _state_arg(m: nn.Module) -> bool:
    """Whether ``m``'s forward takes a state to continue from as a further argument."""
    call = _state_call(m)
    if call != "positional":
        return call is not None
    try:
        ps = list(inspect.signature(type(m).forward).parameters.values())[1:]
    except (TypeError, ValueError):
        return True
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in ps):
        return True  # ``forward(*args)``: a wrapper that may pass anything on
    return len(ps) > 1 and ps[1].name.lower() in _STATE_ARGS


def _check_stateless(m: nn.Module) -> None:
    """Refuse a module whose step state a graph could not carry: only neurosparse neurons
    get static state buffers, every other module must keep no state between steps."""
    m = getattr(m, "_orig_mod", m)  # a torch.compile'd module: the module it compiled
    if isinstance(m, SpikingNeuron):
        return
    inner = next((s for s in m.modules() if isinstance(s, (SpikingNeuron, StepState))), None)
    recurrent = isinstance(m, (nn.RNNBase, nn.RNNCellBase))
    if inner is None and not recurrent and not _state_arg(m):
        return
    if inner is m:
        why = "it keeps the state of its step calls in the module"
    elif inner is not None:
        why = f"it holds a {type(inner).__name__}"
    elif recurrent:
        why = "a recurrent layer"
    else:
        why = "its forward takes the state to continue from as an argument"
    peer = _PEERS.get(type(m).__module__.split(".")[0])
    fix = (f"convert the net with ns.interop.{peer}(net) first (its neurons become "
           "neurosparse neurons with equal spikes)" if peer else
           "put neurosparse neurons directly into the Sequential, or run this net with an "
           "explicit step loop")  # fmt: skip
    raise ParameterError(
        f"{type(m).__name__} may keep a state between time steps ({why}), which "
        "GraphStream cannot carry: it steps the neurosparse neurons (LIF, IF, ALIF, "
        f"CubaLIF) of a Sequential on static state buffers and runs every other module as "
        f"a stateless function of one input; {fix}"
    )


def _has_hooks(modules: list[nn.Module]) -> bool:
    """Whether forward hooks are set globally or on any of ``modules`` (all submodules),
    or a neuron's ``step`` is wrapped on the instance (as the energy meter counts it)."""
    if _nn_module._global_forward_hooks or _nn_module._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks or "step" in m.__dict__
               for m in modules)  # fmt: skip


def _state_dtype(x: torch.Tensor) -> torch.dtype:
    """The dtype ``step(x, state, out=state)`` keeps a neuron's state in for input ``x``:
    fp32 for half-precision input (the kernels and the reference step keep an fp32
    membrane), the input's own otherwise, and half precision only where
    ``NEUROSPARSE_KERNELS=torch`` runs the reference in it (``neuron_step_op``)."""
    from .ops import registry

    if x.dtype in (torch.float16, torch.bfloat16) and registry.kernel_mode() != "torch":
        return torch.float32
    return x.dtype


def _to_rest(neuron: SpikingNeuron, st: NeuronState) -> None:
    """A static state to rest in place: membrane ``v_init``, the other fields 0."""
    for s in st:
        s.zero_()
    if neuron.v_init != 0:
        st.v.fill_(neuron.v_init)


def _frozen(modules: list[nn.Module]) -> list:
    """What a capture bakes into the graph besides the kernels: each module's training
    flag and the memory of each parameter and buffer."""
    out: list = []
    for m in modules:
        out.append(m.training)
        out += [t.data_ptr() for t in m._parameters.values() if t is not None]
        out += [t.data_ptr() for t in m._buffers.values() if t is not None]
    return out


class _Counts:
    """Keeps the op counters of a captured net exact across replays.

    Counts a kernel makes on the device (tallies, int64 tensors) are replayed with it;
    counts the host adds in Python (``inputs_in``, ``dense_macs`` of an event layer) ran
    once, at capture, and are added again after each replay. The device entries must stay
    the tensors the graph writes: a counter reset by hand (``reset_counters()``) drops
    them, which :meth:`check` refuses.
    """

    def __init__(self, counters: list[OpCounter]) -> None:
        self.counters = counters
        self.host: list[tuple] = []
        self.device: list[tuple] = []

    def snapshot(self) -> tuple[list[dict], list[dict]]:
        """Per counter: its host (int) entries, and its device entries (the objects)."""
        cs = [m._counts() for m in self.counters]
        return ([{k: v for k, v in c.items() if type(v) is int} for c in cs],
                [{k: v for k, v in c.items() if type(v) is not int} for c in cs])  # fmt: skip

    def capture_done(self, before: list[dict], before_dev: list[dict]) -> None:
        for m, old, old_dev in zip(self.counters, before, before_dev):
            c = m._counts()
            new = {k: v for k, v in c.items() if type(v) is int}
            # a device entry made during the capture is the graph's own memory, rewritten
            # (not summed into) on each replay
            changed = [k for k in old if k not in new] + [
                k for k, v in c.items() if type(v) is not int and old_dev.get(k) is not v]
            if changed:
                raise ParameterError(
                    f"the op counters {changed} of {type(m).__name__} changed kind during the "
                    "CUDA-graph capture (a warm-up step should have settled them); make the "
                    "GraphStream with warmup >= 1"
                )
            self.host.append((c, [(k, v - old.get(k, 0)) for k, v in new.items()
                                  if v != old.get(k, 0)]))  # fmt: skip
            self.device.append((m, c, [(k, v) for k, v in c.items() if type(v) is not int]))
        self.zero()

    def zero(self) -> None:
        """Counters to zero in place (the graph keeps writing the same device tensors)."""
        for c, _ in self.host:
            for k, v in list(c.items()):
                if isinstance(v, torch.Tensor):
                    v.zero_()
                elif isinstance(v, LiveCount):
                    v.tally.zero_()
                    v.offset = 0
                else:
                    c[k] = 0

    def check(self) -> None:
        for m, c, entries in self.device:
            for k, v in entries:
                if c.get(k) is not v:
                    raise ParameterError(
                        f"the op counters of {type(m).__name__} were reset while a GraphStream "
                        "replays into them; call the stream's reset_counters() instead"
                    )

    def replayed(self) -> None:
        for c, deltas in self.host:
            for k, d in deltas:
                c[k] = c.get(k, 0) + d


class GraphStream:
    """Run a spiking net one time step per call, from a CUDA graph on the GPU.

    Parameters
    ----------
    net : nn.Module or list of nn.Module
        A ``Sequential`` (``ns.Sequential`` or ``nn.Sequential``, nested ones flattened),
        a single module or a list of modules, applied in order. neurosparse neurons
        (``LIF``, ``IF``, ``ALIF``, ``CubaLIF``) step on static state buffers that this
        object owns; every other module must be a stateless function of its input
        (``EventLinear``, ``EventConv2d``, torch layers, pooling, ``Flatten``).
        Modules that keep a state of their own (delta layers, recurrent cells, snnTorch
        or Norse neurons) raise :class:`~neurosparse.errors.ParameterError`.
    example : torch.Tensor
        One time step of input, ``[B, ...]``; every call of :meth:`step` takes this
        shape and dtype. Its values are used for the warm-up only.
    graph : bool, optional
        Capture the step in a CUDA graph. Default: when ``example`` is on a CUDA device.
        ``False`` runs the same steps eagerly (any device), e.g. to meter them.
    warmup : int
        Eager steps before the capture (on a side stream, as CUDA graphs require; the
        first calls of the Numba kernels compile and keep their launch parameters).
        Their state and counts are discarded.
    clone : bool
        Return a copy of each step's output (default). ``False`` returns the graph's
        static output tensor itself, which the next step overwrites: one copy fewer per
        step, for a loop that consumes each output before the next call.

    Attributes
    ----------
    states : list of NeuronState or None
        Per module of :attr:`modules`: the static state of a neuron (made at its first
        step; fp32 rows of one buffer), None for the other modules. Read them to watch
        membranes; :meth:`reset` rewrites them in place.
    modules : list of nn.Module
        The modules stepped, in order (nested ``Sequential``s flattened).
    graphed : bool
        Whether steps replay a CUDA graph.

    Notes
    -----
    Runs under ``torch.no_grad()`` (inference); put the net in ``eval()`` mode first
    (dropout and batch norm in training mode draw and update as in training). The net
    starts from rest; :meth:`reset` returns every neuron to rest. In a graph, Python
    code inside the modules runs once, at capture: forward hooks (the energy meter's
    included) would never see the replays, so a graphed stream refuses them (meter a
    stream made with ``graph=False``), and it refuses a step after a module's training
    mode or a parameter or buffer tensor was replaced (the graph holds the old ones;
    edits in place are replayed). The op counters of event layers stay exact: device
    counts are replayed with the kernels, host counts are added after each replay, and
    a graphed stream starts them at zero (its warm-up is not counted; an eager stream
    leaves them as they were).
    Half-precision input keeps an fp32 neuron state, as ``step`` does.

    Examples
    --------
    >>> net = ns.Sequential(ns.EventLinear(4096, 4096), ns.LIF(0.9),
    ...                     ns.EventLinear(4096, 4096), ns.LIF(0.9)).cuda().eval()
    >>> stream = ns.GraphStream(net, torch.zeros(1, 4096, device="cuda"))
    >>> for frame in frames:          # [1, 4096] each
    ...     spikes = stream.step(frame)
    """

    def __init__(self, net, example: torch.Tensor, *, graph: bool | None = None,
                 warmup: int = 3, clone: bool = True) -> None:  # fmt: skip
        if not isinstance(example, torch.Tensor):
            raise DTypeError(f"example must be a torch.Tensor, got {type(example).__name__}")
        if example.dim() < 1:
            raise ShapeError("example must be one time step [B, ...], got a 0-d tensor")
        graph = example.is_cuda if graph is None else bool(graph)
        if graph and not example.is_cuda:
            raise DeviceError(
                f"a CUDA graph needs the example on a CUDA device, got {example.device}; move "
                "the net and the example with .cuda(), or pass graph=False"
            )
        if int(warmup) < (1 if graph else 0):
            raise ParameterError(f"warmup must be >= 1 for a CUDA graph, got {warmup}")
        self.modules = _flatten(net)
        if not self.modules:
            raise ParameterError("the net has no modules")
        for m in self.modules:
            _check_stateless(m)
        self.graphed, self.clone = graph, bool(clone)
        self._x = example.detach().clone()
        self._neuron = [isinstance(m, SpikingNeuron) for m in self.modules]
        # every module and submodule once (where hooks and counters may sit)
        self._all = list({id(s): s for m in self.modules for s in m.modules()}.values())
        # per module: its static state (neurons, made at their first step), else None
        self.states: list[NeuronState | None] = [None] * len(self.modules)
        # every counting layer once, also inside blocks and at several positions
        counters = {id(m): m for m in self._all if isinstance(m, OpCounter)}
        self._counts = _Counts(list(counters.values()))
        self._graph = None
        self._out: torch.Tensor | None = None
        if graph:
            self._capture(int(warmup))
        self.reset()

    # set-up ------------------------------------------------------------------------------
    def _state_for(self, k: int, h: torch.Tensor) -> NeuronState:
        """Neuron ``k``'s static state, made at its first step shaped like its input."""
        st = self.states[k]
        if st is None:
            st = NeuronState(*torch.empty(4, *h.shape, dtype=_state_dtype(h),
                                          device=h.device).unbind(0))  # fmt: skip
            _to_rest(self.modules[k], st)
            self.states[k] = st
        return st

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        with torch.no_grad():
            for k, m in enumerate(self.modules):
                self._at = k  # for the capture's error message
                if self._neuron[k]:
                    st = self._state_for(k, h)
                    h, _ = m.step(h, st, out=st)
                else:
                    h = m(h)
                    if not isinstance(h, torch.Tensor):
                        raise ParameterError(
                            f"{type(m).__name__} returned a {type(h).__name__}; GraphStream "
                            "passes one tensor from module to module"
                        )
        return h

    def _capture(self, warmup: int) -> None:
        from ._checks import finite_checks_on_gpu

        if _has_hooks(self._all):
            raise ParameterError(_HOOKS)
        if finite_checks_on_gpu():
            raise ParameterError(
                "NEUROSPARSE_CHECK_FINITE_GPU=1 reads every input's check back to the host, "
                "which a CUDA graph cannot capture; unset it for a GraphStream, or pass "
                "graph=False"
            )
        side = torch.cuda.Stream(device=self._x.device)
        side.wait_stream(torch.cuda.current_stream(self._x.device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                self._run(self._x)
        torch.cuda.current_stream(self._x.device).wait_stream(side)
        before = self._counts.snapshot()
        self._graph = torch.cuda.CUDAGraph()
        self._at = None
        try:
            with torch.cuda.graph(self._graph):
                self._out = self._run(self._x)
        except RuntimeError as exc:  # torch's capture errors name no module
            at = self._at
            where = "" if at is None else f" in module {at} ({type(self.modules[at]).__name__})"
            raise ParameterError(
                f"capturing the step in a CUDA graph failed{where}: {exc}. A module that reads "
                "a result back to the host (a data-dependent shape, .item(), a check) cannot "
                "be captured; run it with graph=False"
            ) from exc
        self._counts.capture_done(*before)
        self._frozen = _frozen(self._all)

    # use ---------------------------------------------------------------------------------
    def reset(self) -> None:
        """Every neuron back to rest (membrane ``v_init``, the other fields 0)."""
        with torch.no_grad():
            for m, st in zip(self.modules, self.states):
                if st is not None:
                    _to_rest(m, st)

    def reset_counters(self) -> None:
        """The op counters of the net's layers to zero, in place (a counter reset through
        the layer itself would drop the device tallies the graph writes)."""
        if self.graphed:
            self._counts.zero()
        else:
            for m in self._counts.counters:
                m.reset_counters()

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One time step ``x [B, ...]`` (the example's shape and dtype; any device) ->
        the net's output for it."""
        if not isinstance(x, torch.Tensor):
            raise DTypeError(f"step takes a torch.Tensor, got {type(x).__name__}")
        if x.shape != self._x.shape:
            made = tuple(self._x.shape)
            if x.dim() == len(made) + 1 and tuple(x.shape[1:]) == made:
                hint = "step takes one time step [B, ...]: loop over the first axis"
            elif x.dim() == len(made) and tuple(x.shape[1:]) == made[1:]:
                hint = "the batch size is part of the stream: make one per batch size"
            else:
                hint = "each step must be shaped like the example the stream was made with"
            raise ShapeError(
                f"step input has shape {tuple(x.shape)} but the stream was made for {made}; "
                f"{hint}"
            )
        if x.dtype != self._x.dtype:
            raise DTypeError(
                f"step input has dtype {x.dtype} but the stream was made for {self._x.dtype}; "
                f"convert it with x.to({self._x.dtype})"
            )
        if not self.graphed:
            return self._run(x.to(self._x.device))
        if _has_hooks(self._all):
            raise ParameterError(_HOOKS)
        if _frozen(self._all) != self._frozen:
            raise ParameterError(
                "a module's training mode, or a parameter or buffer tensor of the net, was "
                "replaced after the CUDA-graph capture (.train()/.eval(), .to(), a new "
                "nn.Parameter, load_state_dict(assign=True)); the graph would replay the old "
                "ones: make a new GraphStream. Edits in place (load_state_dict, an optimizer "
                "step, weight.data.copy_) are replayed and need none"
            )
        self._counts.check()
        self._x.copy_(x)
        self._graph.replay()
        self._counts.replayed()
        return self._out.clone() if self.clone else self._out


_HOOKS = (
    "a module of the net has forward hooks (an energy meter, or your own): a CUDA graph "
    "replays the kernels, not the hooks, so they would see only the captured step; meter "
    "a stream made with graph=False, or remove the hooks before making the GraphStream"
)
