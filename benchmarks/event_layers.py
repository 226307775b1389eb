"""Event layers against what a user would otherwise run, side by side in one process.

CPU (default):

1. Linear 4096 -> 4096 over M = T·B = 3200 rows (T=100, B=32), binary input spikes at
   0.1 % .. 50 %, inference: EventLinear (event path: count pass + index + gather over a
   column-tiled copy of Wᵀ made each call) vs the dense matmul
   (``torch.addmm``), vs stock ``torch.sparse`` (``x.to_sparse_csr() @ Wᵀ``, conversion
   included; MKL), and at 1 % the whole Linear+LIF layer vs snnTorch (``nn.Linear`` over
   the sequence + ``snn.Leaky`` stepped over T, its fastest documented use) and vs
   ``nn.Linear`` + neurosparse ``LIF``.
2. EventConv2d on DVS-sized input (N = T·B = 16 samples): 2×128×128 -> 32, 5×5 (pad 2)
   and 32×128×128 -> 64, 3×3 (pad 1), activity 1 % .. 50 %, vs ``nn.Conv2d`` (oneDNN).
3. Training step (forward + backward) of Linear 1024 -> 1024 + LIF at 5 %, T=100, B=32:
   EventLinear + LIF vs nn.Linear + LIF vs snnTorch, with the input spikes as data
   (first layer: no input gradient) and as the output of an earlier layer (input
   gradient needed).
4. ``--sections fused``: inference of Linear 4096 -> 4096 + LIF, T=100, B=32, input at
   0.1 / 1 / 5 %: the fused pass (``neurosparse.layers.event_linear_lif``: gather and
   neuron step in one kernel, the currents never stored) vs EventLinear then LIF vs
   ``nn.Linear`` + our LIF vs snnTorch; the table also counts spikes that differ
   between fused and unfused (expected 0). With ``--gpu --sections fused`` the same on
   CUDA plus TF32 / bf16 dense + our LIF, and the CUPTI kernel time of both of ours.
5. ``--sections auto``: ``EventLinear(mode="auto")`` vs ``nn.Linear``, 2048 -> 2048, 8 and
   512 rows, 1 .. 50 % input, the crossover measured afresh by the layer itself (issue
   22's goal: auto never more than 1.15x nn.Linear).

Crossovers (activity where the event path becomes as slow as the dense one) are
interpolated in log-activity between the two measured rates around the change; they
feed ``neurosparse/layers/dispatch.py``.

GPU (``--gpu``, CUDA events): Linear 4096 -> 4096 at B = 256 and M = 8000, 0.1 % .. 50 %,
fp32 weights: EventLinear's op (index built on the GPU + gather, no host read) and the
module (exact counts and NaN check: one 32-byte device->host read per call) vs dense
fp32 (TF32 off), TF32, bf16 and cuSPARSE CSR with ``to_sparse_csr()`` included. With
``NUMBA_ENABLE_CUDASIM=1`` and no GPU, ``--gpu --quick`` runs the same code paths on tiny
sizes in the simulator (CPU tensors routed to the CUDA kernels, wall-clock timing).

Timings are medians of interleaved repetitions (round robin, so load changes on the
shared machine hit every contender alike); every sample is in the JSON.

    .venv/bin/python benchmarks/event_layers.py [--quick] [--threads 2] [--out PATH]
    python benchmarks/event_layers.py --gpu [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import warnings
from functools import partial
from pathlib import Path

# before torch loads libgomp, which reads the policy once: spinning OpenMP workers
# starve the other library's threads on few cores (neurosparse/__init__.py says why)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the device machine runs from a bare checkout
    sys.path.insert(0, str(ROOT))

from _peers import snntorch_loop  # noqa: E402  (benchmarks/, beside this)
from _timing import cuda_graph, cuda_ms, hardware, results_path, round_robin, wall_ms  # noqa: E402  (benchmarks/, beside this)

from neurosparse.layers.event_conv2d import EventConv2d  # noqa: E402
from neurosparse.layers.event_linear import EventLinear  # noqa: E402

RATES = [0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]


# -- timing ---------------------------------------------------------------------------------
def med(samples: list[float]) -> float:
    return statistics.median(samples)


def spread(samples: list[float], digits: int = 1) -> str:
    """``median (min-max)`` of timing samples, ``digits`` decimals."""
    return (f"{statistics.median(samples):.{digits}f} "
            f"({min(samples):.{digits}f}-{max(samples):.{digits}f})")  # fmt: skip


def crossover(rates: list[float], ours: list[float], dense: list[float]) -> float | None:
    """Activity where ours/dense crosses 1 (log-interpolated). If ours was faster at every
    rate, the highest rate measured (a lower bound); None if slower already at the lowest."""
    ratio = [o / d for o, d in zip(ours, dense)]
    if ratio[0] >= 1:
        return None
    for i in range(1, len(rates)):
        if ratio[i] >= 1:
            a, b = math.log(rates[i - 1]), math.log(rates[i])
            ra, rb = math.log(ratio[i - 1]), math.log(ratio[i])
            return math.exp(a + (b - a) * (0 - ra) / (rb - ra))
    return max(rates)


def spikes(shape, rate, device="cpu", seed=0):
    gen = torch.Generator(device=device).manual_seed(seed)
    return (torch.rand(shape, generator=gen, device=device) < rate).float()




# -- CPU: Linear -------------------------------------------------------------------------
def bench_linear(rates, T, B, n, reps):
    torch.manual_seed(0)
    layer = EventLinear(n, n, mode="event")
    w, b = layer.weight.detach(), layer.bias.detach()
    wt = w.t()
    # torch.sparse's best use keeps Wᵀ contiguous (made once, like any inference weight):
    # MKL's CSR product with the transposed view ran 1.36x slower (4096², 3200 rows, 1 %)
    wt_c = wt.contiguous()
    rows = []
    for rate in rates:
        x = spikes((T, B, n), rate, seed=int(rate * 1e4))
        x2 = x.reshape(T * B, n)
        fns = {
            "ours": lambda: layer(x),
            "dense": lambda: torch.addmm(b, x2, wt),
            "torch_csr": lambda: torch.addmm(b, x2.to_sparse_csr(), wt_c),
        }
        with torch.no_grad():
            # the contenders must agree before their times mean anything
            want = fns["dense"]()
            errs = {k: float((fns[k]().reshape(want.shape) - want).abs().max())
                    for k in ("ours", "torch_csr")}  # fmt: skip
            if max(errs.values()) > 1e-3 * max(1.0, float(want.abs().max())):
                raise RuntimeError(f"linear rate {rate}: outputs disagree with dense: {errs}")
            # big CSR products at high activity take seconds: fewer repetitions there
            t = round_robin(fns, reps if rate <= 0.1 else max(1, reps // 2))
        nnz = int(x.count_nonzero())
        row = {"rate": rate, "events": nnz, "synops": nnz * n, "max_abs_err_vs_dense": errs,
               **{f"{k}_ms": med(v) for k, v in t.items()}, "samples_ms": t}  # fmt: skip
        row["gsynops_per_s"] = row["synops"] / row["ours_ms"] / 1e6
        rows.append(row)
        print(f"  linear rate {rate:6.3f}: ours {row['ours_ms']:8.2f} ms  dense "
              f"{row['dense_ms']:8.2f}  csr {row['torch_csr_ms']:8.2f}", flush=True)  # fmt: skip
    return rows


def bench_linear_lif(T, B, n, rate, reps):
    """Whole layer at one rate: EventLinear + LIF vs nn.Linear + LIF vs snnTorch."""
    import neurosparse as ns

    torch.manual_seed(0)
    layer = EventLinear(n, n, mode="event")
    lin = layer.to_dense()
    lif = ns.LIF(beta=0.9)
    x = spikes((T, B, n), rate, seed=1)
    wt_c = lin.weight.detach().t().contiguous()  # CSR's best use: Wᵀ contiguous, made once
    fns = {
        "ours_event_linear+lif": lambda: lif(layer(x)),
        "nn_linear+ns_lif": lambda: lif(lin(x)),
        "torch_csr+ns_lif": lambda: lif(
            torch.addmm(lin.bias, x.reshape(T * B, n).to_sparse_csr(), wt_c)
            .reshape(T, B, n)),  # fmt: skip
    }
    try:
        import snntorch as snn

        leaky = snn.Leaky(beta=0.9)

        def snntorch_run():
            cur = lin(x)
            mem = leaky.init_leaky()
            for t in range(T):
                _, mem = leaky(cur[t], mem)

        fns["snntorch"] = snntorch_run
    except ImportError:  # pragma: no cover - interop extra not installed
        pass
    with torch.no_grad():
        t = round_robin(fns, reps)
    return {"rate": rate, **{f"{k}_ms": med(v) for k, v in t.items()}, "samples_ms": t}


def bench_training(T, B, n, rate, reps):
    import neurosparse as ns

    torch.manual_seed(0)
    x = spikes((T, B, n), rate, seed=2)
    w_out = torch.randn(T, B, n)
    ev = EventLinear(n, n, mode="event")
    with torch.no_grad():
        ev.weight.mul_(8.0)  # a few % output spikes at 5 % input, as in benchmarks/neurons.py
    lin = ev.to_dense()
    lif = ns.LIF(beta=0.9)

    def step(layer, neuron, need_input_grad):
        xi = x.clone().requires_grad_(need_input_grad)

        def run():
            layer.zero_grad(set_to_none=True)
            (neuron(layer(xi)) * w_out).sum().backward()

        return run

    def ours_lif(c):
        return lif(c)[0]

    fns = {}
    for grad_in in (False, True):
        tag = "hidden" if grad_in else "first"
        fns[f"ours_event_linear+lif/{tag}"] = step(ev, ours_lif, grad_in)
        fns[f"nn_linear+ns_lif/{tag}"] = step(lin, ours_lif, grad_in)
        fns[f"nn_linear_alone/{tag}"] = step(lin, lambda c: c, grad_in)
    try:
        import snntorch as snn

        snn_neuron = partial(snntorch_loop, snn.Leaky(beta=0.9))
        fns["snntorch/first"] = step(lin, snn_neuron, False)
        fns["snntorch/hidden"] = step(lin, snn_neuron, True)
    except ImportError:  # pragma: no cover
        pass
    t = round_robin(fns, reps)
    return {"rate": rate, "T": T, "B": B, "n": n,
            **{f"{k}_ms": med(v) for k, v in t.items()}, "samples_ms": t}  # fmt: skip


def bench_linear_crossovers(shapes, rates, reps):
    """Event vs dense Linear on more shapes (rows, in, out): the dispatch table's data."""
    out = {}
    for m, n_in, n_out in shapes:
        torch.manual_seed(0)
        layer = EventLinear(n_in, n_out, mode="event")
        w, b = layer.weight.detach(), layer.bias.detach()
        ours, dense = [], []
        for rate in rates:
            x = spikes((m, n_in), rate, seed=int(rate * 1e4))
            with torch.no_grad():
                t = round_robin({"ours": lambda: layer(x),
                                 "dense": lambda: torch.addmm(b, x, w.t())}, reps)  # fmt: skip
            ours.append(med(t["ours"]))
            dense.append(med(t["dense"]))
        out[f"linear {m}x{n_in}->{n_out}"] = {
            "shape": [m, n_in, n_out], "rates": rates, "ours_ms": ours, "dense_ms": dense,
            "crossover": crossover(rates, ours, dense)}  # fmt: skip
        print(f"  crossover linear M={m} {n_in}->{n_out}: "
              f"{out[f'linear {m}x{n_in}->{n_out}']['crossover']}", flush=True)
    return out


