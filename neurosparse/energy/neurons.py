"""Recognising spiking neurons of every supported library, and counting them by hooks.

Detection goes by class name and defining module through the MRO, so that merely
creating a Meter never imports snnTorch, Norse or SpikingJelly:

* neurosparse neurons: ``getattr(module, "is_spiking_neuron", False)``; they return
  ``(spikes, state)``
* snnTorch: subclasses of ``snntorch.SpikingNeuron`` (Leaky, Synaptic, Alpha, RLeaky, ...)
* Norse: subclasses of ``norse.torch.module.snn.SNNCell`` / ``SNN`` (LIFCell, LIF,
  LIFBoxCell, ...) and the recurrent ``SNNRecurrentCell`` / ``SNNRecurrent``
* SpikingJelly: subclasses of ``spikingjelly.activation_based.neuron.BaseNode``

A neuron update is one neuron advanced by one time step (one input element); spikes are
the non-zero elements of its spike output.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import _tensors as tt
from .fanout import module_linear_fanout
from .recurrent import recurrent_counts
from .synaptic import params_bytes

ACTIVATION_TYPES = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.GELU, nn.SiLU,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Softplus,
)

_NORSE_FF = ("SNNCell", "SNN")
_NORSE_REC = ("SNNRecurrentCell", "SNNRecurrent")


def neuron_family(module: nn.Module) -> str | None:
    """'neurosparse', 'snntorch', 'norse', 'norse-recurrent', 'spikingjelly' or None."""
    if getattr(module, "is_spiking_neuron", False):
        return "neurosparse"
    for cls in type(module).__mro__:
        mod, name = cls.__module__, cls.__name__
        if mod.startswith("snntorch") and name == "SpikingNeuron":
            return "snntorch"
        if mod.startswith("norse.torch.module"):
            if name in _NORSE_FF:
                return "norse"
            if name in _NORSE_REC:
                return "norse-recurrent"
        if mod.startswith("spikingjelly") and name in ("BaseNode", "SimpleBaseNode"):
            return "spikingjelly"
    return None


def _state_vars(family: str, module: nn.Module, output) -> int:
    if family == "neurosparse" and hasattr(module, "state_vars"):
        n = module.state_vars  # its NeuronState also carries unused slots
    elif family in ("neurosparse", "norse", "norse-recurrent"):
        n = tt.count_tensors(output[1:]) if isinstance(output, tuple) else 0
    elif family == "snntorch":
        if isinstance(output, tuple):
            n = tt.count_tensors(output[1:])
        else:
            n = sum(hasattr(module, a) and getattr(module, a) is not None
                    for a in ("syn", "syn_exc", "syn_inh", "mem"))
    else:  # spikingjelly keeps its state in registered memories
        n = len(getattr(module, "_memories", {}) or {})
    return max(int(n), 1)


def _units(x, ctx, sample_ndim: int) -> int:
    if ctx.time_view(x, sample_ndim) is not None:
        return x.numel() // max(ctx.T * ctx.B, 1)
    return x.numel() // (x.shape[0] if x.dim() > 1 else 1)


def _per_lead(x, sample_ndim: int, device) -> tt.Lead:
    """Elements per leading element (one neuron update each). ``x`` may be a meta tensor."""
    n_lead = max(math.prod(tt.lead_shape(x, sample_ndim)), 1)
    return tt.full_lead(x, sample_ndim, x.numel() // n_lead, device)


def _binary_by_construction(module: nn.Module) -> bool:
    from ..neurons.base import SpikingNeuron

    return isinstance(module, SpikingNeuron)


def _norse_integrator(module: nn.Module) -> bool:
    """Norse's leaky integrators (``LI``, ``LICell``, ``LIBoxCell``): readouts, no spikes."""
    return any(c.__module__.startswith("norse.torch.module") and c.__name__ in
               ("LI", "LICell", "LIBoxCell") for c in type(module).__mro__)


