"""GPU benchmark (run on the H100 with the device tool): fused LIF kernels vs the peers.

Sections, all in one run, CUDA events, median of ``--reps`` after warm-up:

1. ``check``: the CUDA kernel against the torch reference on the GPU (spikes equal,
   gradients within 1e-5) -- the numbers below mean nothing if this fails.
2. ``open_neuromorphic``: the Open Neuromorphic "SNN library benchmark" setup, a
   Linear(N, N) + LIF layer, randn input ``[T=500, B=16, N]``, forward + backward, for
   N in 4096 / 8192 / 16384: neurosparse (one GEMM over the sequence + the fused CUDA
   LIF kernel), snnTorch ``Leaky``, Norse ``LIF``, SpikingJelly ``LIFNode(step_mode="m")``
   (its auto back-end: Triton), and the GEMM floor (the Linear alone), each in fp32-strict,
   TF32 and bf16 (bf16 GEMM, fp32 membrane) where the library supports it.
3. ``conv_snn``: a 2-layer conv SNN on DVS-sized input ``[T=100, B=32, 2, 128, 128]``
   (Conv 2->32 5x5/2 + LIF, Conv 32->64 3x3/2 + LIF, pool, Linear -> 11 + LIF), one
   training step: time and peak memory (of one step, beyond the input and parameters
   already allocated; each model measured alone),
   neurosparse vs snnTorch and SpikingJelly, in fp32, TF32 and bf16 autocast
   (convolutions in bf16, neurons given what autocast hands them).

The fast implementations of a section are timed round-robin (one repetition of each in
turn), so drift of the GPU's clocks over the run affects them alike.

    python benchmarks/gpu.py --out $OUT/gpu.json [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import traceback
import warnings
from functools import partial
from pathlib import Path

import torch
from torch import nn

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _peers import snntorch_loop, spikingjelly_lif  # noqa: E402  (benchmarks/, beside this)
from _timing import cuda_event_ms, results_path, round_robin  # noqa: E402  (benchmarks/, beside this)


def _summary(ms: list[float]) -> dict:
    return {"median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms)}


def cuda_time(fn, reps: int, warmup: int = 3) -> dict:
    """Median / min / max CUDA-event ms of ``fn`` over ``reps`` calls after ``warmup``."""
    ms = round_robin({"fn": fn}, reps, warmup, timer=cuda_event_ms)["fn"]
    return _summary(ms)


def interleaved_times(fns: dict, reps: int, warmup: int = 3) -> dict[str, dict]:
    """:func:`cuda_time` of several callables, their repetitions taken in turn; one that
    fails while warming up is reported with its error instead of a time."""
    errors: dict[str, str] = {}
    for name, fn in fns.items():
        try:
            fn()
        except Exception as e:  # report, do not hide
            errors[name] = f"{type(e).__name__}: {e}"[:300]
    ok = {n: f for n, f in fns.items() if n not in errors}
    times = round_robin(ok, reps, max(warmup - 1, 0), timer=cuda_event_ms)
    return {n: {"error": errors[n]} if n in errors else _summary(times[n]) for n in fns}


def set_precision(mode: str) -> None:
    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    torch.backends.cudnn.allow_tf32 = mode == "tf32"


def check(dev) -> dict:
    import neurosparse as ns

    torch.manual_seed(0)
    out = {}
    for name, neuron in {
        "LIF": ns.LIF(0.9, 1.0, learn_beta=True, learn_threshold=True),
        "ALIF": ns.ALIF(0.9, 1.0, adapt=0.3),
        "CubaLIF": ns.CubaLIF(),
        "LIF_zero_refractory": ns.LIF(0.9, 1.0, "zero", refractory=2),
    }.items():
        neuron = neuron.to(dev)
        x = (torch.rand(64, 8, 1000, device=dev) * (6.0 if name == "CubaLIF" else 1.0))
        res = {}
        # numba twice: the first launch of a kernel goes through numba-cuda's dispatcher,
        # later ones through CudaEnv's fast path; both are checked
        for mode in ("numba", "numba_again", "torch"):
            os.environ["NEUROSPARSE_KERNELS"] = mode.split("_")[0]
            xi = x.clone().requires_grad_()
            z, st = neuron(xi)
            (z * torch.linspace(-1, 1, z.numel(), device=dev).view_as(z)).sum().backward()
            res[mode] = (z.detach(), xi.grad.detach(), st.v.detach())
        os.environ["NEUROSPARSE_KERNELS"] = "auto"
        out[name] = {
            "spikes_equal": bool(torch.equal(res["numba"][0], res["torch"][0])),
            "fast_launch_bitwise_equal": all(
                torch.equal(a, b) for a, b in zip(res["numba"], res["numba_again"])
            ),
            "max_grad_diff": float((res["numba"][1] - res["torch"][1]).abs().max()),
            "max_v_diff": float((res["numba"][2] - res["torch"][2]).abs().max()),
            "spike_rate": float(res["torch"][0].mean()),
        }
    # half-precision input (what autocast hands a neuron): the same spikes as fp32 input
    lif = ns.LIF(0.9).to(dev)
    xb = (torch.rand(64, 8, 1000, device=dev) * 1.0).bfloat16().requires_grad_()
    zb, _ = lif(xb)
    zb.float().sum().backward()
    os.environ["NEUROSPARSE_KERNELS"] = "torch"
    xr = xb.detach().float().requires_grad_()
    zr, _ = lif(xr)
    zr.sum().backward()
    os.environ["NEUROSPARSE_KERNELS"] = "auto"
    out["LIF_bf16_input"] = {
        "dtype_out": str(zb.dtype),
        "spikes_equal": bool(torch.equal(zb.float(), zr)),
        "max_grad_diff": float((xb.grad.float() - xr.grad).abs().max()),
    }
    return out


def open_neuromorphic(dev, sizes, T, B, reps) -> list[dict]:
    import neurosparse as ns

    rows = []
    for N in sizes:
        torch.manual_seed(0)
        x = torch.randn(T, B, N, device=dev)
        lin = nn.Linear(N, N, device=dev)
        w_out = torch.randn(T, B, N, device=dev)

        def step(neuron_fn, mode):
            def run():
                lin.zero_grad(set_to_none=True)
                if mode == "bf16":
                    with torch.autocast("cuda", dtype=torch.bfloat16):
                        cur = lin(x)
                    cur = cur.float()
                else:
                    cur = lin(x)
                (neuron_fn(cur) * w_out).sum().backward()

            return run

        impls = {"GEMM floor (Linear alone)": lambda c: c}
        ns_lif = ns.LIF(beta=0.9).to(dev)
        impls["neurosparse LIF (fused CUDA)"] = lambda c: ns_lif(c)[0]
        try:
            import snntorch as snn

            leaky = snn.Leaky(beta=0.9).to(dev)
            impls["snnTorch Leaky"] = partial(snntorch_loop, leaky)
        except Exception:
            pass
        try:
            import norse.torch as norse

            nlif = norse.LIF().to(dev)
            impls["Norse LIF"] = lambda c: nlif(c)[0]
        except Exception:
            pass
        sj = spikingjelly_lif(dev)
        if sj is not None:
            impls["SpikingJelly LIFNode (m, auto)"] = sj
        for mode in ("fp32", "tf32", "bf16"):
            set_precision(mode)
            fast = {n: step(f, mode) for n, f in impls.items()
                    if not n.startswith(("snnTorch", "Norse"))}  # fmt: skip
            # the fast ones round-robin, one repetition each in turn, so clock and
            # thermal drift over the run falls on all of them alike
            for name, r in interleaved_times(fast, reps).items():
                rows.append({"N": N, "T": T, "B": B, "precision": mode, "impl": name, **r})
                print(rows[-1], flush=True)
            for name, fn in impls.items():
                if name in fast or mode != "fp32":
                    continue  # snnTorch / Norse: their step loop dominates at any precision
                try:
                    r = cuda_time(step(fn, mode), 3, 1)
                except Exception as e:  # report, do not hide
                    r = {"error": f"{type(e).__name__}: {e}"[:300]}
                rows.append({"N": N, "T": T, "B": B, "precision": mode, "impl": name, **r})
                print(rows[-1], flush=True)
        set_precision("fp32")
        torch.cuda.empty_cache()
    return rows


class ConvSNN(nn.Module):
    """Conv stack applied to all T*B frames at once; the neurons run over time."""

    def __init__(self, make_neuron):
        super().__init__()
        self.c1 = nn.Conv2d(2, 32, 5, stride=2, padding=2)
        self.c2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.fc = nn.Linear(64 * 8 * 8, 11)
        self.n1, self.n2, self.n3 = make_neuron(), make_neuron(), make_neuron()

    def forward(self, x):
        T, B = x.shape[:2]
        y = self.c1(x.flatten(0, 1))
        y = self.n1(y.unflatten(0, (T, B)))
        y = self.c2(y.flatten(0, 1))
        y = self.n2(y.unflatten(0, (T, B)))
        y = nn.functional.adaptive_avg_pool2d(y.flatten(0, 1), 8).flatten(1)
        return self.n3(self.fc(y).unflatten(0, (T, B)))


def conv_snn(dev, reps, T=100, B=32) -> list[dict]:
    import neurosparse as ns

    torch.manual_seed(0)
    x = (torch.rand(T, B, 2, 128, 128, device=dev) < 0.02).float()
    y = torch.randint(0, 11, (B,), device=dev)
    rows = []

    class NsNeuron(nn.Module):
        def __init__(self):
            super().__init__()
            self.lif = ns.LIF(0.9)

        def forward(self, c):
            return self.lif(c)[0]

    makers = {"neurosparse LIF (fused CUDA)": NsNeuron}
    try:
        import snntorch as snn

        class SnnNeuron(nn.Module):
            def __init__(self):
                super().__init__()
                self.leaky = snn.Leaky(beta=0.9)

            def forward(self, c):
                return snntorch_loop(self.leaky, c)

        makers["snnTorch Leaky"] = SnnNeuron
    except Exception:
        pass
    try:
        from spikingjelly.activation_based import neuron as sjn

        class SjNeuron(nn.Module):
            def __init__(self):
                super().__init__()
                self.node = sjn.LIFNode(tau=2.0, step_mode="m", detach_reset=True)

            def forward(self, c):
                self.node.reset()
                return self.node(c)

        makers["SpikingJelly LIFNode (m, auto)"] = SjNeuron
    except Exception:
        pass
    def make_step(make, mode):
        model = ConvSNN(make).to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=mode == "bf16"):
                out = model(x)
                loss = nn.functional.cross_entropy(out.float().sum(0), y)
            loss.backward()
            opt.step()

        return step

    for mode in ("fp32", "tf32", "bf16"):
        set_precision(mode)
        steps, peaks = {}, {}
        for name, make in makers.items():
            if mode == "bf16" and name.startswith("snnTorch"):
                continue
            steps[name] = make_step(make, mode)
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            try:  # peak of one step, this model alone beside the input
                steps[name]()
                torch.cuda.synchronize()
                peaks[name] = (torch.cuda.max_memory_allocated() - base) / 2**30
            except Exception as e:
                peaks[name] = f"{type(e).__name__}: {e}"[:300]
        fast = {n: f for n, f in steps.items() if not n.startswith("snnTorch")}
        timed = interleaved_times(fast, reps, 2)
        for name in steps:
            if name not in timed:
                try:
                    timed[name] = cuda_time(steps[name], reps, 2)
                except Exception as e:
                    timed[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
            r = dict(timed[name])
            if isinstance(peaks[name], float):
                r["peak_mem_GiB"] = peaks[name]
            else:
                r.setdefault("error", peaks[name])
            rows.append({"impl": name, "precision": mode, "T": T, "B": B, **r})
            print(rows[-1], flush=True)
        del steps, fast
        torch.cuda.empty_cache()
    set_precision("fp32")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=None,
                    help="JSON path (default benchmarks/results/gpu.json; quick/ for --quick)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--sections", default="check,open_neuromorphic,conv_snn")
    ap.add_argument("--sizes", default="4096,8192,16384", help="N for open_neuromorphic")
    args = ap.parse_args()
    args.out = args.out or str(results_path("gpu.json", args.quick))
    dev = torch.device("cuda")
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    try:
        import numba

        result["numba"] = numba.__version__
    except Exception:
        pass
    sizes = [1024] if args.quick else [int(n) for n in args.sizes.split(",")]
    T, B = (50, 4) if args.quick else (500, 16)
    sections = args.sections.split(",")
    for sec in sections:
        try:
            if sec == "check":
                result[sec] = check(dev)
            elif sec == "open_neuromorphic":
                result[sec] = open_neuromorphic(dev, sizes, T, B, args.reps)
            elif sec == "conv_snn":
                result[sec] = conv_snn(dev, 3 if args.quick else args.reps,
                                       *((10, 4) if args.quick else (100, 32)))
            print(sec, json.dumps(result[sec], indent=1)[:3000], flush=True)
        except Exception:
            result[sec] = {"error": traceback.format_exc()[-2000:]}
            print(result[sec]["error"], flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