# -- mode="auto" against nn.Linear (issue 22) -------------------------------------------------
AUTO_ROWS = [8, 512]
AUTO_RATES = [0.01, 0.05, 0.1, 0.2, 0.5]


def bench_auto(rows, rates, n, reps):
    """``EventLinear(mode="auto")`` vs ``nn.Linear`` (same weights, nn.Linear's own layout)
    at each (rows, rate): the ratio a user switching to auto pays. The crossover is
    measured afresh for this run (a temporary cache folder) on first use, as a new
    machine would; each sample repeats a call for >= 5 ms so small shapes time fairly."""
    import tempfile

    from neurosparse.layers import dispatch

    os.environ["NEUROSPARSE_CACHE_DIR"] = tempfile.mkdtemp(prefix="ns-crossover-")
    dispatch._MEASURED = None
    torch.manual_seed(0)
    layer = EventLinear(n, n, mode="auto")
    lin = layer.to_dense()

    def repeated(fn, calls):
        def run():
            for _ in range(calls):
                fn()
        return run

    out = []
    for m in rows:
        for rate in rates:
            x = spikes((m, n), rate, seed=int(rate * 1e4) + m)
            with torch.no_grad():
                layer(x)  # measures the crossover of this size class the first time
                one = min(wall_ms(lambda: lin(x)) for _ in range(3))
                calls = max(1, math.ceil(5.0 / max(one, 1e-3)))
                t = round_robin({"auto": repeated(lambda: layer(x), calls),
                                 "nn_linear": repeated(lambda: lin(x), calls)}, reps)  # fmt: skip
            t = {k: [v / calls for v in vs] for k, vs in t.items()}
            shape = (m, n, n)
            row = {"rows": m, "rate": rate, "path": layer.last_path, "calls_per_sample": calls,
                   "crossover": dispatch.crossover("linear", "cpu", shape),
                   "auto_ms": med(t["auto"]), "nn_linear_ms": med(t["nn_linear"]),
                   "samples_ms": t}  # fmt: skip
            out.append(row)
            print(f"  auto M={m} rate {rate:.2f}: {row['path']:5s} "
                  f"{row['auto_ms'] / row['nn_linear_ms']:.2f}x nn.Linear", flush=True)
    return out