def count_neuron(module: nn.Module, args, output, ctx, rec, scratch, family: str):
    """Neuron updates, spikes and state traffic of one call of a spiking neuron module."""
    x = tt.first_tensor(args)
    spikes = tt.first_tensor(output)
    if family == "norse-recurrent":
        return _count_norse_recurrent(module, x, args, output, spikes, ctx, rec)
    sample_ndim = max(x.dim() - 2, 0)
    rec.state_vars = max(rec.state_vars, _state_vars(family, module, output))
    rec.params_bytes = params_bytes(module, recurse=False)
    lead_ndim = x.dim() - sample_ndim
    spk_ndim = max(spikes.dim() - lead_ndim, 0)
    # neurons are counted on the output: a layer-shaped neuron (snnTorch SLSTM(8, 6),
    # SConv2dLSTM(2, 4, ...)) has as many neurons as outputs, not as inputs
    per_step = spikes if spikes.dim() == x.dim() else x
    rec.units = max(rec.units, _units(per_step, ctx, sample_ndim))
    updates = _per_lead(per_step, sample_ndim, spikes.device)
    elem = x.element_size()
    if _norse_integrator(module):
        # a leaky integrator's output is its membrane voltage (a readout), never a spike
        n_spk = updates * 0
        rec.spiking = False
        rec.note("leaky integrator (no threshold): its output is a voltage, counted as no spikes")
    elif family == "neurosparse" and _binary_by_construction(module) and spk_ndim:
        n_spk = tt.row_sums(spikes, spk_ndim)  # LIF-family spikes are 0/1: skip the check
    else:
        n_spk = tt.binary_rows(spikes, spk_ndim)
    return {
        "neuron_updates": updates,
        "spikes": n_spk if n_spk is not None else tt.nonzero_lead(spikes, spk_ndim),
        "state_bytes_rw": updates * (rec.state_vars * 2 * elem),
        "activation_bytes": updates * (2 * elem),
    }


def count_activation(module: nn.Module, args, output, ctx, rec, scratch):
    """Non-spiking activation functions: one update per element, non-zero outputs as events."""
    x = args[0]
    sample_ndim = max(x.dim() - 2, 0)
    rec.units = max(rec.units, _units(x, ctx, sample_ndim))
    updates = _per_lead(x, sample_ndim, output.device)
    return {
        "neuron_updates": updates,
        "spikes": tt.nonzero_lead(output, sample_ndim),
        "activation_bytes": updates * (2 * x.element_size()),
    }


def _count_norse_recurrent(module, x, args, output, spikes, ctx, rec):
    """Norse recurrent cells hold their own input and recurrent weights (no nn.Linear)."""
    H = module.hidden_size
    fan_in, uni_in = module_linear_fanout(module, module.input_weights)
    fan_rec, uni_rec = module_linear_fanout(module, module.recurrent_weights)
    state = args[1] if len(args) > 1 else None
    z_prev = getattr(state, "z", None) if state is not None else None
    eff = tt.fanout_dot(x, fan_in, uni_in, 1)
    sequence = any(c.__name__ == "SNNRecurrent" for c in type(module).__mro__)
    if sequence:
        first = z_prev if z_prev is not None else torch.zeros_like(spikes[0])
        prev = torch.cat([first.unsqueeze(0), spikes[:-1]], dim=0)
        eff = eff + tt.fanout_dot(prev, fan_rec, uni_rec, 1)
    elif z_prev is not None:
        eff = eff + tt.fanout_dot(z_prev, fan_rec, uni_rec, 1)
    rec.state_vars = max(rec.state_vars, _state_vars("norse-recurrent", module, output))
    rec.params_bytes = params_bytes(module, recurse=False)
    rec.units = max(rec.units, H)
    n_in = module.input_size
    return recurrent_counts(x, eff, H * (n_in + H), H, n_in, tt.nonzero_lead(spikes, 1),
                            module.input_weights, rec, n_in + H)
