"""The fused EventLinear + LIF inference pass: launches of ``kernels/event_linear_lif.py``.

Called by :func:`neurosparse.layers.event_linear_lif.event_linear_lif`, which decides
whether the pair can be fused and prepares the index lists, parameters and state. Only a
CPU kernel exists: the CUDA twin measured slower than the unfused pair on the H100 and
was deleted rather than kept unreachable (see ``AUTO_FUSE_DEVICES`` there).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DeviceError
from . import event_linear as ops_lin


def fused_event_linear_lif(device_type: str, index, weight, bias, T, B, params, state0,
                           kflags) -> tuple[torch.Tensor, torch.Tensor, bool]:  # fmt: skip
    """Spikes ``[T*B, out]``, final state ``[4, B*out]`` and whether any input current
    was NaN or inf (the kernel tests the currents it forms; the caller raises)."""
    if device_type != "cpu":
        raise DeviceError(
            f"the fused EventLinear + LIF pass runs on the CPU only, not {device_type}; "
            "call the EventLinear and the LIF one after the other there"
        )
    from ..kernels import event_linear_lif as kel

    src, tw, b = ops_lin.cpu_source(weight, bias, int(index.arrays[0][-1]))
    n_out = weight.shape[0]
    z = ops_lin.empty_cpu((T * B, n_out))
    st = ops_lin.empty_cpu((4, B * n_out))
    bad = np.empty(-(-n_out // tw) * B, np.bool_)
    kel.gather_lif(*index.arrays, src, tw, b, T, B, params.numpy(), state0.numpy(), *kflags,
                   z.numpy(), st.numpy(), bad)  # fmt: skip
    return z, st, bool(bad.any())