# -- fused EventLinear + LIF (inference) ---------------------------------------------------
FUSED_RATES = [0.001, 0.01, 0.05]


def bench_fused(rates, T, B, n, reps, dev="cpu"):
    """Inference of Linear(n->n) + LIF over [T, B, n] spikes: the fused pass
    (``layers.event_linear_lif``) vs EventLinear then LIF, vs nn.Linear + our LIF, vs
    snnTorch (nn.Linear + snn.Leaky stepped over T); on CUDA also TF32 / bf16 dense +
    our LIF. Checks on the way that the fused spikes equal the unfused ones."""
    import neurosparse as ns
    from neurosparse.layers.event_linear_lif import event_linear_lif

    real_gpu = dev == "cuda"
    timer = cuda_ms if real_gpu else wall_ms
    torch.manual_seed(0)
    layer = EventLinear(n, n, mode="event", device=dev)
    with torch.no_grad():
        layer.weight.mul_(8.0)  # a few % output spikes, as in bench_training
    lin = layer.to_dense()
    lin_bf16 = layer.to_dense().to(torch.bfloat16)
    lif = ns.LIF(beta=0.9).to(dev)
    rows = []
    for rate in rates:
        x = spikes((T, B, n), rate, device=dev, seed=int(rate * 1e4) + 3)
        fns = {
            "fused": lambda: event_linear_lif(x, layer, lif),
            "unfused": lambda: lif(layer(x)),
            "dense+ns_lif": lambda: lif(lin(x)),
        }
        if real_gpu:
            def tf32():
                torch.backends.cuda.matmul.allow_tf32 = True
                out = lif(lin(x))
                torch.backends.cuda.matmul.allow_tf32 = False
                return out

            xb = x.to(torch.bfloat16)
            fns["tf32+ns_lif"] = tf32
            fns["bf16+ns_lif"] = lambda: lif(lin_bf16(xb))
        try:
            import snntorch as snn

            leaky = snn.Leaky(beta=0.9).to(dev)  # its beta is a buffer
            fns["snntorch"] = lambda: snntorch_loop(leaky, lin(x))
        except ImportError:  # pragma: no cover - interop extra not installed
            pass
        if real_gpu:
            torch.backends.cuda.matmul.allow_tf32 = False
        with torch.no_grad():
            zf, sf = event_linear_lif(x, layer, lif)
            zu, su = lif(layer(x))
            mismatch = int((zf != zu).sum())
            v_err = float((sf.v - su.v).abs().max())
            t = round_robin(fns, reps, warmup=2, timer=timer)
        row = {"rate": rate, "T": T, "B": B, "n": n, "device": dev,
               "out_rate": float(zu.float().mean()), "spike_mismatches": mismatch,
               "final_v_max_abs_diff": v_err,
               **{f"{k}_ms": med(v) for k, v in t.items()}, "samples_ms": t}  # fmt: skip
        if real_gpu:
            for k in ("fused", "unfused"):
                total, per = kernel_time_us(fns[k])
                row[f"{k}_kernel_us"], row[f"{k}_kernels"] = total, per
        rows.append(row)
        print(f"  fused rate {rate:6.3f}: " + "  ".join(
            f"{k} {row[f'{k}_ms']:.2f}" for k in fns) + f" ms; out rate {row['out_rate']:.3f}, "
            f"spike mismatches {mismatch}", flush=True)  # fmt: skip
    return rows


