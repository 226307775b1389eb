"""``SpikingNeuron``: the module shell shared by LIF, IF and ALIF.

A neuron module holds parameters and a :class:`NeuronSpec`; the dynamics live in
``ops/lif_reference.py`` (reference) and ``ops/lif_sequence.py`` (fused kernel).

Two modes, both returning ``(spikes, state)``:

- ``neuron(x)`` -- sequence mode, ``x [T, B, ...]``. It starts from rest unless a
  ``state`` is passed: a sequence is a whole sample, so no hidden state leaks from one
  batch into the next.
- ``neuron.step(x_t)`` -- step mode, ``x_t [B, ...]``. Without an explicit ``state`` it
  continues from the state of its previous ``step`` call, kept in the module until
  :meth:`reset`.
"""

from __future__ import annotations

import operator

import torch
from torch import nn

from .._checks import (
    check_finite,
    check_finite_range,
    check_float_tensor,
    check_module_device,
    check_rank,
    check_same_device,
    unwrap,
)
from .._shared_tensors import shared_tensor
from .._state import StepState
from ..errors import ShapeError
from ..ops.lif_sequence import neuron_sequence_op, neuron_step_op
from .functional import NeuronParams, NeuronSpec, NeuronState, initial_state


def constant(value: float, like: torch.Tensor) -> torch.Tensor:
    """A shared, read-only 0-dim tensor ``value`` on ``like``'s device and dtype (what
    ``params()`` fills its unused and unit fields with; ``_shared_tensors.py``)."""
    return shared_tensor(("constant", value, like.device, like.dtype),
                         lambda: torch.full((), value, dtype=like.dtype, device=like.device))


# the neuron classes whose ``params()`` ``_step_params`` may reuse (exact types: a
# subclass may override ``params`` or derive a field from elsewhere)
_REUSABLE_PARAMS: set[type] = set()
# the attributes those ``params()`` read; one held as a plain instance attribute (after
# ``del lif.beta; lif.beta = t``, or from weight_norm-style hooks) is read before the
# module's parameter and buffer dicts, where the identity check of the cache looks
_PARAM_ATTRS = frozenset(("beta", "threshold", "alpha", "adapt", "rho", "gain", "v_leak",
                          "v_reset", "params"))  # fmt: skip

_STEP_RANKS = tuple(range(1, 8))
_SEQUENCE_RANKS = tuple(range(3, 9))


def reusable_params(cls: type) -> type:
    """Class decorator: ``cls.params()`` may be reused between steps by ``_step_params``.

    Only for a ``params()`` that returns the module's own parameters and buffers as they
    are, constants made like ``self.threshold`` (:func:`constant`), and fields that the
    class's ``_fresh_fields`` derives anew on every call.
    """
    _REUSABLE_PARAMS.add(cls)
    return cls


def _param(value, learn: bool, name: str, module: nn.Module) -> None:
    t = torch.as_tensor(value, dtype=torch.float32).clone()
    if learn:
        module.register_parameter(name, nn.Parameter(t))
    else:
        module.register_buffer(name, t)


