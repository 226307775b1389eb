"""Inferring time steps and batch from how a model's modules are called (``layout="auto"``).

Two kinds of evidence, both read from the modules themselves rather than from the shape
of the model's input (which cannot tell [T, B, ...] from [B, T, ...] or [B, C, L]):

* **chunks**: a call of a module that defines its own layout covers ``T`` steps of ``B``
  samples, read from dims 0 and 1 of its input: neurosparse neurons (``forward`` is
  sequence mode), neurosparse event/delta layers given one more dim than a step has,
  SpikingJelly modules with ``step_mode="m"``, Norse sequence modules (``LIF``, not
  ``LIFCell``), torch ``nn.RNN``/``GRU``/``LSTM`` (``batch_first`` says which dim).
* **steps**: every other call of a stateful neuron is one time step.

Either way, a neuron call whose incoming state is not a state the neuron returned or kept
last (``None``, ``reset_mem()``, SpikingJelly ``reset_net``, a fresh ``init_leaky()``), or
whose batch differs, starts a new sequence (:func:`continues`); a chunk that is passed
the state of the chunk before continues its sequence, whatever the chunks' lengths.
"""

from __future__ import annotations

import torch
from torch import nn

from .._counters import OpCounter
from ..errors import ParameterError
from . import _tensors as tt


def norse_sequence(module: nn.Module) -> bool:
    """True for Norse modules that take a whole [T, B, ...] sequence (``LIF``, ``LSNN``...)."""
    return any(c.__module__.startswith("norse.torch.module") and c.__name__ in
               ("SNN", "SNNRecurrent") for c in type(module).__mro__)


def _sequence_neuron(module: nn.Module) -> bool:
    """neurosparse neurons: ``forward`` is sequence mode ([T, B, ...]); ``step`` is a step."""
    from ..neurons.base import SpikingNeuron

    return isinstance(module, SpikingNeuron)


def knows_layout(module: nn.Module, family: str | None) -> bool:
    """Whether a call of ``module`` may cover several steps (:func:`chunk_span` can answer
    other than None): the rest (plain torch layers, snnTorch neurons, Norse cells) skip
    the span test per call."""
    return (getattr(module, "step_mode", None) is not None
            or isinstance(module, (nn.RNNBase, OpCounter)) or family == "neurosparse"
            or (family in ("norse", "norse-recurrent") and norse_sequence(module)))


