"""Where the GPU event Linear spends its time: the kernels in a CUDA graph, the host eager.

1. The op alone, 4096 -> 4096, in a CUDA graph, per row count and input rate: the
   row-tile kernel (``tile``), the fused gather (``fused``), the event lists + gather
   pair (``lists``: the wide gather; ``lists narrow``: the column gather), the design
   the kernels pick by default at that row count (``default``), and dense
   TF32 / bf16, round-robin, µs per call (medians with min-max).
2. The host: ``cProfile`` of eager ``EventLinear(mode="event")`` calls at batch 1 (the
   functions that cost the most own time), and the eager per-call time of the event
   layer, the dense layer and plain ``F.linear``.
3. ``lifstep``: one ``LIF.step`` through the fused kernel against the reference step,
   eager, host time and in a CUDA graph (``--sections lifstep``).
4. ``launch``: host µs per launch of a kernel of eight ``[1, 4096]`` fp32 arrays: numba's
   dispatcher, ``ops.cuda_env.launch`` with the same tensors every call and with new
   output tensors every call, beside torch ops for scale (``--sections launch``).

    python3 benchmarks/profile_event_gpu.py --out $OUT/profile_event_gpu.json
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import pstats
import statistics
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import cuda_graph, cuda_ms, hardware, host_ms, round_robin  # noqa: E402

import neurosparse as ns  # noqa: E402
from neurosparse.kernels import event_linear_cuda as kc  # noqa: E402
from neurosparse.layers import event_linear_plan as plan_mod  # noqa: E402
from neurosparse.layers.event_linear import event_linear  # noqa: E402


def _stats(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}


# (name, settings of kernels/event_linear_cuda.py) forcing each design at any row count:
# the row tile; the fused gather (each block compacts its row, int64 weight words);
# event lists with the wide gather and with the column gather they replaced
_BIG = 1 << 30
VARIANTS = (("tile", dict(SPLIT_ROWS=_BIG, FUSED=False, WIDE=True)),
            ("fused", dict(FUSED=True, FUSED_FROM=1, LISTS_FROM=_BIG)),
            ("lists", dict(SPLIT_ROWS=1, FUSED=False, WIDE=True)),
            ("lists narrow", dict(SPLIT_ROWS=1, FUSED=False, WIDE=False)))  # fmt: skip
_DESIGN = ("SPLIT_ROWS", "FUSED", "FUSED_FROM", "LISTS_FROM", "WIDE")


def _design(settings: dict | None = None) -> dict:
    """Set the kernels' design constants (fixed at capture); returns the previous ones."""
    old = {k: getattr(kc, k) for k in _DESIGN}
    for k, v in (settings or {}).items():
        setattr(kc, k, v)
    return old


def kernels_in_graphs(n: int, rows_list, rates, reps: int) -> list[dict]:
    g = torch.Generator(device="cuda").manual_seed(0)
    w = torch.randn(n, n, device="cuda", generator=g) / math.sqrt(n)
    w_t = torch.empty(n, n, device="cuda").t()
    w_t.copy_(w)  # EventLinear's storage: Wᵀ contiguous
    wb = w.bfloat16()
    wb_t = torch.empty(n, n, device="cuda", dtype=torch.bfloat16).t()
    wb_t.copy_(wb)
    b, bb = torch.zeros(n, device="cuda"), torch.zeros(n, device="cuda", dtype=torch.bfloat16)
    out = []
    default = _design()
    for rows in rows_list:
        for rate in rates:
            x = (torch.rand(rows, n, device="cuda", generator=g) < rate).float()
            xb = x.bfloat16()
            fns = {}
            with torch.no_grad():
                fns["default fp32"] = cuda_graph(lambda: event_linear(x, w_t, b, mode="event"))
                fns["default bf16"] = cuda_graph(lambda: event_linear(xb, wb_t, bb, mode="event"))
                for path, settings in VARIANTS:
                    _design(settings)
                    fns[f"{path} fp32"] = cuda_graph(lambda: event_linear(x, w_t, b, mode="event"))
                    fns[f"{path} bf16"] = cuda_graph(lambda: event_linear(xb, wb_t, bb,
                                                                          mode="event"))
                _design(default)
                torch.backends.cuda.matmul.allow_tf32 = True
                fns["dense tf32"] = cuda_graph(lambda: F.linear(x, w, b))
                torch.backends.cuda.matmul.allow_tf32 = False
                fns["dense bf16"] = cuda_graph(lambda: F.linear(xb, wb, bb))
                ref = F.linear(x.double(), w.double(), b.double())
                errs = {}
                for path, settings in VARIANTS:
                    _design(settings)
                    y = event_linear(x, w_t, b, mode="event").double()
                    yb = event_linear(xb, wb_t, bb, mode="event").double()
                    errs[f"{path} fp32"] = float((y - ref).norm() / ref.norm().clamp_min(1e-30))
                    errs[f"{path} bf16"] = float((yb - ref).norm() / ref.norm().clamp_min(1e-30))
                _design(default)
            fns = {k: f for k, f in fns.items() if f is not None}  # None: capture failed
            res = round_robin(fns, reps, timer=lambda f: cuda_ms(f, 20) * 1e3)
            row = {"rows": rows, "rate": rate, "us": {k: _stats(v) for k, v in res.items()},
                   "rel_err": errs}  # fmt: skip
            out.append(row)
            print(f"rows={rows:4d} rate={rate:.3f} " + "  ".join(
                f"{k}={v['median']:.1f}" for k, v in row["us"].items()), flush=True)
    return out


