"""Where the time of the fused CUDA LIF op goes (profile before optimising).

Splits one forward + backward of ``ns.LIF`` on ``[T, B, N]`` into: the whole op as a user
sees it, the forward and backward kernels alone (device time, CUDA events, buffers
prepared in advance), and the host time of one launch (Python + numba-cuda argument
handling, no synchronisation). Also prints the physical floor: bytes the kernels must
move divided by the measured device-to-device copy bandwidth.

    python benchmarks/profile_lif_gpu.py [--T 500 --B 16 --N 4096] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _peers import spikingjelly_lif  # noqa: E402  (benchmarks/, beside this script)
from _timing import host_ms  # noqa: E402  (benchmarks/_timing.py, beside this script)
from gpu import cuda_time  # noqa: E402  (benchmarks/gpu.py, beside this script)


def events_ms(fn, reps=20, warmup=3):
    return cuda_time(fn, reps, warmup)["median_ms"]


def kernel_table(x, lif, dev) -> None:
    from torch import nn
    from torch.profiler import ProfilerActivity, profile

    torch.backends.cuda.matmul.allow_tf32 = True
    lin = nn.Linear(x.shape[-1], x.shape[-1], device=dev)
    w_out = torch.randn_like(x)
    neurons = {"neurosparse": lambda c: lif(c)[0]}
    sj = spikingjelly_lif(dev)
    if sj is not None:
        neurons["SpikingJelly"] = sj
    for name, fn in neurons.items():
        def step():
            lin.zero_grad(set_to_none=True)
            (fn(lin(x)) * w_out).sum().backward()

        for _ in range(3):
            step()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                step()
            torch.cuda.synchronize()
        print(f"== {name}: device time per kernel, 5 steps")
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14))
    torch.backends.cuda.matmul.allow_tf32 = False


def main() -> None:
    import neurosparse as ns
    from neurosparse.ops import lif_sequence as op

    ap = argparse.ArgumentParser()
    ap.add_argument("--T", type=int, default=500)
    ap.add_argument("--B", type=int, default=16)
    ap.add_argument("--N", type=int, default=4096)
    ap.add_argument("--out", default="benchmarks/results/profile_lif_gpu.json")
    ap.add_argument("--cprofile", action="store_true", help="print the op's host profile")
    ap.add_argument("--kernel-table", action="store_true",
                    help="print device time per kernel of a TF32 Linear + LIF training "
                         "step, neurosparse and SpikingJelly")  # fmt: skip
    a = ap.parse_args()
    dev = torch.device("cuda")
    T, B, N = a.T, a.B, a.N
    K = B * N
    x = torch.randn(T, B, N, device=dev)
    lif = ns.LIF(0.9).to(dev)
    res = {"T": T, "B": B, "N": N, "device": torch.cuda.get_device_name()}

    res["op_forward_ms"] = events_ms(lambda: lif(x))
    xg = x.clone().requires_grad_()

    def fwd_bwd():
        z, _ = lif(xg)
        z.sum().backward()

    res["op_forward_backward_ms"] = events_ms(fwd_bwd)

    spec = lif.spec
    params = torch.stack([q.expand(N) for q in lif.params()]).contiguous()
    state0 = torch.zeros(4, K, device=dev)
    f32 = {"dtype": torch.float32, "device": dev}
    z, h = torch.empty(T, K, **f32), torch.empty(T, K, **f32)
    th, rm = torch.empty(1, 1, **f32), torch.zeros(1, 1, dtype=torch.uint8, device=dev)
    state = torch.empty(4, K, **f32)
    forward, backward = op._kernels(spec, dev)
    xf = x.reshape(T, K)

    def fwd_kernel():
        forward(K, xf, state0, params, z, h, th, rm, state)

    res["forward_kernel_ms"] = events_ms(fwd_kernel)
    res["forward_launch_host_ms"] = host_ms(fwd_kernel)
    gz = torch.randn(T, K, **f32)
    gstate = torch.zeros(2, K, **f32)
    gx, gout = torch.empty(T, K, **f32), torch.empty(4, K, **f32)

    def bwd_kernel():
        backward(K, gz, gstate, h, th, rm, state0, params, 25.0, gx, gout)

    res["backward_kernel_ms"] = events_ms(bwd_kernel)
    res["backward_launch_host_ms"] = host_ms(bwd_kernel)
    res["op_forward_backward_host_ms"] = host_ms(fwd_bwd)
    if a.cprofile:  # where the host time of the op goes, by Python function
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.runcall(lambda: [fwd_bwd() for _ in range(200)])
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(30)
        print(buf.getvalue())
    # the plain numba-cuda launch path, for comparison; both must give the same bits
    fwd_kernel()
    bwd_kernel()
    fast = [z.clone(), h.clone(), state.clone(), gx.clone(), gout.clone()]
    os.environ["NEUROSPARSE_CUDA_FAST_LAUNCH"] = "0"
    z.zero_(), h.zero_(), state.zero_(), gx.zero_(), gout.zero_()
    fwd_kernel()
    bwd_kernel()
    res["fast_launch_bitwise_equal"] = all(
        torch.equal(a, b) for a, b in zip(fast, [z, h, state, gx, gout])
    )
    res["forward_launch_host_ms_plain"] = host_ms(fwd_kernel)
    res["backward_launch_host_ms_plain"] = host_ms(bwd_kernel)
    res["op_forward_backward_ms_plain"] = events_ms(fwd_bwd)
    del os.environ["NEUROSPARSE_CUDA_FAST_LAUNCH"]
    from neurosparse.kernels import lif_cuda

    res["chunk"] = lif_cuda.CHUNK
    for name, kern in zip(("forward", "backward"), lif_cuda.get_kernels(*op.flags_of(spec))):
        for what in ("regs_per_thread", "local_mem_per_thread"):
            try:
                res[f"{name}_{what}"] = list(getattr(kern, f"get_{what}")().values())
            except Exception as e:  # numba-cuda versions differ here
                res[f"{name}_{what}"] = repr(e)
    if a.kernel_table:  # device time per kernel of a Linear + LIF training step
        kernel_table(x, lif, dev)
    big = torch.empty(256 * 2**20, dtype=torch.uint8, device=dev)
    big2 = torch.empty_like(big)
    copy_ms = events_ms(lambda: big2.copy_(big))
    bw = 2 * big.numel() / (copy_ms * 1e-3)
    res["copy_bandwidth_GBps"] = bw / 1e9
    # forward: read x, write z and h; backward: read gz and h (spikes are recomputed from
    # h), write gx
    res["forward_floor_ms"] = 3 * T * K * 4 / bw * 1e3
    res["backward_floor_ms"] = 3 * T * K * 4 / bw * 1e3
    print(json.dumps(res, indent=1))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