def chunk_span(module: nn.Module, family: str | None, x) -> tuple[int, int] | None:
    """(T, B) covered by one call whose module knows its layout, else None (one step)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        return None
    t_b = (int(x.shape[0]), int(x.shape[1]))
    if getattr(module, "step_mode", None) == "m":  # SpikingJelly multi-step
        return t_b
    if family == "neurosparse" and _sequence_neuron(module):
        return t_b
    if family in ("norse", "norse-recurrent") and norse_sequence(module):
        return t_b
    if isinstance(module, nn.RNNBase):  # torch RNN/GRU/LSTM: batch_first says which is time
        if x.dim() == 2:  # one unbatched sequence [T, N]
            return int(x.shape[0]), 1
        return (t_b[1], t_b[0]) if module.batch_first else t_b
    if isinstance(module, OpCounter):
        if hasattr(module, "input_size") and not hasattr(module, "in_features"):
            return t_b if x.dim() == 3 else None  # delta RNNs: [T, B, in]
        if hasattr(module, "in_features"):  # event/delta Linear: [T, B, in] or [B, in]
            return t_b if x.dim() == 3 else None
        ks = getattr(module, "kernel_size", None)
        if ks is not None:  # event/delta conv: [T, B, C, H, W] or [B, C, H, W]
            nd = len(ks) if isinstance(ks, (tuple, list)) else 2
            return t_b if x.dim() == nd + 3 else None
    return None


def incoming_state(module: nn.Module, family: str, args, kwargs):
    """The state object a neuron call starts from (None: starts from rest)."""
    passed = [a for a in (*args[1:], *kwargs.values()) if a is not None]
    if family == "snntorch" and passed:
        # the membrane: ``mem`` comes last in every snnTorch neuron's call (Leaky(x, mem),
        # Synaptic(x, syn, mem), RLeaky(x, spk, mem)...); a recurrent neuron's ``spk``
        # comes first, and it is returned as the output, not as a state
        return kwargs["mem"] if kwargs.get("mem") is not None else passed[-1]
    if passed:
        return passed[0]
    if family == "snntorch":
        return getattr(module, "mem", None)
    if family == "spikingjelly":
        return getattr(module, "v", None)
    return None  # neurosparse / Norse with state=None start from rest


def outgoing_state(module: nn.Module, family: str, output) -> tuple:
    """Objects a continuing call may pass back (returned state, module-held state).

    None is never one of them: it is how a call starts from rest. A neurosparse neuron
    continues only from the state it returned: its kept ``state`` belongs to ``step``
    (the meter's ``step`` wrapper passes it as the incoming state), stays None in
    sequence mode, and is left behind by a step given an explicit state. (Counted as a
    continuation, that None made every ``neuron(x)`` continue the call before it.)
    """
    attr = _STATE_ATTR.get(family)
    held = getattr(module, attr, None) if attr is not None else None
    returned = output[1:] if isinstance(output, tuple) else ()
    return tuple(o for o in (*returned, held) if o is not None)


def continues(incoming, outgoing: tuple) -> bool:
    """Whether a neuron call that starts from ``incoming`` (:func:`incoming_state`)
    continues the call that left ``outgoing`` (:func:`outgoing_state`): the very object
    it returned or kept, or a view of it (``mem.detach()``, a state tuple rebuilt from
    detached fields: truncated-BPTT loops; each step used to count as a new sequence).
    ``None`` (from rest) never continues."""
    return incoming is not None and any(incoming is o or _same_memory(incoming, o)
                                        for o in outgoing)


def _same_memory(a, b) -> bool:
    """``a`` holds the tensors of ``b`` or views of them (same data pointer, shape, dtype
    and device), field by field for state tuples. The meter keeps ``b`` alive until the
    next call, so its memory cannot be handed to a newly allocated state meanwhile: a
    match means ``a`` was derived from ``b``, not made fresh (``init_leaky()``, zeros)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return (a.numel() > 0 and a.data_ptr() == b.data_ptr() and a.shape == b.shape
                and a.dtype == b.dtype and a.device == b.device)
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) and a:
        fields = [(x, y) for x, y in zip(a, b) if x is not None or y is not None]
        return bool(fields) and all(_same_memory(x, y) for x, y in fields)
    return False


def call_batch(span: tuple[int, int] | None, x) -> int | None:
    """Batch size of one call: the chunk's ``B`` where the call covers ``[T, B, ...]``
    (dim 0 is then time, not batch), else dim 0 of a step's input ``[B, ...]``."""
    if span is not None:
        return span[1]
    return int(x.shape[0]) if isinstance(x, torch.Tensor) and x.dim() >= 2 else None


# state a neuron keeps on itself and reads when none is passed (snnTorch, SpikingJelly)
_STATE_ATTR = {"snntorch": "mem", "spikingjelly": "v"}


class Call:
    """One buffered call: global order number, payload, (T, B) chunk or None, batch size,
    and the version counters of the tensors whose values its counter will read."""

    __slots__ = ("seqno", "payload", "span", "batch", "versions")

    def __init__(self, seqno: int, payload, span, batch: int | None, read=()):
        self.seqno, self.payload, self.span, self.batch = seqno, payload, span, batch
        # meta tensors stand for shapes; inference tensors keep no version counter (and
        # cannot be written outside inference mode)
        self.versions = tuple((t, t._version) for t in read
                              if isinstance(t, torch.Tensor) and not t.is_meta
                              and not t.is_inference())  # fmt: skip

    def modified(self) -> bool:
        """Whether a tensor the counter reads was written in place since the call: the
        count, made when the sequence closes, would read the new values, not the call's."""
        return any(t._version != v for t, v in self.versions)


def modified_in_place(label: str, where: str) -> ParameterError:
    """The error for a layer whose buffered input or output was overwritten in place."""
    return ParameterError(
        f"Meter: a tensor that layer {label!r} was called with, or returned, was written "
        f"in place {where} "
        "(e.g. one input buffer refilled every step with copy_); layout='auto' counts a "
        "sequence when it ends and would read the new values. Pass a fresh tensor per step "
        "(model(buf.clone())), or use Meter(model, layout='B'), which counts each call of "
        "the model when it returns (call meter.next_sequence() between sequences)"
    )