# -- CPU: Conv2d ---------------------------------------------------------------------------
CONV_LAYERS = [
    ("dvs_2x128x128_to_32_k5", 2, 32, 5, 2, 128),
    ("32x128x128_to_64_k3", 32, 64, 3, 1, 128),
]


def bench_conv(rates, n_samples, reps, layers=CONV_LAYERS):
    out = []
    for name, cin, cout, k, pad, hw in layers:
        torch.manual_seed(0)
        layer = EventConv2d(cin, cout, k, padding=pad, mode="event")
        conv = layer.to_dense()
        for rate in rates:
            x = spikes((n_samples, cin, hw, hw), rate, seed=int(rate * 1e4))
            with torch.no_grad():
                t = round_robin({"ours": lambda: layer(x), "dense": lambda: conv(x)}, reps)
            row = {"layer": name, "rate": rate, "events": int(x.count_nonzero()),
                   **{f"{k}_ms": med(v) for k, v in t.items()}, "samples_ms": t}  # fmt: skip
            out.append(row)
            print(f"  conv {name} rate {rate:5.3f}: ours {row['ours_ms']:8.2f} ms  "
                  f"nn.Conv2d {row['dense_ms']:8.2f}", flush=True)  # fmt: skip
    return out


# -- GPU -------------------------------------------------------------------------------------
def _simulator_routing():
    """No GPU but NUMBA_ENABLE_CUDASIM=1: route CPU tensors to the CUDA kernels."""
    import numpy as np

    from neurosparse.ops import event_linear as ops

    class SimEnv:
        def __init__(self, device):
            self.stream = 0

        def view(self, t):
            return t.detach().numpy()

        def alloc(self, shape, dtype, zero):
            return np.zeros(shape, dtype)

        def tensor(self, shape):
            t = torch.empty(shape)
            return t, t.numpy()

    ops.CudaEnv = SimEnv
    ops.kernel_device = lambda x: "cuda"
    os.environ["NEUROSPARSE_KERNELS"] = "numba"


def kernel_time_us(fn, calls: int = 5) -> tuple[float | None, dict[str, float]]:
    """GPU kernel time per call (CUPTI via torch.profiler), total and per kernel name: the
    work on the device without the gaps between launches that CUDA events also see."""
    try:
        from torch.profiler import ProfilerActivity, profile

        with torch.no_grad(), profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(calls):
                fn()
            torch.cuda.synchronize()
        per = {e.key[:60]: getattr(e, "self_device_time_total", 0) / calls
               for e in prof.key_averages()}  # fmt: skip
        per = {k: v for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v > 0}
        return sum(per.values()), per
    except Exception as exc:  # profiler unavailable: report, do not fail the run
        print(f"  (kernel timing unavailable: {exc})")
        return None, {}


def gpu_setup() -> str:
    """``"cuda"``, or ``"cpu"`` routed to the CUDA kernels in the simulator (dry run)."""
    if torch.cuda.is_available():
        return "cuda"
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        raise SystemExit("--gpu needs a CUDA device, or NUMBA_ENABLE_CUDASIM=1 for a dry run")
    _simulator_routing()
    return "cpu"