class SpikingNeuron(StepState):
    """Base of every neurosparse neuron (the energy meter recognises the flag below)."""

    is_spiking_neuron = True
    # ``(tensors, threshold dtype, made under inference mode, params)`` of the last
    # step's ``params()``; see ``_step_params``
    _params_memo: tuple | None = None

    def __init__(self, spec: NeuronSpec, v_init: float = 0.0) -> None:
        super().__init__()
        self.spec = spec
        self.v_init = float(v_init)
        self.state: NeuronState | None = None

    # subclasses fill these -------------------------------------------------------------
    def params(self) -> NeuronParams:  # pragma: no cover - abstract
        raise NotImplementedError

    def _fresh_fields(self, p: NeuronParams) -> NeuronParams:
        """``p`` with the fields that ``params()`` derives from a tensor (e.g. the clamp of
        a learnable beta) computed anew: a derived copy cannot be kept, since an edit
        through ``tensor.data`` changes neither the tensor's identity nor its version."""
        return p

    def _step_params(self) -> NeuronParams:
        """:meth:`params` for one step: on the CPU the tuple of the previous step, while
        that is what ``params()`` would return.

        Making it costs more host time per step than a small step's arithmetic (the
        tuple, the buffers read through ``nn.Module.__getattr__``, the constants' cache).
        It is reused only for the classes marked :func:`reusable_params` (whose fields are
        the module's own tensors, which carry in-place edits with them, constants like the
        threshold, and fields ``_fresh_fields`` derives anew) and only while

        - the module's parameters and buffers are the same tensor objects (``.to()``,
          ``load_state_dict(assign=True)``, assigning or deleting one replace them);
        - the threshold, which the constants are made like, keeps its dtype and stays on
          the CPU (``threshold.data = ...`` may change both in the same object);
        - a tuple made under ``torch.inference_mode`` (whose fresh constants are inference
          tensors) is used under inference mode only;
        - no field (nor ``params`` itself) is a plain instance attribute, which Python
          reads before the parameter and buffer dicts.
        """
        if (type(self) not in _REUSABLE_PARAMS or not _PARAM_ATTRS.isdisjoint(self.__dict__)
                or torch.compiler.is_compiling()):  # fmt: skip
            return self.params()
        tensors = (*self._parameters.values(), *self._buffers.values())
        memo = self._params_memo
        if memo is not None:
            kept, dtype, inference, p = memo
            thr = p.threshold
            if (len(kept) == len(tensors) and all(map(operator.is_, kept, tensors))
                    and thr.dtype is dtype and thr.is_cpu
                    and (not inference or torch.is_inference_mode_enabled())):  # fmt: skip
                return self._fresh_fields(p)
        p = self.params()
        thr = p.threshold
        if isinstance(thr, torch.Tensor) and thr.is_cpu:
            self.__dict__["_params_memo"] = (tensors, thr.dtype,
                                             torch.is_inference_mode_enabled(), p)  # fmt: skip
        return p

    def _apply(self, fn, recurse=True):  # type: ignore[override]
        self.__dict__.pop("_params_memo", None)  # its tensors are being replaced
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_params_memo", None)  # a cache of this process, not the module's state
        return state

    @property
    def state_vars(self) -> int:
        """State variables the model really updates per neuron (for memory-traffic counts).

        ``NeuronState`` always carries v, i, a, c; a plain LIF uses only v.
        """
        s = self.spec
        return 1 + int(s.synaptic) + int(s.adaptive) + int(s.refractory > 0)

    # state -----------------------------------------------------------------------------
    def initial_state(self, x_t: torch.Tensor) -> NeuronState:
        """Resting state for one time step shaped like ``x_t`` (``[B, ...]``)."""
        return initial_state(x_t, self.v_init)

    def _check_state(self, state: NeuronState, like: torch.Tensor) -> NeuronState:
        if type(state) is NeuronState and like.is_cpu:
            # the common case (a state this neuron returned, on the CPU) in one test, no
            # device objects built; anything else takes the checks below, which raise
            try:
                v, i, a, c = state
                shape = like.shape
                if (v.shape == shape and i.shape == shape and a.shape == shape
                        and c.shape == shape and v.is_cpu and i.is_cpu and a.is_cpu
                        and c.is_cpu):  # fmt: skip
                    return state
            except Exception:  # not tensors: the checks below say so
                pass
        if not isinstance(state, NeuronState):
            if isinstance(state, tuple) and len(state) == 4:
                state = NeuronState(*state)
            else:
                raise ShapeError(
                    f"state must be a NeuronState (v, i, a, c) as returned by this neuron, "
                    f"got {type(state).__name__}"
                )
        for name, s in zip(NeuronState._fields, state):
            check_same_device(f"state.{name}", s, like, "the input")
            if s.shape != like.shape:
                raise ShapeError(
                    f"state.{name} has shape {tuple(s.shape)} but one time step of the input "
                    f"has shape {tuple(like.shape)}; pass a matching state, or call reset() "
                    f"after changing the batch size"
                )
        return state

    def _check_input(self, x: object, ranks: tuple[int, ...], layout: str) -> torch.Tensor:
        """The one entry check of both modes (type, rank, device, finiteness)."""
        x = check_float_tensor("input", unwrap(x))
        if x.dim() == 2 and ranks[0] == 3:
            raise ShapeError(
                f"a sequence input must be [T, B, features...] (time first), got 2-D shape "
                f"{tuple(x.shape)}; for one time step [B, features] call the neuron's "
                ".step(x) (a Sequential: pass x[None] as a one-step sequence, or step it "
                "with ns.GraphStream(net, x).step(x)), for one neuron per sample add a "
                "feature axis with x.unsqueeze(-1)"
            )
        check_rank("input", x, ranks, layout)
        check_module_device(self, x, type(self).__name__)
        check_finite("input", x)
        return x

    # modes -----------------------------------------------------------------------------
    def forward(
        self, x: torch.Tensor, state: NeuronState | None = None
    ) -> tuple[torch.Tensor, NeuronState]:
        """Sequence mode: ``x [T, B, ...]`` -> spikes ``[T, B, ...]`` and the final state.

        ``T = 0`` raises :class:`~neurosparse.errors.ShapeError`, as ``torch.nn.RNN``
        refuses it; fewer than three dimensions raise too (see ``docs/conventions.md``).
        """
        x = self._check_input(x, _SEQUENCE_RANKS, "[T, B, ...], time first")
        if x.shape[0] == 0:
            raise ShapeError(
                f"input has T = 0 time steps (shape {tuple(x.shape)}); a sequence needs at "
                "least one step (time is the first axis); skip the call for an empty sequence"
            )
        if state is not None:
            state = self._check_state(state, x[0])
        p = self.params()
        _check_param_shapes(p, x.shape[2:])
        return neuron_sequence_op(x, state, p, self.spec, self.v_init)

    def step(
        self, x: torch.Tensor, state: NeuronState | None = None, *,
        out: NeuronState | None = None,
    ) -> tuple[torch.Tensor, NeuronState]:
        """One time step: ``x [B, ...]`` -> spikes ``[B, ...]`` and the new state.

        ``state=None`` continues from the state this module kept from its previous
        ``step`` call (from rest after :meth:`reset`); an explicit ``state`` is used as
        given and the kept one is left alone.

        ``out`` (inference only) receives the new state in place, e.g. ``out=state`` to
        replay a recurrence in a CUDA graph on static buffers; keep them as the rows of
        one fp32 buffer, ``NeuronState(*torch.zeros(4, *x.shape, device=...).unbind(0))``,
        and on CUDA the kernel writes them directly (no copy). See
        ``docs/how-to/kernels.md``.
        """
        x = self._check_input(x, _STEP_RANKS, "[B, ...], one time step")
        if out is not None:
            out = self._check_state(out, x)

        def run(s):
            if s is not None and s is not out:  # ``out=state``: checked above
                s = self._check_state(s, x)
            p = self._step_params()
            _check_param_shapes(p, x.shape[1:])
            return neuron_step_op(x, s, p, self.spec, self.v_init, out)

        return self._step(run, state)

    def extra_repr(self) -> str:
        s = self.spec
        return (
            f"reset={s.reset!r}, reset_delay={s.reset_delay}, surrogate={s.surrogate!r}"
            + (f", refractory={s.refractory}" if s.refractory else "")
        )


