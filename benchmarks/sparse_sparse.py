"""Sparse weights × sparse inputs: SparseEventLinear against dense and torch.sparse (issue 13).

The issue's target is Structured RigL's CPU result (Lasby et al. 2024): online inference
(batch 1) of a 90 %-sparse constant-fan-in layer 3.6× faster than dense and 2× faster
than unstructured sparse. Here: Linear 4096 -> 4096 with constant fan-in ELL weights at
density 5 / 10 / 20 %, batch 1 (and 16), inputs dense (Gaussian) or binary spikes at
1 / 5 / 10 %, inference (``torch.no_grad``). Contenders:

- ``ours``: the functional op with the layer's cache (``sparse_event_linear``: input
  checks, path choice, kernel); ``ours_layer``: the module call, which adds the op
  counters; ``ours_before``: the kernels this issue started from (int32 ELL row walk,
  event walk reading ``values[o, t_slot]``), kernel call only;
- ``dense``: ``F.linear`` with the masked dense fp32 weight (MKL/oneDNN, all threads);
- ``compiled``: ``torch.compile`` of the same ``F.linear``;
- ``dense_1t`` / ``csr_1t``: the same two with torch on one thread (our kernel runs on
  one thread at batch 1 unless Numba's workers spin, see ``parallel_work``);
- ``csr``: ``torch.sparse`` CSR of the masked weight (``addmv``/``addmm``, MKL sparse);
  the conversion ``to_sparse_csr()`` is timed once and reported apart.

Also: the sparse-sparse factor (dense / ours on spike inputs) next to its ideal
``1/(density · rate)``, and the physical floor = bytes a call must read / measured
memory bandwidth (a large copy: DRAM; an 8 MiB copy: cache -- the sparse layers'
weights, 10-13 MB at 10 %, fit the 32 MiB L3 of the dev VM, the dense 64 MiB do not),
plus a sweep of the two-thread row walk against one thread (its crossover).

CPU timings: per repetition each contender runs one "cold" call (right after the
others, which evict its weights from the caches) and then ``inner`` back-to-back "warm"
calls (repeated inference of the one layer, Structured RigL's setting); repetitions
are interleaved (round robin, so load changes on the shared machine hit every
contender alike). Tables give warm medians and cold medians; every sample is in the
JSON. Set
``OMP_WAIT_POLICY=PASSIVE`` before Python starts on few-core machines (torch's OpenMP
workers otherwise spin after each call and steal the core from Numba).

GPU (``--gpu``, CUDA events, inner loops of 20 calls): the same layer on CUDA at batch
1 / 16 / 256 -- ours (the numba-cuda gather, layer call and bare op), dense fp32 (TF32
off), TF32, bf16, cuSPARSE CSR (conversion apart), with a correctness check of forward
and gradients against the dense layer first.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/sparse_sparse.py [--quick]
    python benchmarks/sparse_sparse.py --gpu [--quick] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

warnings.filterwarnings("ignore")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # only effective before torch starts
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the device machine runs from a bare checkout
    sys.path.insert(0, str(ROOT))

from _timing import cuda_ms, hardware, results_path, round_robin, wall_ms  # noqa: E402  (benchmarks/, beside this)

from neurosparse.layers.sparse_event_linear import (  # noqa: E402
    GATHER_RATE,
    SparseEventLinear,
    ell_index,
    sparse_event_linear,
)

DENSITIES = [0.05, 0.1, 0.2]
INPUTS = ["dense", 0.01, 0.05, 0.1]  # "dense" = Gaussian input, else spike rate


# -- timing ---------------------------------------------------------------------------------
def cold_warm(fns: dict, reps: int, inner: int = 5) -> tuple[dict, dict]:
    """Per contender, ms of the first call after the other contenders ran ("cold": its
    weights partly evicted from the caches by theirs -- the dense weight alone is twice
    the L3) and the mean of the next ``inner`` back-to-back calls ("warm": repeated
    inference of one layer, how Structured RigL timed it). Interleaved ``reps`` times,
    the order rotated each time."""
    cold: dict[str, list[float]] = {k: [] for k in fns}
    warm: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
        fn()
    names = list(fns)
    for rep in range(reps):
        # rotate who runs first: the first call after torch's kernels ran slower here
        for k in names[rep % len(names):] + names[:rep % len(names)]:
            fn = fns[k]
            cold[k].append(wall_ms(fn))
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            warm[k].append((time.perf_counter() - t0) * 1e3 / inner)
    return cold, warm




def make_input(kind, rows: int, n: int, device="cpu", seed=0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "dense":
        x = torch.randn(rows, n, generator=g)
    else:
        x = (torch.rand(rows, n, generator=g) < kind).float()
    return x.to(device)


def copy_bandwidth(nbytes: int, reps: int = 7) -> float:
    """GB/s of a ``nbytes`` tensor copy (read + write counted), best of ``reps``."""
    a = torch.ones(nbytes // 4)
    b = torch.empty_like(a)
    b.copy_(a)
    best = min(wall_ms(lambda: b.copy_(a)) for _ in range(reps))
    return 2 * nbytes / best / 1e6


# -- CPU ------------------------------------------------------------------------------------
def one_thread(fn):
    """``fn`` with torch on one thread (equal footing with a one-thread kernel)."""

    def run():
        n = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn()
        finally:
            torch.set_num_threads(n)

    return run


def _before(layer: SparseEventLinear, x: torch.Tensor, index: tuple):
    """The kernels as they were before issue 13 (int32 row walk, indirect event walk)."""
    from neurosparse.kernels import sparse_event_linear as k

    xn = x.numpy()
    idx = layer.indices.numpy()
    vn = layer.values.detach().numpy()
    b = layer.bias.detach().numpy()
    gather = int(np.count_nonzero(xn)) > GATHER_RATE * xn.size

    def run():
        y = np.empty((xn.shape[0], vn.shape[0]), np.float32)
        if gather:
            k.forward_gather(xn, idx, vn, b, y)
        else:
            k.forward(xn, *index, vn, b, y)
        return y

    return run


def bytes_read(kind, rows, n_in, n_out, k, fan_out_mean) -> dict:
    """Bytes one call must read at least: weights (+ indices) of every contender."""
    nnz = n_out * k
    if kind == "dense":
        ours = nnz * (4 + 2)  # fp32 value + uint16 index per synapse (read once per block)
    else:  # events × fan-out × (fp32 weight + uint16 output) + the input row
        ours = int(rows * n_in * kind * fan_out_mean * (4 + 2)) + rows * n_in * 4
    return {"dense": n_in * n_out * 4, "ours": ours,
            "csr": nnz * (4 + 8) + (n_out + 1) * 8}  # fmt: skip


def bench_cpu(n: int, batches, densities, inputs, reps: int, bw: dict, compile_ok: bool):
    rows_out = []
    for density in densities:
        # inference: eval mode, where the layer keeps its per-input weight copy
        layer = SparseEventLinear(n, n, density=density, seed=0).eval()
        w = layer.dense_weight().detach()
        b = layer.bias.detach()
        t0 = time.perf_counter()
        w_csr = w.to_sparse_csr()
        csr_conv_ms = (time.perf_counter() - t0) * 1e3
        compiled = torch.compile(lambda x, w=w, b=b: F.linear(x, w, b)) if compile_ok else None
        cache = layer._index_cache
        cache["values_frozen"] = True  # what the eval-mode layer tells the functional path
        index = ell_index(layer.indices, n, cache)
        fan_out = layer.k * n / n  # mean fan-out = out · k / in
        for m in batches:
            for kind in inputs:
                x = make_input(kind, m, n, seed=m)
                before = _before(layer, x, index)
                fns = {
                    "ours": lambda: sparse_event_linear(x, layer.indices, layer.values, b, n,
                                                        cache),  # fmt: skip
                    "ours_layer": lambda: layer(x),
                    "ours_before": before,
                    "dense": lambda: F.linear(x, w, b),
                    "csr": (lambda: torch.addmv(b, w_csr, x[0])) if m == 1 else
                           (lambda: torch.addmm(b[:, None], w_csr, x.t()).t()),
                }
                fns["dense_1t"] = one_thread(fns["dense"])
                fns["csr_1t"] = one_thread(fns["csr"])
                if compiled is not None:
                    fns["compiled"] = lambda: compiled(x)
                with torch.no_grad():
                    want = F.linear(x, w, b)
                    err = float((sparse_event_linear(x, layer.indices, layer.values, b, n,
                                                     cache) - want).abs().max())  # fmt: skip
                    cold, t = cold_warm(fns, reps)
                r = {"density": density, "batch": m, "input": kind, "k": layer.k,
                     "max_abs_err": err, "csr_conversion_ms": csr_conv_ms,
                     **{f"{c}_ms": statistics.median(v) for c, v in t.items()},
                     **{f"{c}_min_ms": min(v) for c, v in t.items()},
                     **{f"{c}_cold_ms": statistics.median(v) for c, v in cold.items()},
                     "samples_ms": t, "cold_samples_ms": cold}
                r["dense_over_ours"] = r["dense_ms"] / r["ours_ms"]
                r["csr_over_ours"] = r["csr_ms"] / r["ours_ms"]
                if kind != "dense":
                    r["ideal_factor"] = 1 / (density * kind)
                br = bytes_read(kind, m, n, n, layer.k, fan_out)
                r["bytes_read"] = br
                r["floor_ms"] = {f"{c}_{where}": br[c] / bw[where] / 1e6
                                 for c in br for where in bw}  # fmt: skip
                rows_out.append(r)
                print(f"  d={density:.2f} B={m:2d} in={kind!s:5}: ours {r['ours_ms']:.3f} ms "
                      f"(before {r['ours_before_ms']:.3f}), dense {r['dense_ms']:.3f}, csr "
                      f"{r['csr_ms']:.3f}, compiled {r.get('compiled_ms', float('nan')):.3f}"
                      f"  -> {r['dense_over_ours']:.1f}x dense, {r['csr_over_ours']:.1f}x csr",
                      flush=True)  # fmt: skip
    return rows_out


def bench_parallel(reps: int, quick: bool) -> list[dict]:
    """Row walk (dense inputs): one thread vs ``forward_rows_parallel`` on all threads."""
    import numba

    from neurosparse.kernels import sparse_event_linear as k

    nt = numba.get_num_threads()
    out = []
    shapes = [(512, 1), (4096, 1), (4096, 16)] if quick else \
        [(512, 1), (1024, 1), (2048, 1), (4096, 1), (8192, 1), (1024, 16), (4096, 16)]
    for n, m in shapes:
        layer = SparseEventLinear(n, n, density=0.1, seed=0)
        idx = layer.indices.numpy().astype(np.uint16)
        vn = layer.values.detach().numpy()
        b = layer.bias.detach().numpy()
        x = make_input("dense", m, n).numpy()
        y = np.empty((m, n), np.float32)
        t = round_robin({"one": lambda: k.forward_rows(x, idx, vn, b, y),
                         "all": lambda: k.forward_rows_parallel(x, idx, vn, b, y, nt)},
                        reps * 3, warmup=2)  # fmt: skip
        r = {"n": n, "batch": m, "work": m * vn.size, "threads": nt,
             "one_ms": statistics.median(t["one"]), "all_ms": statistics.median(t["all"]),
             "one_min_ms": min(t["one"]), "all_min_ms": min(t["all"])}
        out.append(r)
        print(f"  parallel n={n} B={m}: 1 thread {r['one_ms']:.3f} ms, {nt} threads "
              f"{r['all_ms']:.3f} ms (min {r['one_min_ms']:.3f} / {r['all_min_ms']:.3f})")
    return out


# -- GPU ------------------------------------------------------------------------------------
def gpu_correctness() -> dict:
    """Forward and gradients of the CUDA op against the dense layer (fp32, TF32 off)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    res = {}
    for n_in, n_out, density, rows, rate in [(300, 77, 0.1, 5, 0.2), (4096, 4096, 0.1, 3, 1.0)]:
        layer = SparseEventLinear(n_in, n_out, density=density, seed=1).cuda()
        lin = layer.to_dense().cuda()
        x = make_input(rate if rate < 1 else "dense", rows, n_in, "cuda", seed=2)
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = layer(xa), lin(xb)
        g = torch.randn_like(yb)
        ya.backward(g)
        yb.backward(g)
        gv = lin.weight.grad.gather(1, layer.indices.long())
        res[f"{n_in}x{n_out}"] = {
            "forward": float((ya - yb).abs().max()),
            "grad_input": float((xa.grad - xb.grad).abs().max()),
            "grad_values": float((layer.values.grad - gv).abs().max()),
            "grad_bias": float((layer.bias.grad - lin.bias.grad).abs().max()),
        }
        print(f"  GPU correctness {n_in}x{n_out}: {res[f'{n_in}x{n_out}']}", flush=True)
    return res