class SequenceBuffer:
    """Calls of every module during one sequence (one batch of independent samples)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Call]] = {}
        self.root_inputs: list[tuple[int, ...]] = []

    def append(self, label: str, call: Call) -> None:
        self.calls.setdefault(label, []).append(call)

    def split_at(self, cut: int) -> SequenceBuffer:
        """Move calls numbered >= ``cut`` into a new sequence and return it."""
        new = SequenceBuffer()
        for label in list(self.calls):
            keep = [c for c in self.calls[label] if c.seqno < cut]
            moved = [c for c in self.calls[label] if c.seqno >= cut]
            if moved:
                new.calls[label] = moved
            if keep:
                self.calls[label] = keep
            else:
                del self.calls[label]
        return new

    def first_label(self) -> str:
        return min(self.calls, key=lambda k: self.calls[k][0].seqno)


def sequence_shape(seq: SequenceBuffer, neurons: set[str], synaptic_leads: dict[str, int]
                   ) -> tuple[int, int]:
    """(T, B) of a finished sequence, or ParameterError when it cannot be told.

    ``synaptic_leads`` maps hooked synaptic layers to the number of leading (non-feature)
    dims of their input, used to detect an ambiguous single call.
    """
    cover = {label: sum(c.span[0] if c.span else 1 for c in calls)
             for label, calls in seq.calls.items()}
    chunked = [lab for lab, calls in seq.calls.items() if any(c.span for c in calls)]
    stepped = [lab for lab in seq.calls if lab in neurons and lab not in chunked]
    evidence = [cover[lab] for lab in chunked + stepped]
    T = max(evidence) if evidence else max(len(c) for c in seq.calls.values())
    B = None
    for lab in chunked:
        B = next(c.span[1] for c in seq.calls[lab] if c.span)
        break
    if B is None:
        order = sorted(seq.calls, key=lambda k: seq.calls[k][0].seqno)
        pick = [lab for lab in order if lab in neurons] + order
        B = next((seq.calls[lab][0].batch for lab in pick
                  if seq.calls[lab][0].batch is not None), 1)
    if T == 1 and not chunked:
        _check_unambiguous(seq, synaptic_leads)
    return int(T), int(B)


def _check_unambiguous(seq: SequenceBuffer, synaptic_leads: dict[str, int]) -> None:
    """One call, no layout-aware module: refuse when the input could hold time."""
    for label, lead in synaptic_leads.items():
        calls = seq.calls.get(label)
        if not calls:
            continue
        if lead >= 2:
            raise ParameterError(_ambiguous(label, f"its input has {lead} leading dims"))
    for shape in seq.root_inputs:
        if len(shape) < 3:
            continue
        d0d1 = shape[0] * shape[1]
        for label, calls in seq.calls.items():
            b = calls[0].batch
            if label in synaptic_leads and b == d0d1 and shape[0] > 1 and shape[1] > 1:
                raise ParameterError(_ambiguous(
                    label, f"it sees {d0d1} = {shape[0]}x{shape[1]} rows, the first two "
                    f"dims of the model's input {list(shape)} flattened"))


def _ambiguous(label: str, why: str) -> str:
    return (f"Meter cannot tell time steps from batch in layer {label!r}: {why}, and no "
            "module in the model says which dim is time. Pass layout='TB' if the model's "
            "input is [T, B, ...] (time first), layout='BT' if it is [B, T, ...], or "
            "layout='B' if every call of the model is one time step [B, ...] (then call "
            "meter.next_sequence() between independent sequences)")


def first_batch(x) -> int | None:
    x = tt.first_tensor(x)
    if x is None or x.dim() < 2:
        return None
    return int(x.shape[0])


__all__ = ["chunk_span", "knows_layout", "incoming_state", "outgoing_state", "continues",
           "call_batch", "Call", "SequenceBuffer",
           "modified_in_place",
           "sequence_shape", "norse_sequence", "first_batch"]
