"""``EventLinear`` followed by a LIF-family neuron as one fused pass, for inference.

The unfused pair writes the input currents ``[T, B, out]`` of the neuron to memory
(event gather over all ``T·B`` rows), then the neuron's sequence kernel reads them back.
:func:`event_linear_lif` runs one kernel that, per (batch element, tile of output
neurons), walks the time steps, gathers the weight rows of the inputs active at
``(t, b)`` into the currents and steps the neurons on them, writing only the spikes and
the final state (``kernels/event_linear_lif.py``, CPU only). It sums each current in the
order of the unfused gather and steps with the same scalar code
(``kernels/lif_step.py``), so spikes and state equal the unfused pair's bit for bit. (A
CUDA twin existed; it measured slower than the unfused pair on the H100 at 1-5 % input
and was deleted.)

The fused kernels keep no traces for a backward pass. Wherever the pair cannot be
fused, the call runs the unfused modules (``neuron(linear(x), state)``) and returns
their result, so the function can be called anywhere:

- gradients are needed (grad mode on and the input, a parameter, a neuron parameter or
  the state requires grad);
- the input is not a float32 ``[T, B, in]`` CPU tensor, the weight is not float32, or
  ``NEUROSPARSE_KERNELS=torch``;
- the linear layer would take its dense path (``mode="dense"``, or ``"auto"`` above the
  crossover activity, ``layers/dispatch.py``): the fused kernel is an event gather;
- the neuron is not one whose sequence mode is the LIF-family op (its class overrides
  ``forward``);
- either module has forward hooks or pre-hooks (the energy meter, user hooks), or
  global module hooks are set: hooks must see both calls;
- an input current comes out NaN or inf (a NaN/inf weight row that an event reads, or
  bias): the kernel tests every current it forms, and the unfused pair then runs and
  reports the non-finite currents as it would have. A NaN weight row that no event
  reads changes nothing, as in the unfused pair. (No per-call check of the weight: it
  would cost a reduction over the whole weight, and a cached answer misses writes
  through ``weight.data``.)

The linear layer's op counters and ``last_path`` are updated exactly as its own call
would (they describe the input, not the path), so energy reports do not change.
"""

from __future__ import annotations

import torch
from torch.nn.modules import module as _nn_module

from ..neurons.base import SpikingNeuron
from ..neurons.functional import NeuronState
from ..ops import event_linear as ops_lin
from ..ops import lif_sequence as ops_lif
from ..ops import registry
from ..ops.event_linear_lif import fused_event_linear_lif
from .dispatch import choose_path
from .event_linear import EventLinear, check_features, count_linear, event_input


def _needs_grad(x: torch.Tensor, linear, neuron, state) -> bool:
    if not torch.is_grad_enabled():
        return False
    tensors = [x, *linear.parameters(), *neuron.parameters()]
    if state is not None:
        tensors += [s for s in state if isinstance(s, torch.Tensor)]
    return any(t.requires_grad for t in tensors)


def _has_hooks(*modules: torch.nn.Module) -> bool:
    if _nn_module._global_forward_hooks or _nn_module._global_forward_pre_hooks:
        return True
    return any(_foreign(m._forward_hooks) or _foreign(m._forward_pre_hooks) for m in modules)


def _foreign(hooks) -> bool:
    # the energy meter's hooks (flagged) read only the currents' shape: the fused pass
    # calls them itself (_meter_hooks), so they need not cost the fusion
    return any(not getattr(h, "_ns_meter_hook", False) for h in hooks.values())


def _meter_hooks(linear, neuron, x, state, out) -> None:
    """Tell the energy meter's hooks about the pair of calls the fused pass stands for;
    the currents are never written, so they get a shape-only (meta) tensor."""
    if not (linear._forward_hooks or neuron._forward_hooks or neuron._forward_pre_hooks):
        return
    cur = torch.empty((*x.shape[:-1], linear.out_features), dtype=x.dtype, device="meta")
    for hook in list(linear._forward_hooks.values()):
        hook(linear, (x,), cur)
    for hook in list(neuron._forward_pre_hooks.values()):  # registered with_kwargs
        hook(neuron, (cur, state), {})
    for hook in list(neuron._forward_hooks.values()):
        hook(neuron, (cur, state), out)


# Devices where the fused pass exists and was measured faster: CPU (2-core VM,
# 4096->4096, T=100, B=32): 1.2-2x the unfused pair at 0.1-5 % input. On the H100 the
# CUDA twin measured 1.07x at 0.1 % but 0.69x / 0.54x at 1 % / 5 % (a warp per (batch,
# 128 outputs) walks T steps in sequence: too few warps to hide the gathers' latency),
# and TF32 dense + our LIF beat both; it was deleted rather than kept unreachable.
AUTO_FUSE_DEVICES = ("cpu",)


