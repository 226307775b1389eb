"""Hook counters for PyTorch recurrent cells (RNNCell, GRUCell, LSTMCell) and layers.

Synaptic work is the input-to-hidden plus hidden-to-hidden products (biases excluded),
counted as effective operations on the non-zero entries of x and h, as NeuroBench does
for ``RNNCellBase``; the cell is 'spiking' (ACs) when x is in {-1, 0, 1}. Gate
element-wise products are not counted as synaptic operations (NeuroBench adds them for
LSTM/GRU cells); each hidden unit counts one neuron update per step.
"""

from __future__ import annotations

import torch
from torch import nn

from . import _tensors as tt
from .counts import LayerCounts
from .fanout import module_linear_fanout
from .synaptic import delta_counts, params_bytes

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def _dense_fan_sum(module: nn.Module, weight: torch.Tensor) -> float:
    fan, _ = module_linear_fanout(module, weight)
    return float(fan.sum())


def recurrent_counts(x: torch.Tensor, eff: tt.Lead, dense: float, units: int, n_in: int,
                     spikes: tt.Lead, weight: torch.Tensor, rec: LayerCounts,
                     activation_width: int) -> dict[str, tt.Lead]:
    """The counts every recurrent layer reports, per leading element of ``x [..., n_in]``.

    Parameters
    ----------
    x : torch.Tensor
        The layer's input; ternary inputs make its work synaptic operations (ACs).
    eff : Lead
        Effective input-to-hidden plus hidden-to-hidden operations.
    dense : float
        Operations per step of the dense layer (every input and hidden unit non-zero).
    units : int
        Hidden units updated per step (one neuron update each).
    n_in : int
        Input features per step.
    spikes : Lead
        Non-zero outputs.
    weight : torch.Tensor
        A weight of the layer: its element size prices one effective operation's read.
    rec : LayerCounts
        The layer's record, its ``state_vars`` and ``params_bytes`` already set.
    activation_width : int
        Values read or written per step outside the weights (input, hidden states).
    """
    elem = x.element_size()
    return {
        "synops" if tt.is_ternary(x) else "macs": eff,
        "dense_macs": tt.full_lead(x, 1, dense),
        "dense_synops": tt.full_lead(x, 1, dense),
        "neuron_updates": tt.full_lead(x, 1, units),
        "spikes": spikes,
        "events_in": tt.nonzero_lead(x, 1),
        "inputs_in": tt.full_lead(x, 1, n_in),
        "weight_bytes_read": eff * weight.element_size(),
        "state_bytes_rw": tt.full_lead(x, 1, units * rec.state_vars * 2 * elem),
        "dense_weight_bytes_read": tt.full_lead(x, 1, rec.params_bytes),
        "activation_bytes": tt.full_lead(x, 1, activation_width * elem),
    }


def count_rnn_cell(module: nn.RNNCellBase, args, out, ctx, rec, scratch):
    x = args[0]
    hx = args[1] if len(args) > 1 else None
    h = hx[0] if isinstance(hx, (tuple, list)) else hx
    is_lstm = isinstance(module, nn.LSTMCell)
    H = module.hidden_size
    fan_ih, uni_ih = module_linear_fanout(module, module.weight_ih)
    eff = tt.fanout_dot(x, fan_ih, uni_ih, 1)
    if h is not None:
        fan_hh, uni_hh = module_linear_fanout(module, module.weight_hh)
        eff = eff + tt.fanout_dot(h, fan_hh, uni_hh, 1)
    h_out = out[0] if isinstance(out, (tuple, list)) else out
    rec.params_bytes = params_bytes(module)
    rec.state_vars = 2 if is_lstm else 1
    rec.units = max(rec.units, H)
    G = module.weight_ih.shape[0] // H
    n_in = module.input_size
    counts = {
        **recurrent_counts(x, eff, G * H * (n_in + H), H, n_in, tt.nonzero_lead(h_out, 1),
                           module.weight_ih, rec, n_in + 2 * H),
        **delta_counts(x, 1, ctx, scratch, n_in),
    }
    if scratch.get("inside_neuron"):
        # the cell of a spiking neuron (snnTorch SLSTM): its hidden units are that
        # neuron's, counted there with its spikes; here only the products
        counts["neuron_updates"] = counts["spikes"] = tt.full_lead(x, 1, 0)
        counts["state_bytes_rw"] = tt.full_lead(x, 1, 0)
        rec.note("the cell of a spiking neuron: its updates and spikes are counted there")
    return counts


def count_rnn(module: nn.RNNBase, args, out, ctx, rec, scratch):
    x = args[0]
    hx = args[1] if len(args) > 1 else None
    y = out[0]
    if isinstance(x, nn.utils.rnn.PackedSequence):
        x, y = x.data, y.data
        rec.note("packed sequence: no time structure; hidden-state ops counted as dense")
        time_major, exact_hh = False, False
    else:
        time_major = not module.batch_first or x.dim() == 2
        exact_hh = module.num_layers == 1 and not module.bidirectional
    L, D, H = module.num_layers, 2 if module.bidirectional else 1, module.hidden_size
    H_out = module.proj_size or H
    G = _GATES[module.mode]
    if not exact_hh:
        rec.note("stacked/bidirectional RNN: inner layers' activity is not visible to hooks, "
                 "their inputs and hidden states are counted as dense")
    if module.proj_size:
        rec.note("LSTM projection weights not counted")
    suffixes = [""] + (["_reverse"] if D == 2 else [])
    eff = torch.zeros(tt.lead_shape(x, 1), dtype=torch.float64, device=x.device)
    dense = 0.0
    for layer in range(L):
        for sfx in suffixes:
            w_ih = getattr(module, f"weight_ih_l{layer}{sfx}")
            w_hh = getattr(module, f"weight_hh_l{layer}{sfx}")
            dense += G * H * (w_ih.shape[1] + H_out)
            if layer == 0:
                fan, uni = module_linear_fanout(module, w_ih)
                eff = eff + tt.fanout_dot(x, fan, uni, 1)
            else:
                eff = eff + _dense_fan_sum(module, w_ih)
            if exact_hh:
                eff = eff + _hidden_ops(module, w_hh, y, hx, time_major)
            else:
                eff = eff + _dense_fan_sum(module, w_hh)
    rec.params_bytes = params_bytes(module)
    rec.state_vars = 2 if module.mode == "LSTM" else 1
    rec.units = max(rec.units, L * D * H)
    n_in = module.input_size
    spikes = tt.nonzero_lead(y, 1) + (L - 1) * D * H_out
    return {
        **recurrent_counts(x, eff, dense, L * D * H, n_in, spikes, module.weight_ih_l0, rec,
                           n_in + D * H_out),
        **delta_counts(x, 1, ctx, scratch, n_in),
    }


def _hidden_ops(module, w_hh, y, hx, time_major: bool) -> tt.Lead:
    """h_{t-1}·W_hh effective ops of a single-layer, one-direction RNN from its outputs."""
    fan, uni = module_linear_fanout(module, w_hh)
    tdim = 0 if time_major else 1
    h0 = hx[0] if isinstance(hx, (tuple, list)) else hx
    if h0 is None:
        first = torch.zeros_like(y.select(tdim, 0))
    else:
        first = h0[0] if y.dim() == 3 else h0.reshape(-1)  # [1, B, H] or [1, H]
    prev = torch.cat([first.unsqueeze(tdim), y.narrow(tdim, 0, y.shape[tdim] - 1)], dim=tdim)
    return tt.fanout_dot(prev, fan, uni, 1)


__all__ = ["count_rnn", "count_rnn_cell", "recurrent_counts"]