def host_profile(n: int, calls: int) -> dict:
    torch.manual_seed(0)
    layer = ns.EventLinear(n, n, mode="event", device="cuda")
    dense = ns.EventLinear(n, n, mode="dense", device="cuda")
    x = (torch.rand(1, n, device="cuda") < 0.01).float()
    w, b = dense.weight.detach(), dense.bias.detach()
    with torch.no_grad():
        wb, bb, xb = w.bfloat16(), b.bfloat16(), x.bfloat16()
        def general():  # the same call with no kept plan (layers/event_linear_plan.py)
            plan_mod.KEEP_CALLS = False
            layer.__dict__.pop("_ns_plan", None)
            layer(x)
            plan_mod.KEEP_CALLS = True

        fns = {"EventLinear event": lambda: layer(x), "EventLinear event, general path": general,
               "EventLinear dense": lambda: dense(x),
               "F.linear": lambda: F.linear(x, w, b),
               "F.linear bf16": lambda: F.linear(xb, wb, bb)}  # fmt: skip
        res = round_robin(fns, 9, warmup=5, timer=lambda f: cuda_ms(f, 50) * 1e3)
        host = round_robin(fns, 9, warmup=5, timer=lambda f: host_ms(f, 200) * 1e3)
        text = _cprofile(lambda: layer(x), calls)
    for k, v in host.items():
        print(f"host {k}: {_stats(v)['median']:.1f} µs per call")
    return {"eager_us": {k: _stats(v) for k, v in res.items()},
            "host_us": {k: _stats(v) for k, v in host.items()}, "calls": calls,
            "cprofile": text}  # fmt: skip


def _cprofile(fn, calls: int) -> str:
    """Where the host time of ``calls`` eager calls of ``fn`` goes (printed and returned)."""
    prof = cProfile.Profile()
    torch.cuda.synchronize()
    prof.enable()
    for _ in range(calls):
        fn()
    prof.disable()
    torch.cuda.synchronize()
    text = io.StringIO()
    st = pstats.Stats(prof, stream=text)
    st.sort_stats("tottime").print_stats(30)
    st.sort_stats("cumulative").print_stats(30)
    print(text.getvalue())
    return text.getvalue()


def lif_step(n: int, rows_list, reps: int) -> dict:
    """One ``LIF.step`` on CUDA: the fused kernel (``T = 1``) against the reference step's
    elementwise ops (``NEUROSPARSE_KERNELS=torch``), each with and without ``out=`` (the new
    state written into static buffers, rows of one fp32 buffer); eager CUDA-event time,
    host time alone, and the replay of the step captured in a CUDA graph; µs per call."""
    import os

    from neurosparse.neurons.functional import NeuronState

    lif = ns.LIF(0.9).to("cuda")
    out: dict = {}
    for rows in rows_list:
        x = torch.rand(rows, n, device="cuda") * 0.3
        st = NeuronState(*torch.zeros(4, rows, n, device="cuda").unbind(0))
        variants = {}
        for mode in ("numba", "torch"):
            for use_out in (False, True):
                os.environ["NEUROSPARSE_KERNELS"] = mode
                f = (lambda: lif.step(x, st, out=st)) if use_out else (lambda: lif.step(x, st))
                name = ("kernel" if mode == "numba" else "reference") + (" out=" if use_out
                                                                          else "")  # fmt: skip
                with torch.no_grad():
                    variants[name] = (mode, f, cuda_graph(f))
        res: dict = {k: {"eager": [], "host": [], "graph": []} for k in variants}
        with torch.no_grad():
            for _ in range(reps):
                for name, (mode, f, g) in variants.items():
                    os.environ["NEUROSPARSE_KERNELS"] = mode
                    res[name]["eager"].append(cuda_ms(f, 50) * 1e3)
                    res[name]["host"].append(host_ms(f, 200) * 1e3)
                    res[name]["graph"].append(cuda_ms(g, 200) * 1e3)
        os.environ.pop("NEUROSPARSE_KERNELS", None)
        if rows == rows_list[0]:
            with torch.no_grad():
                out["cprofile kernel out="] = _cprofile(variants["kernel out="][1], 500)
        out[f"{rows} x {n}"] = {k: {m: _stats(v) for m, v in r.items()} for k, r in res.items()}
        for k, r in out[f"{rows} x {n}"].items():
            print(f"LIF step {rows} x {n} {k:14s} " + ", ".join(
                f"{m} {v['median']:.1f} ({v['min']:.1f}-{v['max']:.1f})" for m, v in r.items()),
                flush=True)  # fmt: skip
    return out