def gpu_correctness(dev: str, quick: bool) -> list[dict]:
    """Forward and all gradients of the CUDA path against nn.Linear / nn.Conv2d."""

    def max_err(layer, ref, x):
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        y, yr = layer(xa), ref(xb)
        g = torch.randn_like(yr)
        ga = torch.autograd.grad(y, [xa, layer.weight, layer.bias], g)
        gb = torch.autograd.grad(yr, [xb, ref.weight, ref.bias], g)
        errs = [(y - yr).abs().max() / yr.abs().max().clamp(min=1)]
        errs += [(a - b).abs().max() / b.abs().max().clamp(min=1) for a, b in zip(ga, gb)]
        return [float(e) for e in errs]

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    out = []
    size = 1 if quick else 8
    for rate in (0.0, 0.01, 0.1, 1.0):
        torch.manual_seed(0)
        lin = EventLinear(37 * size, 45 * size, mode="event", device=dev)
        x = spikes((3, 4, 37 * size), rate, device=dev)
        out.append({"layer": "linear", "rate": rate,
                    "rel_err_y_gx_gw_gb": max_err(lin, lin.to_dense(), x)})  # fmt: skip
        conv = EventConv2d(4, 6, 3, stride=(2, 1), padding=1, groups=2, mode="event", device=dev)
        xc = spikes((3, 4, 4 * size, 5 * size), rate, device=dev)
        out.append({"layer": "conv2d", "rate": rate,
                    "rel_err_y_gx_gw_gb": max_err(conv, conv.to_dense(), xc)})  # fmt: skip
    worst = max(max(r["rel_err_y_gx_gw_gb"]) for r in out)
    print(f"  CUDA path vs nn.Linear/nn.Conv2d: worst relative error {worst:.2e}", flush=True)
    return out


def bench_gpu(rates, shapes, n, reps, dev):
    from neurosparse.ops import event_linear as ops

    real = dev == "cuda"
    timer = cuda_ms if real else wall_ms
    rows = []
    for m in shapes:
        torch.manual_seed(0)
        layer = EventLinear(n, n, mode="event", device=dev)
        w, b = layer.weight.detach(), layer.bias.detach()
        wt = w.t()
        w_bf16, b_bf16 = w.to(torch.bfloat16), b.to(torch.bfloat16)

        def op_only(x2):
            scan = ops.scan_linear(x2, exact=False)
            return ops.event_linear_apply(x2, w, b, ops.index_linear(x2, scan))

        for rate in rates:
            x2 = spikes((m, n), rate, device=dev, seed=int(rate * 1e4))
            xb = x2.to(torch.bfloat16)
            fns = {
                "ours_op": lambda: op_only(x2),
                "ours_module": lambda: layer(x2),
                "dense_fp32": lambda: torch.addmm(b, x2, wt),
                "dense_tf32": lambda: torch.addmm(b, x2, wt),
                "dense_bf16": lambda: torch.addmm(b_bf16, xb, w_bf16.t()),
                "cusparse_csr": lambda: torch.addmm(b, x2.to_sparse_csr(), wt),
            }
            t = {}
            with torch.no_grad():
                for k, fn in fns.items():
                    tf32 = k == "dense_tf32"
                    if real:
                        torch.backends.cuda.matmul.allow_tf32 = tf32
                    t.update(round_robin({k: fn}, reps, warmup=2, timer=timer))
                    if real and k in ("ours_op", "dense_tf32", "dense_bf16"):
                        replay = cuda_graph(fn)  # launch costs out of the way
                        if replay is not None:
                            t.update(round_robin({k + "_graph": replay}, reps, timer=timer))
                if real:
                    torch.backends.cuda.matmul.allow_tf32 = False
                # correctness on the device, against strict fp32
                err = float((op_only(x2) - torch.addmm(b, x2, wt)).abs().max())
            row = {"rows": m, "rate": rate, "max_abs_err_vs_fp32": err,
                   **{f"{k}_us": med(v) * 1e3 for k, v in t.items()}, "samples_ms": t}  # fmt: skip
            if real:
                total, per = kernel_time_us(lambda: op_only(x2))
                row["ours_op_kernel_us"], row["ours_op_kernels"] = total, per
                print("    kernels (us/call): " + ", ".join(
                    f"{k.split('(')[0][-40:]} {v:.1f}" for k, v in list(per.items())[:4]))
            rows.append(row)
            gr = {k: row.get(f"{k}_graph_us", -1.0)
                  for k in ("ours_op", "dense_tf32", "dense_bf16")}
            print(f"  gpu M={m} rate {rate:6.3f}: graph: ours {gr['ours_op']:8.1f} tf32 "
                  f"{gr['dense_tf32']:8.1f} bf16 {gr['dense_bf16']:8.1f} us")
            print(f"  gpu M={m} rate {rate:6.3f}: ours op {row['ours_op_us']:9.1f} us  module "
                  f"{row['ours_module_us']:9.1f}  fp32 {row['dense_fp32_us']:9.1f}  tf32 "
                  f"{row['dense_tf32_us']:9.1f}  bf16 {row['dense_bf16_us']:9.1f}  cusparse "
                  f"{row['cusparse_csr_us']:9.1f}  err {err:.1e}", flush=True)  # fmt: skip
    return rows


