"""The fused EventLinear + LIF inference pass: launches of ``kernels/event_linear_lif.py``
(CPU) and ``kernels/event_linear_lif_cuda.py`` (CUDA).

Called by :func:`neurosparse.layers.event_linear_lif.event_linear_lif`, which decides
whether the pair can be fused and prepares the index lists, parameters and state.
"""

from __future__ import annotations

import numpy as np
import torch

from . import event_linear as ops_lin


def fused_event_linear_lif(device_type: str, index, weight, bias, T, B, params, state0,
                           kflags) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """Spikes ``[T*B, out]`` and final state ``[4, B*out]`` of one fused pass."""
    run = _run_cpu if device_type == "cpu" else _run_cuda
    return run(index, weight, bias, T, B, params, state0, kflags)


def _run_cpu(index, weight, bias, T, B, params, state0, kflags):
    from ..kernels import event_linear as kl
    from ..kernels import event_linear_lif as kel

    tiles = ops_lin.packed(weight, "linear", lambda w: kl.pack_weight(w.numpy()))
    b = kl.padded_bias(None if bias is None else bias.detach().numpy(), tiles)
    n_out = weight.shape[0]
    z = ops_lin.empty_cpu((T * B, n_out))
    st = ops_lin.empty_cpu((4, B * n_out))
    kel.gather_lif(*index.arrays, tiles, b, T, B, params.numpy(), state0.numpy(), *kflags,
                   z.numpy(), st.numpy())  # fmt: skip
    return z, st


def _run_cuda(index, weight, bias, T, B, params, state0, kflags):
    from ..kernels import event_linear_lif_cuda as kc

    env = ops_lin.CudaEnv(index.device)

    def transpose(w):  # Wᵀ [K, N] and its view: the entry ops.event_linear caches too
        wt = w.t().contiguous()
        return wt, env.view(wt)

    _, wt_view = ops_lin.packed(weight, "linear_cuda", transpose)
    bias_view = None if bias is None else ops_lin.packed(bias, "cuda_view", env.view)
    n_out = weight.shape[0]
    z, zv = env.tensor((T * B, n_out))
    st, stv = env.tensor((4, B * n_out))
    idx, val, cnt, start = index.arrays
    kc.launch_fused(kflags, start, cnt, idx, val, wt_view, bias_view, env.view(params),
                    env.view(state0), np.int64(T), zv, stv, env.stream)  # fmt: skip
    return z, st
