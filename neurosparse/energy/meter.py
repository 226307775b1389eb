"""The energy meter: counts what a model does, layer by layer and step by step.

>>> with Meter(model) as m:                      # doctest: +SKIP
...     model(spikes)                           # [T, B, ...]
>>> print(m.report(hardware=["loihi", "cpu-45nm"]))   # doctest: +SKIP

Modules that count themselves (``neurosparse._counters.OpCounter``) are reset when the
meter is entered and read after each of their calls; nothing below them is hooked, so
their work is never counted twice. Every other supported module is counted from its
inputs and outputs (see ``synaptic``, ``recurrent``, ``neurons``) by a wrapper around its
``forward`` (our own neurons: torch hooks, which the fused kernels look for).

Cost: a call only records references (and meta tensors for what is read by shape only);
the counting runs once per sequence, on all its steps stacked, with one pass of
``kernels/step_stats.py`` per spike tensor on CPU and no host read on a GPU until then.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

from .._checks import check_choice
from .._counters import COUNT_KEYS, OpCounter
from ..errors import DTypeError, ParameterError, UncountedWorkWarning
from . import _tensors as tt
from .context import LAYOUTS, StepContext
from .counts import FIELDS, LayerCounts
from .fanout import new_epoch, zero_weights
from .neurons import ACTIVATION_TYPES, count_activation, count_neuron, neuron_family
from .recurrent import count_rnn, count_rnn_cell
from .sequence import (
    Call,
    SequenceBuffer,
    call_batch,
    chunk_span,
    continues,
    first_batch,
    incoming_state,
    knows_layout,
    modified_in_place,
    outgoing_state,
    sequence_shape,
)
from .synaptic import (
    NORM_TYPES,
    POOL_TYPES,
    count_conv,
    count_linear,
    count_norm,
    count_norse_li_linear,
    count_pool,
    norse_li_linear,
    params_bytes,
)

Handler = Callable[..., dict[str, torch.Tensor]]


def _classify(module: nn.Module) -> tuple[str, Handler, bool] | None:
    """(kind, counter, stackable): stackable counters accept all steps stacked on dim 0."""
    family = neuron_family(module)
    if family is not None:
        kind = "recurrent" if family == "norse-recurrent" else "neuron"

        def handler(m, a, o, c, r, s, _f=family):
            return count_neuron(m, a, o, c, r, s, _f)

        return kind, handler, family != "norse-recurrent"
    if norse_li_linear(module):
        return "synaptic", count_norse_li_linear, True
    table: Sequence[tuple[Any, str, Handler, bool]] = (
        (nn.Linear, "synaptic", count_linear, True),
        (nn.modules.conv._ConvNd, "synaptic", count_conv, True),
        (nn.RNNCellBase, "recurrent", count_rnn_cell, False),
        (nn.RNNBase, "recurrent", count_rnn, False),
        (POOL_TYPES, "pool", count_pool, True),
        (NORM_TYPES, "norm", count_norm, False),
        (ACTIVATION_TYPES, "activation", count_activation, True),
    )
    for types, kind, fn, stackable in table:
        if isinstance(module, types):
            return kind, fn, stackable
    return None


def _stacked(ts: list[torch.Tensor], values: bool) -> torch.Tensor:
    """[T, ...] from T equal-shape tensors; a meta tensor when only the shape is read."""
    if values:
        return tt.stack(ts)
    return torch.empty((len(ts), *ts[0].shape), dtype=ts[0].dtype, device="meta")


def _stack_calls(calls: list, synaptic: bool) -> tuple[tuple, Any] | None:
    """Stack the T calls of one layer into one [T, ...] call, or None if shapes differ.

    Synaptic counters read input values and only the output's shape; neuron and
    activation counters read output values (spikes) and only the input's shape.
    """
    first_args, first_out = calls[0]
    x0 = first_args[0] if first_args else None
    if not isinstance(x0, torch.Tensor):
        return None
    xs = [c[0][0] for c in calls]
    if any(not isinstance(x, torch.Tensor) or x.shape != x0.shape for x in xs):
        return None
    outs = [tt.first_tensor(c[1]) for c in calls]
    if any(o is None or o.shape != outs[0].shape for o in outs):
        return None
    out = _stacked(outs, not synaptic)
    if isinstance(first_out, tuple):  # keep the structure (state count) of the output
        out = (out, *first_out[1:])
    return (_stacked(xs, synaptic), *first_args[1:]), out


# Counts of an event Linear that are (events in a row) x a per-layer constant, and counts
# that are the same for every row.
_EVENT_FIELDS = ("synops", "macs", "events_in", "weight_bytes_read")
_ROW_FIELDS = ("dense_macs", "inputs_in", "neuron_updates", "state_bytes_rw",
               "dense_weight_bytes_read", "activation_bytes")


def _per_row_linear(module: nn.Module, totals: dict) -> bool:
    """A self-counting Linear whose counts split exactly by step from events per step:
    a layer that says each input event costs the same (``EventLinear``; not a delta layer,
    whose events are the changes, nor one whose fan-out varies per input), all its events
    unit or all graded, and it emits nothing."""
    return (getattr(type(module), "counts_per_input_event", False)
            and (totals["synops"] == 0 or totals["macs"] == 0) and totals["spikes"] == 0)


def _events_per_step(module: nn.Module, x: torch.Tensor, span: tuple[int, int]):
    """Input events per step: the layer's own per-row counts where its scan kept them
    (CPU), else one count over the input."""
    rows = module.__dict__.get("_row_events")
    if rows is not None and len(rows) == span[0] * span[1]:
        return torch.as_tensor(rows).reshape(span[0], -1).sum(1)
    return tt.nonzero_lead(x.detach().reshape(span[0], -1), 1)


def _linear_steps(totals: dict, events: list[int]) -> dict[str, list[float]]:
    """Per-step counts (key-major) of a ``_per_row_linear`` layer from its input events
    per step."""
    n = sum(events)
    T = len(events)
    out = {k: [totals[k] / T] * T for k in _ROW_FIELDS}
    out.update({k: ([totals[k] * e / n for e in events] if n else [0.0] * T)
                for k in _EVENT_FIELDS})
    return out


def _join_chunks(calls: list, T: int, B: int) -> tuple[tuple, torch.Tensor] | None:
    """One call on ``[T, ...]`` (or ``[T*B, ...]``) from several calls of a synaptic layer
    that each got consecutive steps of one sequence (``[T_c, B, ...]``: a sequence fed in
    pieces), or None when their inputs do not add up to the sequence."""
    if len(calls) < 2:
        return None
    xs = [c.payload[0][0] if c.payload[0] else None for c in calls]
    outs = [tt.first_tensor(c.payload[1]) for c in calls]
    if any(not isinstance(x, torch.Tensor) or x.dim() < 2 or x.shape[1:] != xs[0].shape[1:]
           for x in xs):
        return None
    if any(o is None or o.dim() < 1 or o.shape[1:] != outs[0].shape[1:] for o in outs):
        return None
    if sum(int(x.shape[0]) for x in xs) not in (T, T * B):
        return None
    out = torch.empty((sum(int(o.shape[0]) for o in outs), *outs[0].shape[1:]),
                      dtype=outs[0].dtype, device="meta")  # synaptic counters read its shape
    return (torch.cat([x.detach() for x in xs]),
            *calls[0].payload[0][1:]), out


def _exact_delta(tm: torch.Tensor, prev: torch.Tensor | None):
    """Changed input elements of a self-counting layer's call, ``tm`` seen time-major
    ([steps, ...]): (changes between the call's own steps, non-zeros of its first step
    (first step compared with zero), changes of its first step since ``prev`` (the
    previous call's last step; None without one), its last step to keep as ``prev``).

    Counts stay tensors on the input's device (read back when the sequence is counted:
    no host sync in the hook); the last step is copied, so an input buffer refilled in
    place between steps is compared as it was."""
    rows = tm.detach().reshape(tm.shape[0], -1)
    rest, first_zero = tt.step_changes(rows)
    first_prev = None
    if prev is not None and prev.shape == rows[0].shape and prev.device == rows.device:
        first_prev = (rows[0] != prev).sum()
    return rest, first_zero, first_prev, rows[-1].clone()


def _take_delta(totals: dict, sequence_start: bool) -> None:
    """Turn a self-counting layer's buffered ``_delta`` into its temporal counts: its
    first step against zero where it starts a sequence (or has no previous step)."""
    delta = totals.pop("_delta", None)
    if delta is None:
        return
    rest, first_zero, first_prev, compared = delta
    first = first_zero if (sequence_start or first_prev is None) else first_prev
    totals["delta_events_in"] = float(rest + first)
    totals["delta_inputs_in"] = float(compared)


def _note_zero_weights(module: nn.Module, rec: LayerCounts) -> None:
    """Say where a self-counting layer's counts differ from the hooked layers' rule.

    Our layers count each event × its full fan-out (what hardware holding the dense weight
    matrix executes); torch layers under the meter count effective operations, which skip
    zero weights (NeuroBench's rule). With zero weights (a pruned layer) the two differ:
    the report says so instead of mixing the rules unseen. Read once, when the meter
    exits (a host read of the weights: never inside a hook, which must not synchronise).
    """
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor) or w.is_meta:
        return
    zeros = zero_weights(module, w)
    if zeros:
        rec.note(
            f"{zeros} of {w.numel()} weights are zero: this layer counts every event times "
            "its full fan-out (dense weight storage), where torch layers are counted with "
            "zero weights skipped (NeuroBench's effective operations), so its synops/MACs "
            "are higher than an nn layer with the same weights would report"
        )


def _flag(hook):
    """Mark a hook as the meter's: fused kernels (``layers.event_linear_lif``) stay fused
    and call it themselves with the shapes it needs."""
    hook._ns_meter_hook = True
    return hook


class _Restore:
    """Handle whose ``remove()`` puts back what a wrapper replaced on a module."""

    def __init__(self, module: nn.Module, name: str):
        self.module, self.name = module, name
        self.had = name in module.__dict__
        self.prior = module.__dict__.get(name)

    def remove(self) -> None:
        if self.had:
            self.module.__dict__[self.name] = self.prior
        else:
            self.module.__dict__.pop(self.name, None)


def _wrap_forward(module: nn.Module, pre, hook) -> _Restore:
    """Count a foreign module by wrapping its ``forward`` (an instance attribute, removed
    on exit) instead of torch hooks: a module with hooks takes ``nn.Module``'s slow call
    path, which measured ~10 us per call, as much as the counting itself on a step loop.
    ``pre``/``hook`` get the arguments torch's pre-hook (with kwargs) and hook would."""
    handle = _Restore(module, "forward")
    original = module.forward

    if pre is None:
        def forward(*args, **kwargs):
            out = original(*args, **kwargs)
            hook(module, args, out)
            return out
    else:
        def forward(*args, **kwargs):
            pre(module, args, kwargs)
            out = original(*args, **kwargs)
            hook(module, args, out)
            return out

    module.__dict__["forward"] = forward
    return handle


class Meter:
    """Context manager that counts operations, spikes and memory traffic of a model.

    Parameters
    ----------
    model : torch.nn.Module
        Any model: neurosparse modules, snnTorch, Norse, SpikingJelly or plain PyTorch.
    layout : {"auto", "TB", "BT", "B"}
        ``"auto"`` (default) infers time steps and batch from how the modules are
        called, whatever the calling pattern (a step loop inside or outside ``forward``,
        submodules called directly, one call per sequence, several batches in one
        ``with`` block): every call of a stateful neuron (snnTorch, Norse cells,
        SpikingJelly single-step) is one time step, and a neuron called with a fresh
        state (``None``, ``reset_mem()``, ``functional.reset_net``) starts a new
        sequence; a module that knows its layout (neurosparse neurons and event/delta
        layers, SpikingJelly ``step_mode="m"``, Norse ``LIF``) covers ``[T, B, ...]``
        per call. A model without any recognised neuron is stateless: each call of the
        model is one sample batch of one step. When one call could hold time or batch
        (a Linear on a 3-D input, convolutions on a flattened ``[T*B, ...]``) and no
        module says which, the meter raises :class:`~neurosparse.errors.ParameterError`
        asking for one of the explicit layouts: time-first ``"TB"`` (``[T, B, ...]`` per
        call), batch-first ``"BT"``, or ``"B"`` (each call one step ``[B, ...]``; call
        :meth:`next_sequence` between independent sequences).
    batch_size, time_steps : int, optional
        Override the batch size / number of steps read from the model's input.
    temporal : bool
        Count temporal (delta) sparsity of synaptic-layer inputs (one extra pass over
        each input); ``False`` makes the meter cheaper.
    name : str, optional
        Model name shown in reports (default: the model's class name).

    Notes
    -----
    Per-inference figures in reports are totals divided by the number of samples seen.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        layout: str = "auto",
        batch_size: int | None = None,
        time_steps: int | None = None,
        temporal: bool = True,
        name: str | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise DTypeError(
                f"model must be a torch.nn.Module, got {type(model).__name__}"
            )
        check_choice("layout", layout, LAYOUTS)
        for arg, v in (("batch_size", batch_size), ("time_steps", time_steps)):
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ParameterError(f"{arg} must be a positive int or None, got {v!r}")
        self.model = model
        self.layout = layout
        self.name = name or type(model).__name__
        self._batch_override = batch_size
        self._time_override = time_steps
        self._temporal = bool(temporal)
        self._records: dict[str, LayerCounts] = {}
        self._handles: list = []
        self._scratch: dict[str, dict] = {}
        self._snapshots: dict[str, dict[str, int]] = {}
        self._exact_modules: dict[str, OpCounter] = {}
        self._pending: dict[str, list] = {}
        self._handlers: dict[str, tuple[Handler, bool, nn.Module]] = {}
        self._meta: dict[str, torch.Tensor] = {}
        self._ctx: StepContext | None = None
        self._depth = 0
        self._samples = 0
        self._steps = 0
        self._step = 0  # step index inside the current sequence (layout "B")
        self._seq_batch = 0
        self._active = False
        # layout "auto": calls are buffered per sequence (see ``sequence.py``)
        self._seq = SequenceBuffer()
        self._seqno = 0
        self._neuron_labels: set[str] = set()
        self._last_state: dict[str, tuple] = {}
        self._last_batch: dict[str, int | None] = {}
        #: modules that ran with weights of their own but have no counter: label -> type
        self.uncounted: dict[str, str] = {}

    # -- context manager -----------------------------------------------------------------
    def __enter__(self) -> Meter:
        if self._active:
            raise ParameterError("this Meter is already active; do not nest it with itself")
        new_epoch()
        self._install()
        self._active = True
        return self

    def __exit__(self, exc_type, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._active = False
        if self.layout == "auto":
            try:
                self._close_sequence()
            except ParameterError:
                if exc_type is None:
                    raise
                # the block failed already (maybe on this very check): keep its error
                self._seq = SequenceBuffer()
        if exc_type is None:
            self._warn_uncounted()
        for name, module in self._exact_modules.items():
            if self._records[name].calls:
                _note_zero_weights(module, self._records[name])
            diff = self._exact_diff(name, module)
            if any(diff.values()):  # counted outside forward (e.g. in backward)
                totals = {k: float(diff.get(k, 0)) for k in FIELDS}
                self._add_split(self._records[name], totals, None, max(self._steps, 1))

    def _install(self) -> None:
        skip: list[str] = []
        neuron_paths: list[str] = []
        root = self.model
        self._handles.append(root.register_forward_pre_hook(self._begin_call, with_kwargs=True))
        for name, module in root.named_modules():
            if any(name.startswith(p + ".") for p in skip):
                continue
            label = name or self.name
            if isinstance(module, OpCounter):
                module.reset_counters()
                skip.append(name)
                self._exact_modules[label] = module
                self._snapshots[label] = dict.fromkeys(COUNT_KEYS, 0)
                self._records[label] = LayerCounts(label, type(module).__name__, "exact",
                                                   exact=True)
                # its input's temporal (delta) counts are the meter's: see _exact_hook
                self._scratch[label] = {} if self._temporal else {"no_delta": True}
                self._handles.append(module.register_forward_hook(
                    _flag(self._exact_hook(label))))
                if not name:
                    break  # the whole model counts itself
                continue
            found = _classify(module)
            if found is None:
                if any(p is not None for p in module._parameters.values()):
                    # weights of its own used in a way no counter knows (a raw
                    # nn.Parameter in a custom forward, nn.Bilinear): say so
                    self._handles.append(_wrap_forward(module, None, self._uncounted_hook(label)))
                continue
            kind, fn, stackable = found
            self._records[label] = LayerCounts(label, type(module).__name__, kind)
            self._scratch[label] = {} if self._temporal else {"no_delta": True}
            if isinstance(module, nn.RNNCellBase) and any(
                    name.startswith(n + ".") for n in neuron_paths):
                self._scratch[label]["inside_neuron"] = True  # snnTorch SLSTM's LSTMCell
            self._handlers[label] = (fn, stackable, module)
            family = neuron_family(module)
            if family is not None:
                neuron_paths.append(name)
            pre = None
            if family is not None and self.layout == "auto":
                self._neuron_labels.add(label)
                pre = _flag(self._neuron_pre_hook(label, family))
            hook = _flag(self._layer_hook(label, family))
            if family != "neurosparse":
                self._handles.append(_wrap_forward(module, pre, hook))
                continue
            # our neurons keep torch hooks: fused kernels find and call them
            if pre is not None:
                self._handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
            self._handles.append(module.register_forward_hook(hook))
            if hasattr(module, "step"):
                self._handles.append(self._wrap_step(module, label, hook))
        self._handles.append(root.register_forward_hook(self._end_call))

    def _uncounted_hook(self, label: str):
        def hook(module, args, output):
            self.uncounted.setdefault(label, type(module).__name__)

        return hook

    def _warn_uncounted(self) -> None:
        if not self.uncounted:
            return
        names = ", ".join(f"{k!r} ({v})" for k, v in self.uncounted.items())
        warnings.warn(UncountedWorkWarning(
            f"Meter counted nothing for {len(self.uncounted)} module(s) that ran with weights "
            f"of their own in a way it does not know: {names}. Their operations are missing "
            "from the totals and energy figures; build them from layers the meter counts "
            "(nn.Linear, nn.Conv*, known neurons), or add their work by hand"
        ), stacklevel=3)

    # -- top-level calls -----------------------------------------------------------------
    def _begin_call(self, module, args, kwargs):
        self._depth += 1
        if self._depth > 1:
            return None
        x = tt.first_tensor(args)
        if x is None:
            x = tt.first_tensor(tuple(kwargs.values()))
        shape = tuple(x.shape) if x is not None else ()
        if self.layout == "auto":
            if not self._neuron_labels and self._seq.calls:
                self._close_sequence()  # stateless model: every call is its own batch
            self._seq.root_inputs.append(shape)
            return None
        if self.layout == "TB":
            T, B = (shape[0] if len(shape) > 0 else 1), (shape[1] if len(shape) > 1 else 1)
        elif self.layout == "BT":
            B, T = (shape[0] if len(shape) > 0 else 1), (shape[1] if len(shape) > 1 else 1)
        else:
            T, B = 1, (shape[0] if len(shape) > 1 else 1)
        T = self._time_override if (self._time_override and self.layout != "B") else T
        B = self._batch_override or B
        self._ctx = StepContext(self.layout, int(T), int(B))
        self._pending = {}
        if self.layout != "B":
            for s in self._scratch.values():
                s.pop("prev", None)  # a new batch of sequences starts
        return None

    def _end_call(self, module, args, output):
        self._depth -= 1
        if self._depth > 0:
            return None
        if self.layout == "auto":
            if not self._neuron_labels:
                # stateless model: the call was one batch; counted now, while a buffer
                # the caller refills in place still holds this call's input
                self._close_sequence()
            return None
        ctx = self._ctx
        self._count_calls(self._pending, partial(self._finish_exact, ctx=ctx),
                          partial(self._finish_hooked, ctx=ctx))
        if ctx.layout == "B":
            self._step += 1
            self._seq_batch = ctx.B
            self._steps = max(self._steps, self._step)
        else:
            self._samples += ctx.B
            self._steps = max(self._steps, ctx.T)
        self._pending = {}
        self._ctx = None
        return None

    def _count_calls(self, calls_by_label: dict, exact: Callable, hooked: Callable) -> None:
        """Add each layer's buffered calls to its record: ``exact(rec, calls)`` for the
        self-counting layers, ``hooked(label, rec, calls)`` for the hooked ones."""
        with tt.shared_work():
            for label, calls in calls_by_label.items():
                rec = self._records[label]
                rec.calls += len(calls)
                if label in self._exact_modules:
                    exact(rec, calls)
                else:
                    hooked(label, rec, calls)

    # Hooks only keep references to their tensors; counting happens once per model call,
    # on all time steps of a layer at once, which keeps the per-step cost of a Python loop
    # over time to an append (the tensors live until the model call returns).
    def _finish_hooked(self, label: str, rec: LayerCounts, calls: list, ctx: StepContext):
        fn, stackable, module = self._handlers[label]
        n = len(calls)
        if ctx.layout == "B":
            for args, out in calls:
                totals, _ = self._evaluate(label, module, fn, args, out, ctx)
                rec.add(totals, [totals], self._step)
            return
        stacked = None
        if stackable and n == ctx.T and n > 1:
            stacked = _stack_calls(calls, synaptic=rec.kind not in ("neuron", "activation"))
        if stacked is not None:
            sctx = StepContext("TB", ctx.T, ctx.B)
            totals, split = self._evaluate(label, module, fn, *stacked, sctx)
            self._add_split(rec, totals, split, ctx.T)
        elif n == ctx.T:
            step_ctx = StepContext("B", 1, ctx.B)
            for i, (args, out) in enumerate(calls):
                totals, _ = self._evaluate(label, module, fn, args, out, step_ctx)
                rec.add(totals, [totals], i)
        else:
            for args, out in calls:
                totals, split = self._evaluate(label, module, fn, args, out, ctx)
                self._add_split(rec, totals, split if n == 1 else None, ctx.T)

    def _finish_exact(self, rec: LayerCounts, calls: list, ctx: StepContext) -> None:
        for i, totals in enumerate(calls):
            _take_delta(totals, False)  # its baseline was chosen in the hook
            if ctx.layout == "B":
                rec.add(totals, [totals], self._step)
            elif len(calls) == ctx.T:
                rec.add(totals, [totals], i)
            else:
                self._add_split(rec, totals, None, ctx.T)

    def _add_split(self, rec: LayerCounts, totals: dict, split: list | None, T: int,
                   first_step: int = 0) -> None:
        if split is not None:
            rec.add(totals, split, first_step)
            return
        # counts without time structure are spread evenly over the steps
        T = max(T, 1)
        rec.add(totals, {k: [v / T] * T for k, v in totals.items()}, first_step)
        if T > 1:
            rec.note("part of the counts had no time structure and were spread evenly over steps")

    def _evaluate(self, label, module, fn, args, out, ctx: StepContext):
        """Run a counter; return totals and, when the counts have a time axis, per-step dicts."""
        with torch.no_grad():
            counts = fn(module, args, out, ctx, self._records[label], self._scratch[label])
        leads = [counts.get(k) for k in FIELDS]
        ref = next(t for t in leads if t is not None)
        shapes = {tuple(t.shape) for t in leads if t is not None}
        if len(shapes) == 1:  # the usual case: one stacked reduction instead of one per count
            shape = shapes.pop()
            K = len(FIELDS)
            zero = torch.zeros((), dtype=torch.float64, device=ref.device).expand(shape)
            block = torch.stack([zero if t is None else t.to(torch.float64) for t in leads])
            if len(shape) > 2:  # keep at most the (time, batch) leading dims
                block = block.reshape(K, shape[0], shape[1], -1).sum(-1)
            totals = block.reshape(K, -1).sum(1).tolist()
            split = None
            if ctx.T > 1 and ctx.layout != "B" and block.dim() > 1:
                parts = ctx.split_block(block)
                if parts is not None:
                    split = dict(zip(FIELDS, parts.tolist()))  # key-major
            return dict(zip(FIELDS, totals)), split
        zeros = torch.zeros((), dtype=torch.float64, device=ref.device)
        leads = [zeros if t is None else tt.reduce_lead(t) for t in leads]
        totals = torch.stack([t.sum() for t in leads]).tolist()
        split = None
        if ctx.T > 1 and ctx.layout != "B":
            parts = [ctx.split(t) if t.dim() else None for t in leads]
            # a split is usable when every count that is not zero has a time axis
            if all(p is not None or v == 0 for p, v in zip(parts, totals)):
                cols = [p if p is not None else torch.zeros(ctx.T, dtype=torch.float64,
                                                            device=ref.device)
                        for p in parts]
                split = dict(zip(FIELDS, torch.stack(cols).tolist()))  # key-major
        return dict(zip(FIELDS, totals)), split

    # -- layout "auto" -------------------------------------------------------------------
    def _buffer(self, label: str, payload, span, batch, read=()) -> None:
        if (not self._neuron_labels and self._depth == 0 and self._seq.calls
                and self._seq.first_label() == label):
            self._close_sequence()  # stateless layers called directly: a new batch
        calls = self._seq.calls.get(label)
        if calls and calls[-1].modified():  # fail at the step that overwrote it
            raise modified_in_place(label, "before this layer's next call")
        self._seq.append(label, Call(self._seqno, payload, span, batch, read))
        self._seqno += 1

    def _neuron_pre_hook(self, label: str, family: str, step: bool = False):
        """Before a neuron's call: a new sequence starts unless the call continues the
        neuron's previous one (passes the state it returned or kept, same batch).

        ``step``: the hook of ``neuron.step`` (one step ``[B, ...]``); otherwise a call of
        a module that knows its layout covers ``[T, B, ...]`` and its batch is dim 1."""
        module = self._handlers[label][2]
        may_chunk = not step and knows_layout(module, family)

        def pre(module, args, kwargs):
            if label not in self._seq.calls:
                return None
            incoming = incoming_state(module, family, args, kwargs)
            x = args[0] if args else None
            if not isinstance(x, torch.Tensor):
                x = tt.first_tensor(args)
            span = chunk_span(module, family, x) if may_chunk else None
            if (not continues(incoming, self._last_state.get(label, ()))
                    or call_batch(span, x) != self._last_batch.get(label)):
                self._boundary(label)
            return None

        return pre

    def _boundary(self, label: str) -> None:
        """Neuron ``label`` starts a new sequence: split the buffer where its step began.

        The new sequence starts at the latest call of the module that opened the current
        sequence (its input layer, called before this neuron in every step), unless that
        module is the neuron itself or was not called since the neuron's last call.
        """
        seq = self._seq
        first = seq.first_label()
        f_last = seq.calls[first][-1].seqno
        n_prev = seq.calls[label][-1].seqno
        cut = f_last if (first != label and f_last > n_prev) else self._seqno
        self._seq = seq.split_at(cut)
        self._close_sequence(seq)

    def _close_sequence(self, seq: SequenceBuffer | None = None) -> None:
        """Count one finished sequence: infer (T, B), then give each call its steps."""
        if seq is None:
            seq, self._seq = self._seq, SequenceBuffer()
        if not seq.calls:
            return
        for label, calls in seq.calls.items():
            if any(c.modified() for c in calls):
                raise modified_in_place(label, "after the call, before the sequence ended")
        leads = {}
        for label, calls in seq.calls.items():
            if label in self._exact_modules or self._records[label].kind not in (
                    "synaptic", "pool"):
                continue
            module = self._handlers[label][2]
            x = tt.first_tensor(calls[0].payload[0])
            ks = getattr(module, "kernel_size", None)
            sample_ndim = (len(ks) + 1) if isinstance(ks, tuple) else (
                1 if isinstance(module, nn.Linear) else x.dim() - 1)
            leads[label] = x.dim() - sample_ndim
        T, B = sequence_shape(seq, self._neuron_labels, leads)
        B = self._batch_override or B
        for s in self._scratch.values():
            s.pop("prev", None)
        self._count_calls(seq.calls, partial(self._close_exact, T=T),
                          partial(self._close_hooked, T=T, B=B))
        self._samples += B
        self._steps = max(self._steps, T)

    def _close_hooked(self, label: str, rec: LayerCounts, calls: list, T: int, B: int):
        fn, _, module = self._handlers[label]
        n = len(calls)
        if any(c.span for c in calls):  # chunks of [T_c, B, ...], one after another
            first = 0
            for c in calls:
                Tc, Bc = c.span or (1, B)
                ctx = StepContext("TB", Tc, Bc) if c.span else StepContext("B", 1, Bc)
                totals, split = self._evaluate(label, module, fn, *c.payload, ctx)
                self._add_split(rec, totals, split if c.span else [totals], Tc, first)
                first += Tc
            return
        if n == T:  # one call per step
            self._finish_hooked(label, rec, [c.payload for c in calls],
                                StepContext("TB", T, B))
            return
        step_ctx = StepContext("B", 1, B)
        if n % T == 0:  # a module called k times per step (shared weights)
            k = n // T
            for i, c in enumerate(calls):
                totals, _ = self._evaluate(label, module, fn, *c.payload, step_ctx)
                rec.add(totals, [totals], i // k)
            return
        # e.g. one call on the whole [T, B, ...] or [T*B, ...] among step-wise neurons
        ctx = StepContext("TB", T, B)
        joined = _join_chunks(calls, T, B) if rec.kind in ("synaptic", "pool") else None
        if joined is not None:
            # consecutive chunks of the sequence (a stream fed in pieces): counted as one
            # call, so each chunk's first step is compared with the step before it
            totals, split = self._evaluate(label, module, fn, *joined, ctx)
            self._add_split(rec, totals, split, T)
            return
        for c in calls:
            totals, split = self._evaluate(label, module, fn, *c.payload, ctx)
            self._add_split(rec, totals, split if n == 1 else None, T)

    def _close_exact(self, rec: LayerCounts, calls: list, T: int) -> None:
        n = len(calls)
        first = 0
        for i, c in enumerate(calls):
            _take_delta(c.payload, i == 0)  # its first call starts the sequence
            if c.span is None and n % T == 0:
                rec.add(c.payload, [c.payload], i // (n // T))
                continue
            Tc = c.span[0] if c.span else T
            steps = c.payload.pop("_events_per_step", None)
            if Tc == 1:
                rec.add(c.payload, [c.payload], first)
            elif steps is not None:
                rec.add(c.payload, _linear_steps(c.payload, steps.tolist()), first)
            else:
                self._no_steps(rec, c.payload)
            first += Tc

    @staticmethod
    def _no_steps(rec: LayerCounts, totals: dict) -> None:
        """A self-counting layer reported one total for several steps: keep it unsplit."""
        rec.add(totals, None)
        rec.note("per-step counts not recorded by this layer (it reports one total per "
                 "call over all steps): its totals are exact; sparsity-over-time leaves it "
                 "out and the latency model spreads its work evenly over the steps")

    def _wrap_step(self, module: nn.Module, label: str, hook):
        """Count ``neuron.step(x)`` calls too (forward hooks only see ``forward``).

        The wrapper is an instance attribute removed on exit; its returned handle has
        the ``remove()`` the meter calls on every hook handle.
        """
        pre = (self._neuron_pre_hook(label, "neurosparse", step=True)
               if self.layout == "auto" else None)
        original = module.step

        def step(x, state=None, **kw):  # kw: ``out=`` (static state buffers)
            if pre is not None:
                pre(module, (x, state if state is not None else module.state), {})
            out = original(x, state, **kw)
            hook(module, (x, state), out, step=True)
            return out

        module.step = step

        class _Handle:
            @staticmethod
            def remove():
                module.__dict__.pop("step", None)

        return _Handle()

    def _layer_hook(self, label: str, family: str | None = None):
        module = self._handlers[label][2]
        # only modules that know their layout can cover several steps per call; the rest
        # (plain torch layers, snnTorch neurons, Norse cells) skip the span test per call
        may_chunk = knows_layout(module, family)

        _, stackable, _ = self._handlers[label]
        kind = self._records[label].kind
        # Buffered calls keep only the tensors their counter reads the values of, so the
        # model's intermediate tensors are freed as without a meter (keeping them all
        # measured ~3 ms of 45 ms on the snnTorch 700-256-20 loop): synaptic counters read
        # the input's values and the output's shape, neuron and activation counters the
        # spikes' values, the input's shape and the number of state tensors.
        slim = ("out" if kind in ("synaptic", "pool") else
                "in" if stackable and kind in ("neuron", "activation") else None)

        # the tensors whose values the counter reads, watched for in-place writes until
        # the sequence is counted: a synaptic layer's input, a neuron's spikes; a norm's
        # counter reads shapes only (an in-place ReLU after a BatchNorm is fine)
        reads = {"synaptic": "in", "pool": "in", "neuron": "out", "activation": "out",
                 "recurrent": "all"}.get(kind)

        def read_by_counter(args, output) -> tuple:
            if reads == "in":
                return args[:1]
            first_out = output[0] if isinstance(output, tuple) and output else output
            if reads == "out":
                return (first_out,)
            return (*args, first_out) if reads == "all" else ()

        def hook(module, args, output, step: bool = False):
            payload = (args, output)
            if slim is not None:
                payload = self._slim(label, slim, args, output)
            if self.layout == "auto":
                x = tt.first_tensor(args)
                span = chunk_span(module, family, x) if may_chunk and not step else None
                batch = int(x.shape[0]) if x is not None and x.dim() >= 2 else None
                self._buffer(label, payload, span, batch, read_by_counter(args, output))
                if family is not None:
                    self._last_state[label] = outgoing_state(module, family, output)
                    self._last_batch[label] = call_batch(span, x)
                return
            if self._ctx is not None:
                self._pending.setdefault(label, []).append(payload)
                return
            # called outside a call of the metered model: count now, at step 0
            fn, _, _ = self._handlers[label]
            totals, _ = self._evaluate(label, module, fn, args, output, StepContext("B", 1, 1))
            rec = self._records[label]
            rec.calls += 1
            rec.add(totals, [totals], 0)
            rec.note("called outside the metered model's forward: counted at step 0")
            self._steps = max(self._steps, 1)

        return hook

    def _shape_only(self, key: str, t: torch.Tensor) -> torch.Tensor:
        """A meta tensor standing for ``t`` where a counter reads only its shape and dtype;
        one per layer and shape (creating one per call would cost what it saves)."""
        m = self._meta.get(key)
        if m is None or m.shape != t.shape or m.dtype != t.dtype:
            m = self._meta[key] = torch.empty(t.shape, dtype=t.dtype, device="meta")
        return m

    def _slim(self, label: str, slim: str, args: tuple, output):
        """(args, output) of one call with the tensors its counter does not read replaced."""
        if slim == "out":
            if isinstance(output, torch.Tensor):
                return args, self._shape_only(label, output)
            return args, output
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor):
            return args, output
        shape = self._shape_only(label, x)
        if type(output) is tuple and output and isinstance(output[0], torch.Tensor):
            # any tensor stands for a state tensor: counters only count them
            output = (output[0], *([shape] * tt.count_tensors(output[1:])))
        return (shape,), output

    # -- exact counters ------------------------------------------------------------------
    def _exact_diff(self, label: str, module: OpCounter) -> dict[str, int]:
        now = module.op_counts()
        before = self._snapshots[label]
        self._snapshots[label] = dict(now)
        return {k: now[k] - before.get(k, 0) for k in COUNT_KEYS}

    def _exact_hook(self, label: str):
        def hook(module, args, output):
            ctx = self._ctx or StepContext("B", 1, 1)
            rec = self._records[label]
            rec.params_bytes = params_bytes(module)
            x, y = tt.first_tensor(args), tt.first_tensor(output)
            span = None
            if self.layout == "auto":
                span = chunk_span(module, None, x)
                pairs = span[0] * span[1] if span else (first_batch(args) or 1)
            else:
                pairs = ctx.B
            if (self.layout != "auto" and x is not None
                    and ctx.time_view(x, max(x.dim() - 2, 0)) is not None):
                pairs = ctx.T * ctx.B
            if y is not None:
                rec.units = max(rec.units, y.numel() // max(pairs, 1))
            moved = sum(t.numel() * t.element_size() for t in (x, y) if t is not None)
            totals = dict.fromkeys(FIELDS, 0.0)
            totals.update({k: float(v) for k, v in self._exact_diff(label, module).items()})
            totals["dense_weight_bytes_read"] = float(rec.params_bytes * pairs)
            totals["activation_bytes"] = float(moved)
            delta = self._exact_delta_counts(label, x, span, ctx, totals)
            if delta is not None:  # read back with the sequence's counts (_take_delta)
                totals["_delta"] = delta
            if self.layout == "auto":
                if span and span[0] > 1 and _per_row_linear(module, totals):
                    # events per step: one count over the input the layer already scanned
                    totals["_events_per_step"] = _events_per_step(module, x, span)
                self._buffer(label, totals, span, first_batch(args))
            elif self._ctx is not None:
                self._pending.setdefault(label, []).append(totals)
            else:
                _take_delta(totals, False)
                rec.calls += 1
                rec.add(totals, [totals], 0)
                self._steps = max(self._steps, 1)

        return hook

    def _exact_delta_counts(self, label: str, x, span, ctx: StepContext, totals: dict):
        """Temporal (delta) counts of a self-counting layer's input, as a hooked synaptic
        layer's (``synaptic.delta_counts``): (changes after the call's first step, changes
        of its first step against zero, against the previous call's last step or None,
        elements compared); None when the layer takes no input elements or
        ``temporal=False``. The layers count their input's events, not its changes, so
        without this they were left out of the report's temporal sparsity."""
        scratch = self._scratch[label]
        if (scratch.get("no_delta") or not isinstance(x, torch.Tensor) or x.numel() == 0
                or not totals.get("inputs_in")):
            return None
        if self.layout == "auto":
            # where a sequence starts is known when it closes (_close_exact), so both
            # baselines of the first step are kept; "last" outlives the sequence
            tm, key = (x if span else x.unsqueeze(0)), "last"
        else:
            view = ctx.time_view(x, max(x.dim() - 2, 0))
            # a whole sequence: its first step against zero; one step: against the
            # previous one ("prev" is cleared where a sequence starts)
            tm, key = (view[0], None) if view is not None else (x.unsqueeze(0), "prev")
        rest, first_zero, first_prev, last = _exact_delta(tm, scratch.get(key) if key else None)
        if key is not None:
            scratch[key] = last
        return rest, first_zero, first_prev, x.numel()

    # -- results -------------------------------------------------------------------------
    def next_sequence(self) -> None:
        """The next call starts a new, independent sequence (layouts "auto" and "B").

        Needed only where the meter cannot see a reset: layout "B", or a model whose
        neurons keep their state between sequences on purpose.
        """
        if self.layout == "auto":
            self._close_sequence()
            return
        if self.layout != "B":
            raise ParameterError('next_sequence() is for layout="auto" or "B" only; with '
                                 '"TB"/"BT" every call of the model is a new batch')
        if self._step:
            self._samples += self._seq_batch
        self._step = 0
        for s in self._scratch.values():
            s.pop("prev", None)

    @property
    def samples(self) -> int:
        """Samples (sequences) seen so far."""
        open_seq = self._seq_batch if (self.layout == "B" and self._step) else 0
        return self._samples + open_seq

    @property
    def time_steps(self) -> int:
        return self._steps

    def counts(self) -> list[LayerCounts]:
        """Per-layer counts (totals over all samples), in model order, called layers only."""
        return [r for r in self._records.values() if r.calls or any(r.totals.values())]

    def report(
        self,
        hardware: Sequence[str | dict | Any] | str | None = None,
        execution: str = "native",
        static: str = "occupied",
    ):
        """Energy and latency per inference on each hardware profile.

        Parameters
        ----------
        hardware : list of profile names, dicts, TOML/YAML paths or HardwareProfile
            Default: every built-in profile (:func:`list_profiles`). A name may end in
            ``":event"`` or ``":dense"`` to override how the hardware executes layers.
        execution : {"native", "event", "dense", "both"}
            "both" evaluates every profile in event *and* dense execution (comparison mode).
        static : {"occupied", "chip"}
            Static power of a neuromorphic chip charged for the cores the network
            occupies (default) or for whole chips ("whole chip powered").
        """
        from .report import Report

        return Report.build(self, hardware, execution, static)


__all__ = ["Meter"]