def bench_gpu_conv(rates, n_samples, reps, dev, layers):
    """EventConv2d (module: exact counts, one host read per call) vs cuDNN fp32 / TF32."""
    real = dev == "cuda"
    timer = cuda_ms if real else wall_ms
    out = []
    for name, cin, cout, k, pad, hw in layers:
        torch.manual_seed(0)
        layer = EventConv2d(cin, cout, k, padding=pad, mode="event", device=dev)
        conv = layer.to_dense()
        for rate in rates:
            x = spikes((n_samples, cin, hw, hw), rate, device=dev, seed=int(rate * 1e4))
            t = {}
            with torch.no_grad():
                for key, fn, tf32 in (("ours", lambda: layer(x), False),
                                      ("dense_fp32", lambda: conv(x), False),
                                      ("dense_tf32", lambda: conv(x), True)):  # fmt: skip
                    if real:
                        torch.backends.cudnn.allow_tf32 = tf32
                    t.update(round_robin({key: fn}, reps, warmup=2, timer=timer))
                if real:
                    torch.backends.cudnn.allow_tf32 = False
            row = {"layer": name, "rate": rate,
                   **{f"{k}_us": med(v) * 1e3 for k, v in t.items()}}  # fmt: skip
            if real:
                row["ours_kernel_us"], row["ours_kernels"] = kernel_time_us(lambda: layer(x))
            out.append(row)
            print(f"  gpu conv {name} rate {rate:5.3f}: ours {row['ours_us']:9.1f} us (kernels "
                  f"{row.get('ours_kernel_us') or 0:8.1f})  cuDNN fp32 {row['dense_fp32_us']:8.1f}"
                  f"  TF32 {row['dense_tf32_us']:8.1f}", flush=True)  # fmt: skip
    return out


