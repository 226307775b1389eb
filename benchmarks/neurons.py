"""Linear + LIF training step (forward + backward) against the peer libraries.

Setup (issue 2): Linear(1024 -> 1024) + LIF, T = 100, B = 32, Bernoulli input spikes at
5 %, forward + backward, float32 on the CPU, same threads for everyone. Every library is
used its fastest documented way: the Linear runs once over the whole ``[T, B, N]``
sequence, then the neuron runs over time (snnTorch ``Leaky`` in a Python loop, Norse
``LIF`` sequence module, SpikingJelly ``LIFNode(step_mode="m")``, neurosparse ``LIF``
sequence mode = the fused Numba kernel). "Linear alone" is the floor: the same step
with no neuron at all.

    python benchmarks/neurons.py [--quick] [--out benchmarks/results/neurons.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from functools import partial
from pathlib import Path

# before torch loads libgomp, which reads the policy once: spinning OpenMP workers
# starve the other library's threads on few cores (neurosparse/__init__.py says why)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from _peers import snntorch_loop  # noqa: E402  (benchmarks/, beside this)
from _timing import hardware, results_path, round_robin  # benchmarks/, beside this
from torch import nn

warnings.filterwarnings("ignore")


def make_steps(T: int, B: int, N: int, rate: float):
    torch.manual_seed(0)
    x = (torch.rand(T, B, N) < rate).float()
    w_out = torch.randn(T, B, N)
    lin = nn.Linear(N, N)
    with torch.no_grad():
        lin.weight.mul_(8.0)  # enough drive for a few % output spikes at a 5 % input rate

    def run(neuron_fn):
        def step():
            lin.zero_grad(set_to_none=True)
            cur = lin(x)
            spk = neuron_fn(cur)
            (spk * w_out).sum().backward()

        return step

    steps = {"Linear alone (floor)": run(lambda cur: cur)}

    import neurosparse as ns

    ns_lif = ns.LIF(beta=0.9, threshold=1.0)
    steps["neurosparse LIF (fused Numba)"] = run(lambda cur: ns_lif(cur)[0])

    def ns_ref(cur):
        os.environ["NEUROSPARSE_KERNELS"] = "torch"
        try:
            return ns_lif(cur)[0]
        finally:
            os.environ["NEUROSPARSE_KERNELS"] = "auto"

    steps["neurosparse LIF (torch reference loop)"] = run(ns_ref)

    try:
        import snntorch as snn

        steps["snnTorch Leaky"] = run(partial(snntorch_loop, snn.Leaky(beta=0.9)))
    except ImportError:
        pass
    try:
        import norse.torch as norse

        nlif = norse.LIF()  # sequence module over [T, B, N]
        steps["Norse LIF"] = run(lambda cur: nlif(cur)[0])
    except ImportError:
        pass
    try:
        from spikingjelly.activation_based import neuron as sjn

        sj = sjn.LIFNode(tau=2.0, step_mode="m", detach_reset=True)

        def sj_fn(cur):
            sj.reset()
            return sj(cur)

        steps["SpikingJelly LIFNode (m)"] = run(sj_fn)
    except ImportError:
        pass
    return steps, x


def kernel_alone(T: int, B: int, N: int, reps: int) -> dict[str, float]:
    """ms (median) of the fused CPU kernels alone, forward and backward, for the LIF of
    the step above (no torch, no autograd): what the neuron costs without the glue."""
    import numpy as np

    import neurosparse as ns
    from neurosparse.kernels import lif_cpu
    from neurosparse.ops.lif_sequence import flags_of

    K = B * N
    rng = np.random.default_rng(0)
    f32 = np.float32
    x = rng.normal(0, 0.5, (T, K)).astype(f32)
    state0 = np.zeros((4, K), f32)
    params = np.zeros((8, N), f32)
    params[0], params[1], params[3] = 0.9, 1.0, 1.0
    fwd, bwd = lif_cpu.get_kernels(*flags_of(ns.LIF(0.9).spec))
    z, h, st = np.empty((T, K), f32), np.empty((T, K), f32), np.empty((4, K), f32)
    th, rm = np.empty((1, 1), f32), np.zeros((1, 1), np.uint8)
    gz, gs = rng.normal(size=(T, K)).astype(f32), np.zeros((2, K), f32)
    gx, go = np.empty((T, K), f32), np.empty((4, K), f32)
    runs = {"forward": lambda: fwd(x, state0, params, z, h, th, rm, st),
            "backward": lambda: bwd(gz, gs, h, th, rm, state0, params, f32(2.0), gx, go)}
    out = {}
    for name, fn in runs.items():
        fn()
        ts = []
        for _ in range(max(reps, 5)):
            t0 = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t0) * 1e3)
        out[f"{name}_ms"] = statistics.median(ts)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--out", default=None,
                    help="JSON path (default benchmarks/results/neurons.json; quick/ for --quick)")
    args = ap.parse_args()
    args.out = args.out or str(results_path("neurons.json", args.quick))
    T, B, N, rate = (20, 8, 256, 0.05) if args.quick else (100, 32, 1024, 0.05)
    reps = 3 if args.quick else args.reps
    steps, x = make_steps(T, B, N, rate)
    rows = []
    samples = round_robin(steps, reps, warmup=2)
    floor_ms = samples["Linear alone (floor)"]
    for name, ms in samples.items():
        # the neuron part, paired: each round's step minus the same round's floor, so
        # a slow stretch of the machine falls on both (the difference of two medians
        # carries both spreads)
        part = [a - b for a, b in zip(ms, floor_ms)]
        rows.append({"impl": name, "median_ms": statistics.median(ms), "min_ms": min(ms),
                     "max_ms": max(ms), "samples_ms": ms,
                     "paired_part_ms": statistics.median(part),
                     "paired_part_min_ms": min(part), "paired_part_max_ms": max(part)})  # fmt: skip
    floor = rows[0]["median_ms"]
    ours = next(r for r in rows if r["impl"].startswith("neurosparse LIF (fused"))["median_ms"]
    print(f"Linear({N}->{N}) + LIF, T={T}, B={B}, input rate {rate:.0%}, fwd+bwd, fp32 CPU, "
          f"torch threads={torch.get_num_threads()}, {platform.processor() or platform.machine()}")
    print(f"{'implementation':<40}{'median ms':>10}{'min':>9}{'max':>9}"
          f"{'neuron part ms':>16}{'vs neurosparse':>16}")
    for r in rows:
        r["neuron_part_ms"] = r["median_ms"] - floor
        r["time_vs_neurosparse"] = r["median_ms"] / ours
        print(f"{r['impl']:<40}{r['median_ms']:>10.1f}{r['min_ms']:>9.1f}{r['max_ms']:>9.1f}"
              f"{r['neuron_part_ms']:>16.1f}{r['time_vs_neurosparse']:>15.2f}x")
    extra = 100 * (ours - floor) / floor
    mine = next(r for r in rows if r["impl"].startswith("neurosparse LIF (fused"))
    paired = 100 * mine["paired_part_ms"] / floor
    print(f"neurosparse neuron part = {extra:.1f}% on top of the Linear alone (difference of "
          f"medians); paired per round: {mine['paired_part_ms']:.1f} ms "
          f"({mine['paired_part_min_ms']:.1f} to {mine['paired_part_max_ms']:.1f}) = {paired:.1f}%")
    kern = kernel_alone(T, B, N, reps)
    print(f"fused CPU kernels alone: forward {kern['forward_ms']:.2f} ms, backward "
          f"{kern['backward_ms']:.2f} ms ({T * B * N / 1e6:.1f} M neuron-steps)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {"T": T, "B": B, "N": N, "rate": rate, "reps": reps,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "input_spikes": int(x.sum()), "hardware": hardware(),
            "command": "python " + " ".join(sys.argv)}  # fmt: skip
    Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows, "kernel_alone": kern},
                                         indent=2))  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