def launch_host(reps: int, calls: int = 3000) -> dict:
    from numba import cuda

    from neurosparse.ops import cuda_env

    @cuda.jit
    def add8(a, b, c, d, e, f, g, out):
        k = cuda.grid(1)
        if k < out.shape[1]:
            out[0, k] = a[0, k] + b[0, k] + c[0, k] + d[0, k] + e[0, k] + f[0, k] + g[0, k]

    n = 4096
    ins = [torch.rand(1, n, device="cuda") for _ in range(7)]
    out = torch.empty(1, n, device="cuda")
    env = cuda_env.CudaEnv(out.device)
    views = [cuda.as_cuda_array(t, sync=False) for t in (*ins, out)]
    grid, block = n // 128, 128
    env.launch(add8, grid, block, *ins, out)  # compiles; keeps the overload
    torch.testing.assert_close(out, sum(ins))
    a, b = torch.rand(n, device="cuda"), torch.rand(n, device="cuda")
    c = torch.empty(n, device="cuda")
    rows = [torch.rand(n, device="cuda") for _ in range(8)]
    zs = [torch.zeros((), device="cuda") for _ in range(8)]

    def new_out():
        env.launch(add8, grid, block, *ins, torch.empty(1, n, device="cuda"))

    # (launch path, fn): the path is set for each timed sample (cuda_env reads it per call)
    fns = {"numba dispatcher (views made beforehand)":
               ("0", lambda: add8[grid, block, env.stream](*views)),
           "cuda.core path, same tensors": ("core", lambda: env.launch(add8, grid, block, *ins,
                                                                       out)),
           "cuda.core path, new output tensor": ("core", new_out),
           "driver path, same tensors": ("driver", lambda: env.launch(add8, grid, block, *ins,
                                                                      out)),
           "driver path, new output tensor": ("driver", new_out),
           "torch.add(out=)": ("0", lambda: torch.add(a, b, out=c)),
           "torch.empty((1, 4096))": ("0", lambda: torch.empty(1, n, device="cuda")),
           "torch.stack of 8 rows": ("0", lambda: torch.stack(rows)),
           "torch.stack of 8 0-d tensors": ("0", lambda: torch.stack(zs))}  # fmt: skip
    mode_of = cuda_env.fast_launch_mode
    res: dict = {k: [] for k in fns}
    try:
        for rep in range(reps + 2):  # two warm-up rounds, then reps rounds in turn
            for name, (mode, f) in fns.items():
                path = {"0": "off"}.get(mode, mode)
                cuda_env.fast_launch_mode = lambda path=path: path
                t = host_ms(f, calls) * 1e3
                if rep >= 2:
                    res[name].append(t)
                if name.endswith("same tensors"):  # each path computed the sum
                    torch.cuda.synchronize()
                    torch.testing.assert_close(out, sum(ins))
    finally:
        cuda_env.fast_launch_mode = mode_of
    out_stats = {k: _stats(v) for k, v in res.items()}
    for k, v in out_stats.items():
        print(f"launch host {k}: {v['median']:.1f} ({v['min']:.1f}-{v['max']:.1f}) µs",
              flush=True)  # fmt: skip
    return {"launcher": cuda_env.launcher(), "calls": calls, "host_us": out_stats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="profile_event_gpu.json")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sections", default="graphs,host")
    ap.add_argument("--rows", default="1,8,16,64,256", help="row counts of 'graphs'")
    ap.add_argument("--rates", default="0.001,0.01,0.1", help="input rates of 'graphs'")
    args = ap.parse_args()
    res: dict = {"hardware": hardware()}
    if "launch" in args.sections:
        res["launch"] = launch_host(args.reps)
        Path(args.out).write_text(json.dumps(res, indent=1))
    if "host" in args.sections:
        res["host"] = host_profile(4096, 300)
        Path(args.out).write_text(json.dumps(res, indent=1))
    if "lifstep" in args.sections:
        res["lif_step"] = lif_step(4096, (1, 16), args.reps)
        Path(args.out).write_text(json.dumps(res, indent=1))
    if "graphs" in args.sections:
        rows = [int(r) for r in args.rows.split(",")]
        rates = [float(r) for r in args.rates.split(",")]
        res["graphs"] = kernels_in_graphs(4096, rows, rates, args.reps)
    Path(args.out).write_text(json.dumps(res, indent=1))
    for k, v in res.get("host", {}).get("eager_us", {}).items():
        print(f"eager {k}: {v['median']:.1f} ({v['min']:.1f}-{v['max']:.1f}) µs")


if __name__ == "__main__":
    main()