def bench_gpu(n: int, batches, densities, inputs, reps: int) -> list[dict]:
    from neurosparse.ops import sparse_event_linear as fast

    out = []
    for density in densities:
        layer = SparseEventLinear(n, n, density=density, seed=0).cuda()
        w = layer.dense_weight().detach()
        b = layer.bias.detach()
        w_bf, b_bf = w.bfloat16(), b.bfloat16()
        torch.cuda.synchronize()
        w_csr = w.to_sparse_csr()
        csr_conv = cuda_ms(lambda: w.to_sparse_csr(), 3)
        cache = layer._index_cache
        cache["values_frozen"] = True  # what the eval-mode layer tells the functional path
        index = ell_index(layer.indices, n, cache)
        for m in batches:
            for kind in inputs:
                x = make_input(kind, m, n, "cuda", seed=m)
                x_bf = x.bfloat16()

                def tf32(x=x):
                    torch.backends.cuda.matmul.allow_tf32 = True
                    y = F.linear(x, w, b)
                    torch.backends.cuda.matmul.allow_tf32 = False
                    return y

                fns = {
                    "ours_op": lambda: fast.sparse_event_linear_cuda(
                        x, layer.indices, layer.values, b, index, cache),
                    "ours_layer": lambda: layer(x),
                    "dense_fp32": lambda: F.linear(x, w, b),
                    "dense_tf32": tf32,
                    "dense_bf16": lambda: F.linear(x_bf, w_bf, b_bf),
                    "csr": lambda: torch.addmm(b[:, None], w_csr, x.t()),
                }
                torch.backends.cuda.matmul.allow_tf32 = False
                with torch.no_grad():
                    err = float((fns["ours_op"]() - F.linear(x, w, b)).abs().max())
                    t = round_robin(fns, reps, warmup=2, timer=cuda_ms)
                r = {"density": density, "batch": m, "input": kind, "max_abs_err": err,
                     "csr_conversion_ms": csr_conv,
                     **{f"{c}_us": 1e3 * statistics.median(v) for c, v in t.items()},
                     "samples_ms": t}
                out.append(r)
                print(f"  GPU d={density:.2f} B={m:3d} in={kind!s:5}: " + ", ".join(
                    f"{c} {r[f'{c}_us']:.1f} us" for c in fns), flush=True)  # fmt: skip
    return out