def fusable(x: object, linear: torch.nn.Module, neuron: torch.nn.Module) -> bool:
    """Whether ``Sequential`` should fuse the pair: module types, hooks, input kind, and
    a device where fusing pays (:data:`AUTO_FUSE_DEVICES`).

    Activity, dtypes and gradients are decided per call by :func:`event_linear_lif`.
    """
    return (
        isinstance(x, torch.Tensor)
        and x.device.type in AUTO_FUSE_DEVICES
        and isinstance(linear, EventLinear)
        and isinstance(neuron, SpikingNeuron)
        and type(neuron).forward is SpikingNeuron.forward
        and isinstance(x, torch.Tensor)
        and x.dim() == 3
        and not _has_hooks(linear, neuron)
    )


def event_linear_lif(
    x: torch.Tensor,
    linear: EventLinear,
    neuron: SpikingNeuron,
    state: NeuronState | None = None,
) -> tuple[torch.Tensor, NeuronState]:
    """``neuron(linear(x), state)`` in one fused pass when no gradient is needed.

    Parameters
    ----------
    x : torch.Tensor
        Input events ``[T, B, in_features]`` (binary or graded; zeros are skipped).
    linear : EventLinear
        The layer producing the neuron's input currents.
    neuron : SpikingNeuron
        A LIF-family neuron (``LIF``, ``IF``, ``ALIF``, ``CubaLIF``, or a subclass that
        keeps their sequence mode) with ``out_features`` neurons.
    state : NeuronState, optional
        Initial neuron state, each field ``[B, out_features]``; None starts from rest
        (membrane ``neuron.v_init``).

    Returns
    -------
    spikes : torch.Tensor
        ``[T, B, out_features]``, equal to the unfused pair's.
    state : NeuronState
        The final state, each field ``[B, out_features]``.

    Notes
    -----
    The fused kernel has no backward. Where gradients are needed -- or the pair cannot
    be fused for another reason (module docstring) -- the unfused modules run instead,
    with the same result; this function never raises for being called with autograd on.

    Raises
    ------
    ShapeError, DTypeError, DeviceError, InputValueError
        As the unfused pair would (wrong shapes, dtypes, devices, NaN/inf input).
    """
    if not fusable(x, linear, neuron) or _needs_grad(x, linear, neuron, state):
        return neuron(linear(x), state)
    weight, bias = linear.weight, linear.bias
    x = event_input(x, weight, bias, linear.mode, (3,), "[T, B, in_features]",
                    "[out_features, in_features]")  # fmt: skip
    n_out, n_in = weight.shape
    check_features(x, n_in)
    T, B = x.shape[:2]
    x2d = x.reshape(-1, n_in).contiguous()
    bk = ops_lin.backend(x2d)
    if (
        bk == "torch"
        or T == 0
        or bk != "cpu"
        or not registry.use_kernel(ops_lif.OP, bk)
    ):
        return neuron(linear(x), state)
    like = x.new_empty((B, n_out))  # shape of one step of the currents, for the checks
    if state is not None:
        state = neuron._check_state(state, like)
    scan = ops_lin.scan_linear(x2d)  # raises on NaN/inf input, as the layer does
    path = choose_path(linear.mode, "linear", x.device.type, (x2d.shape[0], n_in, n_out),
                       scan.rate)  # fmt: skip
    if path == "dense":
        return neuron(linear(x), state)
    index = ops_lin.index_linear(x2d, scan)
    params = torch.stack([q.to(device=x.device, dtype=torch.float32).expand(n_out)
                          for q in neuron.params()]).contiguous()  # fmt: skip
    # no autograd here (checked above), so a state in one buffer is read in place
    state0 = ops_lif._pack_state(state, neuron.v_init, B, (n_out,), n_out, like, False)
    flags = ops_lif.flags_of(neuron.spec)
    kflags = (flags[0], flags[1], flags[3], flags[4], flags[5], flags[6])
    z, st, bad = fused_event_linear_lif(bk, index, weight, bias, T, B, params, state0, kflags)
    if bad:  # NaN/inf currents: the unfused pair raises as it would have (nothing counted yet)
        return neuron(linear(x), state)
    count_linear(linear, scan, x2d, weight)  # what EventLinear would record for this call
    linear.last_path = "event"
    out = z.view(T, B, n_out), NeuronState(*(s.view(B, n_out) for s in st.unbind(0)))
    _meter_hooks(linear, neuron, x, state, out)
    return out