def _check_param_shapes(p: NeuronParams, feat: torch.Size) -> None:
    """Require every per-neuron parameter to broadcast to the feature shape ``feat``.

    The kernels lay the parameters out per feature (``expand(feat)``), so a parameter
    with a batch axis or a size that fits no feature axis would otherwise fail there
    with torch's expand message, or, on the reference path, broadcast against the batch
    axis and give each sample its own value in step mode only.

    Raises
    ------
    ShapeError
        If a parameter has more dimensions than ``feat`` or a size other than 1 or the
        matching feature size.
    """
    for name, q in zip(NeuronParams._fields, p):
        if q.dim() == 0:  # the common case, kept to one check per field (per-step cost)
            continue
        if q.dim() > len(feat) or any(
                a not in (1, b) for a, b in zip(reversed(q.shape), reversed(feat))):  # fmt: skip
            raise ShapeError(
                f"{name} has shape {tuple(q.shape)}, which does not broadcast to the feature "
                f"shape {tuple(feat)} of the input (its axes after the batch axis); give one "
                "value, or one per neuron shaped like the features"
            )


def check_threshold(threshold) -> None:
    check_finite_range("threshold", threshold, lo=0.0)


def check_beta(beta) -> None:
    check_finite_range("beta", beta, lo=0.0, hi=1.0)
