"""``DeltaConv2d``: a convolution that only computes on the pixels that changed.

Same scheme as ``DeltaLinear`` (``layers/delta_linear.py``): the input frames are
delta-encoded per pixel and channel, each delta scatters its kernel footprint times its
value, and the output map is the running sum ``z_t = z_{t−1} + W ⊛ Δ_t`` (``z_{−1}`` =
bias). Since ``Σ_{s≤t} Δ_s = x̂_t``, the output equals ``conv2d(x̂_t)`` exactly, where
``x̂`` is the reference-quantised input (``nn.Conv2d`` on the raw input when θ = 0).

The scatter of all ``T·B`` delta frames is one call of the event convolution's kernels
(``neurosparse/ops/event_conv2d.py``: Numba CPU and CUDA, torch reference), the running
sum is ``ops/delta_accumulate.py``. Zero padding, dilation 1.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .._checks import check_module_device, check_sequence, check_state_tensor, unwrap
from ..errors import ShapeError
from ..ops import event_conv2d as ec
from ..ops.delta_accumulate import accumulate
from ..ops.delta_encode import delta_encode_op, on_gpu
from ._base import Conv2dTwin, DeltaTwin
from .delta_encoder import (
    DeltaStream,
    unit_thresholds,
)
from .dispatch import choose_path


class DeltaConv2dState(NamedTuple):
    """``x_ref [B, C, H, W]``: last value each input pixel sent; ``z [B, O, Ho, Wo]``."""

    x_ref: torch.Tensor
    z: torch.Tensor


def footprint(n_in: int, k: int, s: int, p: int, n_out: int, device=None) -> torch.Tensor:
    """Outputs along one axis that each of ``n_in`` input positions reaches (borders clip).

    Built on ``device`` (no host->device copy, which would block the host)."""
    o = torch.arange(n_out, device=device)
    tap = torch.arange(n_in, device=device)[:, None] + p - o[None, :] * s  # (input, output)
    return ((tap >= 0) & (tap < k)).sum(1)


class DeltaConv2d(DeltaTwin, Conv2dTwin):
    """Conv2d driven by input deltas: ``[T, B, C, H, W] -> [T, B, O, Ho, Wo]``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, stride, padding, groups, bias
        As ``nn.Conv2d`` (ints, or pairs of ints for the kernel size, stride and padding).
    threshold : float or torch.Tensor
        Delta threshold θ ≥ 0 of the input pixels (scalar, or one per input channel).
    per_channel : bool
        One threshold per input channel.
    learn_threshold : bool
        Train θ through the surrogate gradient of ``ops/delta_encode.py``.
    grad_width : float, optional
        Half-width of that surrogate (default ``max(θ, 0.01)``).
    mode : {"auto", "event", "dense"}
        How ``W ⊛ Δ`` is computed; every path gives the same result.
    device, dtype
        Where and in which dtype the parameters are made (as ``nn.Conv2d``).

    Notes
    -----
    Modes and state follow ``DeltaLinear``: sequence mode starts from rest (zero
    references, output = bias) unless ``state`` is passed (``return_state=True`` returns
    it); ``step`` keeps it until :meth:`reset`. Parameters use ``nn.Conv2d``'s layout.

    Counters: ``macs``/``synops`` = synapses the sent deltas drive (each delta × out
    channels per group × its border-clipped footprint), ``dense_macs`` = every tap of
    every output at every step, ``events_in`` = deltas sent, ``inputs_in`` = pixels,
    ``neuron_updates`` = delta units compared, ``weight_bytes_read`` = one weight per
    op, ``state_bytes_rw`` = references and output-map traffic.
    """

    _step_layout = "[B, C, H, W]"

    def _geometry(self, n: int, h: int, w: int) -> ec.ConvGeometry:
        return ec.ConvGeometry(n, self.in_channels, h, w, self.out_channels, *self.kernel_size,
                               *self.stride, *self.padding, self.groups)  # fmt: skip

    def _run(self, x, state):
        x = check_sequence(unwrap(x), 5, "[T, B, C, H, W], time first")
        if x.dim() != 5:
            raise ShapeError(f"input must be [T, B, C, H, W], got shape {tuple(x.shape)}")
        n_t, n_b, c, h, w = x.shape
        if c != self.in_channels:
            raise ShapeError(f"input has {c} channels (shape {tuple(x.shape)}) but the layer "
                             f"expects in_channels={self.in_channels}")  # fmt: skip
        check_module_device(self, x, "DeltaConv2d", dtype=True)
        g = self._geometry(n_t * n_b, h, w)
        if g.ho < 1 or g.wo < 1:
            raise ShapeError(f"input of {h}×{w} pixels with padding {self.padding} is smaller "
                             f"than the {self.kernel_size} kernel")  # fmt: skip
        out_shape = (n_b, self.out_channels, g.ho, g.wo)
        if state is None:
            ref0 = torch.zeros_like(x[0])
            b = self.bias if self.bias is not None else x.new_zeros(self.out_channels)
            z0 = b.view(1, -1, 1, 1).expand(out_shape)
        else:
            if not isinstance(state, tuple) or len(state) != 2:
                raise ShapeError(f"state must be a DeltaConv2dState (x_ref, z), got "
                                 f"{type(state).__name__}")  # fmt: skip
            ref0 = check_state_tensor("state.x_ref", state[0], tuple(x.shape[1:]), x)
            z0 = check_state_tensor("state.z", state[1], out_shape, x)
        thr = unit_thresholds(self.threshold, x.shape[2:], x)
        d3, ref, stats = delta_encode_op(x.reshape(n_t, n_b, -1).contiguous(),
                                         ref0.reshape(n_b, -1).contiguous(), thr,
                                         self.threshold_grad_width)  # fmt: skip
        delta4 = d3.reshape(n_t * n_b, c, h, w)
        gpu = on_gpu(x)
        scan = ec.scan_conv2d(delta4, g, exact=not gpu)  # CUDA: counts stay on the device
        if gpu:  # no rate read: it would synchronise (as DeltaLinear)
            path = "dense" if self.mode == "auto" else self.mode
        else:
            path = choose_path(self.mode, "conv2d", x.device.type,
                               (g.n, c, self.out_channels, g.kh * g.kw, g.ho * g.wo),
                               stats.nnz / max(1, stats.total))  # fmt: skip
        if path == "dense":
            inc = F.conv2d(delta4, self.weight, None, self.stride, self.padding, 1, self.groups)
        else:
            inc = ec.event_conv2d_apply(delta4, self.weight, None, ec.index_conv2d(delta4, scan))
        z = accumulate(inc.reshape(n_t, *out_shape), z0, inplace=True)
        fan = footprint(h, g.kh, g.sh, g.ph, g.ho, x.device)[:, None] * footprint(
            w, g.kw, g.sw, g.pw, g.wo, x.device)[None, :] * g.og  # fmt: skip
        self._record("input", DeltaStream(d3.reshape(x.shape), stats.nnz, stats.total,
                                          fan.to(x.dtype)))  # fmt: skip
        unit_ops, graded_ops, _ = scan.op_counts()
        nb = x.element_size()
        self.count_ops(
            synops=unit_ops,
            macs=graded_ops,
            dense_macs=g.dense_macs,
            events_in=stats.nnz,
            inputs_in=stats.total,
            neuron_updates=stats.total,
            weight_bytes_read=(unit_ops + graded_ops) * self.weight.element_size(),
            state_bytes_rw=(stats.total + stats.nnz) * nb + 2 * z.numel() * nb,
        )
        self.last_path = path
        return z, DeltaConv2dState(ref.reshape(x.shape[1:]), z[-1])