# -- report ---------------------------------------------------------------------------------
def _fmt_in(kind) -> str:
    return "dense" if kind == "dense" else f"spikes {kind:.0%}"


WARM = ("ours", "ours_layer", "ours_before", "dense", "compiled", "csr", "dense_1t", "csr_1t")


def _spread(r: dict, c: str) -> str:
    """``median (min-max)`` of contender ``c``'s warm samples, bold if fastest in the row."""
    v = r["samples_ms"][c]
    fastest = min((k for k in WARM if k in r["samples_ms"]),
                  key=lambda k: statistics.median(r["samples_ms"][k]))  # fmt: skip
    med = f"{statistics.median(v):.3f}"
    return f"{'**' + med + '**' if c == fastest else med} ({min(v):.3f}-{max(v):.3f})"


def _ratio(r: dict, num: str, den: str = "ours") -> str:
    """Ratio of medians, and the min-max of the per-repetition ratios (the repetitions
    are interleaved, so each ratio compares calls made under the same load)."""
    a, b = r["samples_ms"][num], r["samples_ms"][den]
    per = [x / y for x, y in zip(a, b, strict=True)]
    return f"{statistics.median(a) / statistics.median(b):.1f}x ({min(per):.1f}-{max(per):.1f})"


def markdown(res: dict) -> str:
    out = [f"Hardware: {res['hardware']}, threads: {res.get('threads')}, Numba threading "
           f"layer: {res.get('numba_threading_layer')}", ""]
    if res.get("cpu"):
        n = res["config"]["n"]
        bw = res["bandwidth_gbs"]
        for m in res["config"]["batches"]:
            out += [f"### CPU, Linear {n}->{n}, batch {m}, inference (ms, warm median (min-max "
                    f"over {res['config']['reps']} repetitions); bold: fastest in the row; "
                    f"DRAM copy {bw['dram']:.0f} GB/s, cache copy {bw['cache']:.0f} GB/s)", "",
                    "| density | input | ours | ours (layer) | before | dense F.linear | "
                    "compiled | torch CSR | dense/ours | CSR/ours | 1 thread: dense / CSR "
                    "| CSR 1t/ours | sparse-sparse factor (ideal) | floor ours DRAM / cache | "
                    "cold: ours / dense / CSR |",
                    "|---|---" + "|---:" * 13 + "|"]
            for r in res["cpu"]:
                if r["batch"] != m:
                    continue
                ss = (f"{r['dense_over_ours']:.1f}x ({r['ideal_factor']:.0f}x)"
                      if "ideal_factor" in r else "-")  # fmt: skip
                comp = _spread(r, "compiled") if "compiled_ms" in r else "-"
                out.append(
                    f"| {r['density']:.0%} | {_fmt_in(r['input'])} | {_spread(r, 'ours')} | "
                    f"{_spread(r, 'ours_layer')} | {_spread(r, 'ours_before')} | "
                    f"{_spread(r, 'dense')} | {comp} | {_spread(r, 'csr')} | "
                    f"{_ratio(r, 'dense')} | {_ratio(r, 'csr')} | "
                    f"{_spread(r, 'dense_1t')} / {_spread(r, 'csr_1t')} | "
                    f"{_ratio(r, 'csr_1t')} | {ss} | "
                    f"{r['floor_ms']['ours_dram']:.3f} / {r['floor_ms']['ours_cache']:.3f} | "
                    f"{r['ours_cold_ms']:.3f} / {r['dense_cold_ms']:.3f} / "
                    f"{r['csr_cold_ms']:.3f} |")
            out.append("")
        conv = {f"{r['density']:.0%}": round(r["csr_conversion_ms"], 1) for r in res["cpu"]}
        out.append(f"CSR conversion (`to_sparse_csr()`, once, not in the rows): {conv} ms. "
                   f"Dense floor (64 MiB from DRAM): "
                   f"{res['cpu'][0]['floor_ms']['dense_dram']:.2f} ms.")  # fmt: skip
    if res.get("parallel"):
        out += ["", "### CPU row walk, dense input, 10 % density: one thread vs all (ms)", "",
                "| n | batch | row-synapses | 1 thread | all threads | min 1 / all |",
                "|---|---|---:|---:|---:|---:|"]  # fmt: skip
        for r in res["parallel"]:
            out.append(f"| {r['n']} | {r['batch']} | {r['work']:,} | {r['one_ms']:.3f} | "
                       f"{r['all_ms']:.3f} | {r['one_min_ms']:.3f} / {r['all_min_ms']:.3f} |")
    if res.get("gpu"):
        out += ["", "### GPU, Linear 4096->4096 (µs per call, CUDA events, median)", "",
                "| density | batch | input | ours (op) | ours (layer) | dense fp32 | TF32 | "
                "bf16 | cuSPARSE CSR | fp32/ours | CSR/ours |",
                "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
        for r in res["gpu"]:
            out.append(
                f"| {r['density']:.0%} | {r['batch']} | {_fmt_in(r['input'])} | "
                f"{r['ours_op_us']:.1f} | {r['ours_layer_us']:.1f} | {r['dense_fp32_us']:.1f} | "
                f"{r['dense_tf32_us']:.1f} | {r['dense_bf16_us']:.1f} | {r['csr_us']:.1f} | "
                f"{r['dense_fp32_us'] / r['ours_op_us']:.1f}x | "
                f"{r['csr_us'] / r['ours_op_us']:.1f}x |")
    return "\n".join(out) + "\n"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    ap.add_argument("--gpu", action="store_true", help="add the CUDA section")
    ap.add_argument("--no-cpu", action="store_true", help="with --gpu: skip the CPU section")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=None)
    ap.add_argument("--claim", action="store_true",
                    help="only Structured RigL's setting (4096, 10 %% density, batch 1, "
                         "dense and 5 %% spike inputs), no thread sweep: affords many --reps")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON path (default benchmarks/results/sparse_sparse.json; "
                         "quick/ for --quick)")
    ap.add_argument("--md", type=Path, default=None,
                    help="Markdown table (default: --out with .md)")
    args = ap.parse_args(argv)
    args.out = args.out or results_path("sparse_sparse.json", args.quick)
    import numba

    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    res: dict = {"hardware": hardware(), "quick": args.quick, "threads": args.threads,
                 "command": " ".join(sys.argv)}  # fmt: skip
    q = args.quick
    n = 512 if q else 4096
    batches = [1] if args.claim else [1, 16]
    densities = [0.1] if q or args.claim else DENSITIES
    inputs = ["dense", 0.05] if q or args.claim else INPUTS
    reps = args.reps or (3 if q else 15)
    res["config"] = {"n": n, "batches": batches, "densities": densities,
                     "inputs": inputs, "reps": reps}  # fmt: skip
    if not args.no_cpu:
        res["bandwidth_gbs"] = {"dram": copy_bandwidth(256 << 20), "cache": copy_bandwidth(8 << 20)}
        print(f"copy bandwidth GB/s: {res['bandwidth_gbs']}", flush=True)
        try:
            t0 = time.perf_counter()
            with torch.no_grad():
                torch.compile(F.linear)(torch.randn(1, 8), torch.randn(8, 8), None)
            res["compile_s"] = time.perf_counter() - t0
            compile_ok = res["compile_s"] < 120
        except Exception as e:  # no C++ compiler, unsupported platform, ...
            res["compile_error"] = repr(e)[:300]
            compile_ok = False
        res["cpu"] = bench_cpu(n, batches, densities, inputs, reps, res["bandwidth_gbs"],
                               compile_ok)  # fmt: skip
        if not args.claim:
            res["parallel"] = bench_parallel(reps, q)
        res["numba_threading_layer"] = numba.threading_layer()
    if args.gpu:
        from neurosparse.ops import registry

        if not torch.cuda.is_available():
            raise SystemExit("--gpu needs a CUDA device")
        if not registry.cuda_kernels_available():  # else "ours" would be the torch reference
            raise SystemExit("--gpu: numba.cuda cannot launch kernels here (see shared/GPU.md: "
                             "numba-cuda needs numpy < 2.5)")  # fmt: skip
        res["gpu_correctness"] = gpu_correctness()
        res["gpu"] = bench_gpu(n, [1, 16, 256], densities, inputs, max(5, reps // 2))
    try:
        res["hardware"]["loadavg_end"] = os.getloadavg()
    except OSError:
        pass
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1))
    md = markdown(res)
    print(md)
    (args.md or args.out.with_suffix(".md")).write_text(md)
    print(f"wrote {args.out}")
    return res


if __name__ == "__main__":
    main()
