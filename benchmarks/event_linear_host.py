"""The Python part of an eager CUDA ``EventLinear`` call: kept call against general path.

``python benchmarks/event_linear_host.py [--rounds N] [--calls N] [--out F.json]``

Runs anywhere: CPU tensors are routed to the CUDA code path (as the simulator tests do)
and the kernels' launch is replaced by an output allocation, so what is timed is the
host work of ``EventLinear(4096, 4096, mode="event")`` on ``x [1, 4096]`` (1 % spikes)
under ``torch.no_grad()``, everything but the launch itself (~15 µs on an H100's host,
RESULTS.md "GPU launch host time"):

* ``kept``: the call replays the layer's kept plan (``layers/event_linear_plan.py``);
* ``general``: the same call with no plan kept (``KEEP_CALLS = False``): the checks,
  dispatch, counter tally and launch arguments of every call;
* ``torch.empty``: the output allocation alone, for scale.

Medians (min-max) over rounds of the process CPU time per call, cases interleaved per
round. On a GPU, ``profile_event_gpu.py --sections host`` times the real calls.
"""

from __future__ import annotations

import argparse
import importlib
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import hardware  # noqa: E402

import neurosparse as ns  # noqa: E402
from neurosparse.ops import event_linear as ops  # noqa: E402
from neurosparse.ops import registry  # noqa: E402

plan_mod = importlib.import_module("neurosparse.layers.event_linear_plan")


class _NoLaunch:
    """``ops.CudaLinearLaunch`` with the launch replaced by the output's allocation."""

    def __init__(self, device, rows, weight, bias, tally, dtype):
        self.kc = ops._cuda_kernels()
        self.shape, self.dtype = (rows, weight.shape[0]), dtype

    def launch(self, x):
        return torch.empty(self.shape, dtype=self.dtype)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--out", default="benchmarks/results/event_linear_host.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    ops.kernel_device = lambda t: "cuda"
    ops.CudaLinearLaunch = _NoLaunch
    registry._CUDA_OK[:] = [True]
    torch.manual_seed(0)
    layer = ns.EventLinear(4096, 4096, mode="event")
    x = (torch.rand(1, 4096) < 0.01).float()

    def kept():
        layer(x)

    def general():
        plan_mod.KEEP_CALLS = False
        layer.__dict__["_ns_plan"] = None  # as if none had been kept
        layer(x)
        plan_mod.KEEP_CALLS = True

    cases = {"kept": kept, "general": general, "torch.empty": lambda: torch.empty((1, 4096))}
    times: dict[str, list[float]] = {k: [] for k in cases}
    with torch.no_grad():
        for f in cases.values():
            for _ in range(200):
                f()
        kept()  # leave a plan for the "kept" case (general() drops it each call)
        for _ in range(args.rounds):
            for name, f in cases.items():
                if name == "kept":
                    layer(x)  # the first call after general() keeps the plan again
                t0 = time.process_time()
                for _ in range(args.calls):
                    f()
                times[name].append((time.process_time() - t0) / args.calls * 1e6)
    rows = {k: {"median": statistics.median(v), "min": min(v), "max": max(v)}
            for k, v in times.items()}  # fmt: skip
    ratio = rows["kept"]["median"] / rows["general"]["median"]
    print("| host µs per call, launch excluded | median (min-max) |\n|---|---:|")
    for k, r in rows.items():
        print(f"| {k} | {r['median']:.1f} ({r['min']:.1f}-{r['max']:.1f}) |")
    print(f"kept / general: {ratio:.2f}x")
    out = {"hardware": hardware(), "calls": args.calls, "rounds": args.rounds,
           "us_per_call": rows, "kept_over_general": ratio}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
