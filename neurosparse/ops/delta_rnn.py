"""Recurrent half of the delta GRU / LSTM: kernels for inference, torch for training.

Given the input memories ``M_x[t] = W_ih·x̂_t + b_ih`` of all steps (computed by the delta
Linear path), this runs the sequential part: hidden deltas, recurrent memory
``M_h += W_hh·Δh``, gates (equations in ``kernels/delta_rnn.py``).

Two implementations with the same values:

- the Numba kernels (``kernels/delta_rnn.py`` on CPU, ``kernels/delta_rnn_cuda.py`` on
  CUDA, float32): one pass per sample over all steps, reading only the weight rows of the
  hidden units that sent a delta. They have no backward, so they run when no gradient
  is needed (inference, ``torch.no_grad()``, evaluation);
- :func:`reference_sequence`, a plain torch loop differentiable by autograd, which
  applies the straight-through estimator of ``ops/delta_encode.py`` to the hidden
  deltas (``ĥ`` gets the gradient of ``h``) and computes ``W_hh·Δh`` as a dense matmul of
  the delta rows (same value; on a CPU/GPU the backward is dense anyway). It runs when a
  gradient is needed, for non-float32 dtypes and with ``NEUROSPARSE_KERNELS=torch``.

Both sum ``M_h`` in float64, so long sequences do not drift.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from . import registry
from .delta_encode import delta_counts, reference_encode

OP = "delta_rnn"
registry.register(OP, "cpu", "cuda", covers="float32 (inference; training runs the reference)")

GRU, LSTM = 0, 1
GATES = {GRU: 3, LSTM: 4}


class RecurrentState(NamedTuple):
    """``h, c, h_ref [B, H]`` and ``mh [B, G·H]`` (``c`` is zeros for a GRU)."""

    h: torch.Tensor
    c: torch.Tensor
    h_ref: torch.Tensor
    mh: torch.Tensor


class RecurrentResult(NamedTuple):
    h_seq: torch.Tensor  # [T, B, H]
    dh: torch.Tensor  # [T, B, H], hidden deltas sent (autograd graph in the torch path)
    state: RecurrentState
    nnz: int | torch.Tensor  # hidden deltas sent (an int64 device tensor on CUDA)
    unit: int | torch.Tensor  # of them those of magnitude 1


def backend(x: torch.Tensor, need_grad: bool, n_hidden: int) -> str:
    """``"cpu"``/``"cuda"`` (kernels) or ``"torch"`` for input memories ``x``."""
    if need_grad:  # training is the reference's job by design (module docstring)
        return "torch"
    dev = x.device.type
    why = None
    if x.dtype != torch.float32:
        why = f"the kernels take float32, not {x.dtype}"
    elif dev == "cuda":
        from ..kernels.delta_rnn_cuda import MAX_HIDDEN

        if n_hidden > MAX_HIDDEN:
            why = f"the CUDA kernel takes at most {MAX_HIDDEN} hidden units, not {n_hidden}"
    return dev if registry.use_kernel(OP, dev, why) else "torch"


def gates(m: torch.Tensor, mh: torch.Tensor, h: torch.Tensor, c: torch.Tensor, cell: int):
    """One step's gate math from input memory ``m`` and recurrent memory ``mh`` (torch)."""
    n_h = h.shape[-1]
    if cell == GRU:
        r = torch.sigmoid(m[:, :n_h] + mh[:, :n_h])
        z = torch.sigmoid(m[:, n_h : 2 * n_h] + mh[:, n_h : 2 * n_h])
        n = torch.tanh(m[:, 2 * n_h :] + r * mh[:, 2 * n_h :])
        return (1 - z) * n + z * h, c
    s = m + mh
    i, f, o = (torch.sigmoid(s[:, k * n_h : (k + 1) * n_h]) for k in (0, 1, 3))
    c = f * c + i * torch.tanh(s[:, 2 * n_h : 3 * n_h])
    return o * torch.tanh(c), c


def reference_sequence(mx: torch.Tensor, w_hh: torch.Tensor, thr: torch.Tensor,
                       state: RecurrentState, cell: int,
                       width: float) -> RecurrentResult:  # fmt: skip
    """The recurrent loop in plain torch, differentiable (arguments as for
    :func:`recurrent_sequence`; see the module docstring)."""
    h, c, href, mh = state
    mh64 = mh.double()
    hs, dhs = [], []
    for t in range(mx.shape[0]):
        dh, href = reference_encode(h[None], href, thr, width)
        dh = dh[0]
        mh64 = mh64 + (dh @ w_hh.t()).double()
        h, c = gates(mx[t], mh64.to(mx.dtype), h, c, cell)
        hs.append(h)
        dhs.append(dh)
    return _result(torch.stack(hs), torch.stack(dhs), c, href, mh64.to(mx.dtype))


def _result(h_seq, dh, c, href, mh) -> RecurrentResult:
    # counted where dh lives: on CUDA they stay device tensors (no synchronisation)
    nnz, unit = delta_counts(dh)
    return RecurrentResult(h_seq, dh, RecurrentState(h_seq[-1], c, href, mh), nnz, unit)


def _kernel_sequence(mx, w_hh, thr, state, cell, dev) -> RecurrentResult:
    from .delta_cuda import transposed

    wt = transposed(w_hh)
    h0, c0, href0, mh0 = (s.detach().contiguous() for s in state)
    mx = mx.detach().contiguous()
    thr = thr.detach().contiguous()
    n_t, n_b, gh = mx.shape
    n_h = wt.shape[0]
    if dev == "cpu":
        from ..kernels import delta_rnn as kr

        outs = kr.run(mx.numpy(), wt.numpy(), thr.numpy(), h0.numpy(), c0.numpy(),
                      href0.numpy(), mh0.numpy(), cell)  # fmt: skip
        h_seq, dh, c_out, href_out, mh_out, _ = (torch.from_numpy(a) for a in outs)
    else:
        from ..kernels import delta_rnn_cuda as kc
        from .cuda_env import CudaEnv

        env = CudaEnv(mx.device)
        h_seq = torch.empty(n_t, n_b, n_h, device=mx.device)
        dh = torch.empty_like(h_seq)
        c_out, href_out = torch.empty_like(h0), torch.empty_like(h0)
        mh_out = torch.empty_like(mh0)
        counts = torch.empty(n_t, n_b, dtype=torch.int32, device=mx.device)
        v = env.view
        kc.launch(v(mx), v(wt), v(thr), v(h0), v(c0), v(href0), v(mh0), cell, v(h_seq), v(dh),
                  v(c_out), v(href_out), v(mh_out), v(counts), env.stream)  # fmt: skip
    return _result(h_seq, dh, c_out, href_out, mh_out)


def recurrent_sequence(
    mx: torch.Tensor,
    w_hh: torch.Tensor,
    thr: torch.Tensor,
    state: RecurrentState,
    cell: int,
    width: float,
) -> RecurrentResult:
    """Run the recurrent half over ``mx [T, B, G·H]`` from ``state``.

    ``w_hh`` is ``[G·H, H]`` (PyTorch layout), ``thr`` the hidden thresholds ``[H]``
    (non-negative). The kernels run when no gradient is needed (see the module
    docstring); arguments are assumed checked by the layer.
    """
    need_grad = torch.is_grad_enabled() and any(
        t.requires_grad for t in (mx, w_hh, thr, *state)
    )
    dev = backend(mx, need_grad, w_hh.shape[1])
    if dev == "torch":
        return reference_sequence(mx, w_hh, thr, state, cell, width)
    return _kernel_sequence(mx, w_hh, thr, state, cell, dev)