# -- report ---------------------------------------------------------------------------------
def markdown(res: dict) -> str:
    out = [f"Hardware: {res['hardware']}, threads: {res.get('threads')}, command: "
           f"`{res.get('command')}`; times: median (min-max) of interleaved repetitions", ""]
    if res.get("linear"):
        n = res["config"]["linear_n"]
        out += [f"### Linear {n}->{n}, M = {res['config']['linear_rows']} rows, inference (ms)",
                "", "| rate | ours | dense matmul | torch CSR (+conv.) | dense/ours | "
                "CSR/ours | G synops/s |", "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in res["linear"]:
            sm = r["samples_ms"]
            out.append(f"| {r['rate']:.3%} | {spread(sm['ours'])} | {spread(sm['dense'])} | "
                       f"{spread(sm['torch_csr'])} | {r['dense_ms'] / r['ours_ms']:.1f}× | "
                       f"{r['torch_csr_ms'] / r['ours_ms']:.1f}× | "
                       f"{r['gsynops_per_s']:.1f} |")  # fmt: skip
    if res.get("linear_lif"):
        r = res["linear_lif"]
        out += ["", f"### Linear+LIF layer at {r['rate']:.0%} (ms)", "", "| contender | ms | "
                "vs ours |", "|---|---|---|"]  # fmt: skip
        base = r["ours_event_linear+lif_ms"]
        for k, v in r.items():
            if k.endswith("_ms") and k != "samples_ms":
                out.append(f"| {k[:-3]} | {v:.1f} | {v / base:.1f}× |")
    if res.get("fused"):
        rr = res["fused"]
        r0 = rr[0]
        keys = [k[:-3] for k in r0 if k.endswith("_ms") and k != "samples_ms"]
        unit = "ms, CUDA events" if r0["device"] == "cuda" else "ms"
        out += ["", f"### Fused EventLinear+LIF inference, Linear {r0['n']}->{r0['n']}, "
                f"T={r0['T']}, B={r0['B']}, {r0['device']} ({unit})", "",
                "| rate | " + " | ".join(keys) + " | unfused/fused | out rate | mismatches |",
                "|---" * (len(keys) + 4) + "|"]  # fmt: skip
        for r in rr:
            out.append(f"| {r['rate']:.1%} | " + " | ".join(spread(r["samples_ms"][k])
                                                            for k in keys)
                       + f" | {r['unfused_ms'] / r['fused_ms']:.2f}× | {r['out_rate']:.3f} | "
                       f"{r['spike_mismatches']} |")  # fmt: skip
        if any(r.get("fused_kernel_us") for r in rr):
            out += ["", "GPU kernel time (µs, CUPTI), fused / unfused: " + ", ".join(
                f"{r['rate']:.1%}: {r['fused_kernel_us']:.1f} / {r['unfused_kernel_us']:.1f}"
                for r in rr if r.get("fused_kernel_us"))]
    if res.get("conv"):
        out += ["", "### EventConv2d vs nn.Conv2d, inference (ms)", "",
                "| layer | rate | ours | nn.Conv2d | speed-up |", "|---|---|---|---|---|"]
        for r in res["conv"]:
            out.append(f"| {r['layer']} | {r['rate']:.1%} | {r['ours_ms']:.1f} | "
                       f"{r['dense_ms']:.1f} | {r['dense_ms'] / r['ours_ms']:.1f}× |")  # fmt: skip
    if res.get("training"):
        r = res["training"]
        out += ["", f"### Training step Linear {r['n']}->{r['n']} + LIF at {r['rate']:.0%}, "
                f"T={r['T']}, B={r['B']} (ms)", "", "| contender | ms |", "|---|---|"]
        for k, v in r.items():
            if k.endswith("_ms") and k != "samples_ms":
                out.append(f"| {k[:-3]} | {v:.1f} |")
    if res.get("auto"):
        rr = res["auto"]
        out += ["", f"### EventLinear(mode=\"auto\") vs nn.Linear, {res['config']['auto_n']}² "
                "(ms per call)", "",
                "| rows | rate | path | auto | nn.Linear | auto / nn.Linear | crossover |",
                "|---|---|---|---:|---:|---:|---:|"]  # fmt: skip
        for r in rr:
            out.append(f"| {r['rows']} | {r['rate']:.0%} | {r['path']} | "
                       f"{spread(r['samples_ms']['auto'], 2)} | "
                       f"{spread(r['samples_ms']['nn_linear'], 2)} | "
                       f"{r['auto_ms'] / r['nn_linear_ms']:.2f}x | {r['crossover']:.1%} |")
    if res.get("crossovers"):
        out += ["", "### Crossovers (activity where the event path stops being faster)", ""]
        out += [f"- {k}: {v if v is None else f'{v:.1%}'}" for k, v in res["crossovers"].items()]
    if res.get("gpu_conv"):
        out += ["", "### GPU EventConv2d (module) vs cuDNN, µs per call (CUDA events)", "",
                "| layer | rate | ours | ours kernels | cuDNN fp32 | cuDNN TF32 | fp32/ours |",
                "|---|---|---|---|---|---|---|"]
        for r in res["gpu_conv"]:
            out.append(f"| {r['layer']} | {r['rate']:.1%} | {r['ours_us']:.1f} | "
                       f"{r.get('ours_kernel_us') or float('nan'):.1f} | "
                       f"{r['dense_fp32_us']:.1f} | {r['dense_tf32_us']:.1f} | "
                       f"{r['dense_fp32_us'] / r['ours_us']:.2f}× |")  # fmt: skip
    if res.get("gpu"):
        n = res["config"]["n"]
        if any("ours_op_graph_us" in r for r in res["gpu"]):
            out += ["", f"### GPU, Linear {n}->{n}, CUDA-graph replay (µs per call: device time "
                    "without Python launch costs)", "",
                    "| rows | rate | ours op | TF32 | bf16 | TF32/ours | bf16/ours |",
                    "|---|---|---|---|---|---|---|"]  # fmt: skip
            for r in res["gpu"]:
                if "ours_op_graph_us" in r:
                    o, t32, b16 = (r["ours_op_graph_us"], r.get("dense_tf32_graph_us", math.nan),
                                   r.get("dense_bf16_graph_us", math.nan))  # fmt: skip
                    out.append(f"| {r['rows']} | {r['rate']:.1%} | {o:.1f} | {t32:.1f} | "
                               f"{b16:.1f} | {t32 / o:.2f}× | {b16 / o:.2f}× |")  # fmt: skip
        out += ["", f"### GPU, Linear {n}->{n}, fp32 weights (µs per call, CUDA events)", "",
                "| rows | rate | ours op | ours module | fp32 | TF32 | bf16 | cuSPARSE "
                "(+conv.) | cuSPARSE/ours | TF32/ours |", "|---" * 10 + "|"]
        for r in res["gpu"]:
            out.append(
                f"| {r['rows']} | {r['rate']:.1%} | {r['ours_op_us']:.1f} | "
                f"{r['ours_module_us']:.1f} | {r['dense_fp32_us']:.1f} | {r['dense_tf32_us']:.1f} "
                f"| {r['dense_bf16_us']:.1f} | {r['cusparse_csr_us']:.1f} | "
                f"{r['cusparse_csr_us'] / r['ours_op_us']:.1f}× | "
                f"{r['dense_tf32_us'] / r['ours_op_us']:.1f}× |")
        if any(r.get("ours_op_kernel_us") for r in res["gpu"]):
            out += ["", "GPU kernel time of ours (µs, CUPTI): " + ", ".join(
                f"M={r['rows']}@{r['rate']:.1%}: {r['ours_op_kernel_us']:.1f}"
                for r in res["gpu"] if r.get("ours_op_kernel_us"))]
    return "\n".join(out) + "\n"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    ap.add_argument("--gpu", action="store_true", help="the GPU section instead of the CPU one")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--rates", type=float, nargs="*", default=None, help="override the sweep")
    ap.add_argument("--rows", type=int, nargs="*", default=None, help="--gpu: override M")
    ap.add_argument("--sections", default="linear,conv",
                    help="comma list; --gpu: linear,conv,fused; CPU: linear,lif,conv,training,"
                         "shapes,fused,auto (the default runs all of them on the CPU, linear,conv "
                         "on the GPU)")  # fmt: skip
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--md", type=Path, default=None, help="also write the tables as Markdown")
    args = ap.parse_args(argv)
    res: dict = {"hardware": hardware(), "quick": args.quick, "command": " ".join(sys.argv)}
    if args.gpu:
        reps = args.reps or (2 if args.quick else 15)
        n = 64 if args.quick else 4096
        shapes = args.rows or ([8, 20] if args.quick else [256, 8000])
        rates = args.rates or ([0.01, 0.5] if args.quick else RATES)
        res["config"] = {"n": n, "rows": shapes, "reps": reps}
        dev = gpu_setup()
        res["gpu_correctness"] = gpu_correctness(dev, args.quick)
        res["crossovers"] = {}
        if "linear" in args.sections:
            res["gpu"] = bench_gpu(rates, shapes, n, reps, dev)
            for m in shapes:
                rr = [r for r in res["gpu"] if r["rows"] == m]
                for base in ("dense_fp32", "dense_tf32", "dense_bf16", "cusparse_csr"):
                    res["crossovers"][f"gpu M={m} vs {base}"] = crossover(
                        [r["rate"] for r in rr], [r["ours_op_us"] for r in rr],
                        [r[f"{base}_us"] for r in rr])  # fmt: skip
        if "conv" in args.sections:
            layers = [(nm, ci, co, k, p, 16) for nm, ci, co, k, p, _ in CONV_LAYERS] \
                if args.quick else CONV_LAYERS  # fmt: skip
            crates = [0.01, 0.5] if args.quick else [0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
            res["gpu_conv"] = bench_gpu_conv(crates, 2 if args.quick else 16, reps, dev, layers)
            for name, *_ in layers:
                rr = [r for r in res["gpu_conv"] if r["layer"] == name]
                res["crossovers"][f"gpu conv {name} vs cuDNN fp32"] = crossover(
                    [r["rate"] for r in rr], [r["ours_us"] for r in rr],
                    [r["dense_fp32_us"] for r in rr])  # fmt: skip
        if "fused" in args.sections:
            fT, fB, fn = (4, 2, 64) if args.quick else (100, 32, 4096)
            res["fused"] = bench_fused(args.rates or FUSED_RATES, fT, fB, fn, reps, dev)
        default_out = results_path("event_layers_gpu.json", args.quick)
    else:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
        res["threads"] = args.threads
        q = args.quick
        reps = args.reps or (2 if q else 5)
        T, B, n = (10, 8, 512) if q else (100, 32, 4096)
        rates = args.rates or ([0.01, 0.1] if q else RATES)
        res["config"] = {"linear_n": n, "linear_rows": T * B, "reps": reps}
        sec = set(args.sections.split(",")) if args.sections != "linear,conv" else \
            {"linear", "lif", "conv", "training", "shapes", "fused", "auto"}  # fmt: skip
        cx = {}
        if "linear" in sec:
            print("Linear sweep", flush=True)
            res["linear"] = bench_linear(rates, T, B, n, reps)
            cx[f"linear {n}x{n} M={T * B}"] = crossover(
                rates, [r["ours_ms"] for r in res["linear"]],
                [r["dense_ms"] for r in res["linear"]])  # fmt: skip
        if "lif" in sec:
            print("Linear + LIF at 1 %", flush=True)
            res["linear_lif"] = bench_linear_lif(T, B, n, 0.01, reps)
        conv_layers = [(nm, ci, co, k, p, 32) for nm, ci, co, k, p, _ in CONV_LAYERS] if q \
            else CONV_LAYERS  # fmt: skip
        if "conv" in sec:
            print("Conv2d", flush=True)
            res["conv"] = bench_conv([0.01, 0.05] if q else [0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
                                     4 if q else 16, reps, conv_layers)  # fmt: skip
            for name, *_ in conv_layers:
                rr = [r for r in res["conv"] if r["layer"] == name]
                cx[f"conv {name}"] = crossover([r["rate"] for r in rr],
                                               [r["ours_ms"] for r in rr],
                                               [r["dense_ms"] for r in rr])  # fmt: skip
        if "training" in sec:
            print("Training step", flush=True)
            tT, tB, tn = (10, 8, 256) if q else (100, 32, 1024)
            res["training"] = bench_training(tT, tB, tn, 0.05, reps)
        if "shapes" in sec:
            print("Crossovers on more Linear shapes", flush=True)
            more = [(32, 512, 512), (320, 512, 512)] if q else \
                [(32, 4096, 4096), (3200, 1024, 1024), (320, 1024, 1024), (3200, 256, 256)]
            res["linear_shapes"] = bench_linear_crossovers(
                more, [0.01, 0.05, 0.2] if q else [0.01, 0.02, 0.05, 0.1, 0.2, 0.4], reps)
            for k, v in res["linear_shapes"].items():
                cx[k] = v["crossover"]
        if "auto" in sec:
            print('mode="auto" vs nn.Linear', flush=True)
            an = 256 if q else 2048
            res["config"]["auto_n"] = an
            res["auto"] = bench_auto(AUTO_ROWS, [0.01, 0.5] if q else AUTO_RATES, an, reps)
        if "fused" in sec:
            print("Fused EventLinear + LIF (inference)", flush=True)
            res["fused"] = bench_fused(args.rates or ([0.01, 0.05] if q else FUSED_RATES),
                                       T, B, n, reps)  # fmt: skip
        res["crossovers"] = cx
        default_out = results_path("event_layers.json", q)
    out = args.out or default_out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    md = markdown(res)
    print(md)
    if args.md:
        args.md.write_text(md)
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main()
