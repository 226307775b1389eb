"""Delta layers against the dense layers and torch.sparse, over delta sparsity.

Issue 4's setup. Inputs are built so that a chosen fraction of units changes (by more
than the threshold) at every step and the others hold still, so the delta sparsity is
exactly the target. All timings are inference (``torch.no_grad()``), float32, median of
interleaved repeats (round robin, so load changes hit every variant alike).

1. **DeltaLinear(2048 → 2048)**, T = 200, B = 16 (``--batch``): the whole delta layer
   (encode + event matmul + running sum) against ``nn.Linear`` on the whole sequence (one
   GEMM, the strongest dense baseline), and the ``W·Δ`` product alone: our event kernel
   (index build included) against ``Δ.to_sparse_csr() @ Wᵀ`` (conversion included).
2. **DeltaConv2d stack** 2 → 32 → 32 channels, 3×3, padding 1, 64×64 frames, T = 200,
   B = 1, against the same ``nn.Conv2d`` stack on all frames at once. The second layer's
   delta sparsity follows from the first (reported); the ideal reduction is the exact
   ``dense_macs / (macs + synops)`` of the two layers' counters.
3. **DeltaGRU(512, 512)**, T = 200, B = 1 (the streaming case of DeltaRNN), against
   ``nn.GRU`` (MKL / cuDNN). Hidden threshold 0.05; the sweep sets the input sparsity, the
   hidden sparsity follows (both reported, ideal reduction from the counters).
4. **Op reduction on a small GRU task** (cf. Neil et al. 2017): a DeltaGRU classifier of
   moving-blob directions (16×16 frames flattened), trained at θ = 0, then refined at
   θ = 0.1 without and with the delta penalty; accuracy and ``dense_macs / (macs +
   synops)`` of the GRU.

"speed-up" = dense time / delta time; "ideal" = dense ops / delta ops; "% of ideal" =
speed-up / ideal. fp32 strict (TF32 off) unless a row says otherwise.

    python benchmarks/delta.py [--quick] [--device cpu|cuda] [--threads 2]
                               [--out benchmarks/results/delta.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import warnings
from pathlib import Path

import torch
from _timing import cuda_event_ms, results_path, round_robin, wall_ms  # benchmarks/, beside this
from torch import nn

warnings.filterwarnings("ignore")

SPARSITIES = (0.5, 0.8, 0.9, 0.95, 0.99)
THRESHOLD = 0.1


# -- timing ------------------------------------------------------------------------------
def timeit(fns: dict, reps: int, device: str, warmup: int = 2) -> dict[str, float]:
    """Median milliseconds of each function, interleaved (device time on CUDA)."""
    timer = cuda_event_ms if device == "cuda" else wall_ms
    return {k: statistics.median(v) for k, v in round_robin(fns, reps, warmup, timer).items()}


def stepped_input(shape, sparsity: float, device, seed: int = 0) -> torch.Tensor:
    """``[T, B, ...]``: a ``1 − sparsity`` share of units jumps by ±(θ + U(0.1, 1)) each
    step (from 0 at rest), the others hold: every step sends exactly that share."""
    g = torch.Generator().manual_seed(seed)
    change = torch.rand(shape, generator=g) < (1.0 - sparsity)
    jump = (THRESHOLD + 0.1 + 0.9 * torch.rand(shape, generator=g)) * torch.sign(
        torch.rand(shape, generator=g) - 0.5
    )
    return (jump * change).cumsum(0).to(device)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# -- 1. DeltaLinear ---------------------------------------------------------------------
def bench_linear(args, device) -> list[dict]:
    from neurosparse.layers.delta_linear import DeltaLinear
    from neurosparse.ops import event_linear as el

    n, T, B = (512, 20, 4) if args.quick else (2048, 200, args.batch)
    torch.manual_seed(0)
    dense = nn.Linear(n, n).to(device)
    delta = DeltaLinear.from_dense(dense, THRESHOLD, mode="event")
    rows = []
    for s in SPARSITIES:
        x = stepped_input((T, B, n), s, device)
        with torch.no_grad():
            z = delta(x)
            d2 = delta.delta_streams()["input"].delta.reshape(T * B, n).contiguous()
            wt = dense.weight.t().contiguous()
            err = float((z - dense(quantised(x, THRESHOLD))).abs().max())

            def event_only():
                scan = el.scan_linear(d2)
                return el.event_linear_apply(d2, dense.weight, None, el.index_linear(d2, scan))

            fns = {
                "dense nn.Linear": lambda: dense(x),
                "DeltaLinear": lambda: delta(x),
                "W·Δ event kernel": event_only,
                "W·Δ torch CSR": lambda: d2.to_sparse_csr() @ wt,
                "W·Δ dense matmul": lambda: d2 @ wt,
            }
            t = timeit(fns, args.reps, device)
        sparsity = delta.delta_streams()["input"].sparsity
        rows.append({
            "layer": f"DeltaLinear({n}->{n}) T={T} B={B}", "target_sparsity": s,
            "delta_sparsity": round(sparsity, 4), "ideal": round(1 / (1 - sparsity), 2),
            "max_abs_err_vs_dense_on_xhat": err, "ms": t,
            "speedup_layer": t["dense nn.Linear"] / t["DeltaLinear"],
            "speedup_kernel_vs_dense_matmul": t["W·Δ dense matmul"] / t["W·Δ event kernel"],
            "speedup_kernel_vs_csr": t["W·Δ torch CSR"] / t["W·Δ event kernel"],
        })  # fmt: skip
    return rows


def quantised(x: torch.Tensor, thr: float) -> torch.Tensor:
    ref = torch.zeros_like(x[0])
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        ref = torch.where((x[t] - ref).abs() > thr, x[t], ref)
        out[t] = ref
    return out


# -- 2. DeltaConv2d stack -----------------------------------------------------------------
def bench_conv(args, device) -> list[dict]:
    from neurosparse.layers.delta_conv2d import DeltaConv2d

    T, B, S = (10, 1, 32) if args.quick else (200, 1, 64)
    torch.manual_seed(1)
    c1, c2 = nn.Conv2d(2, 32, 3, padding=1).to(device), nn.Conv2d(32, 32, 3, padding=1).to(device)
    d1 = DeltaConv2d.from_dense(c1, THRESHOLD, mode="event")
    d2 = DeltaConv2d.from_dense(c2, THRESHOLD, mode="event")

    def dense(x):
        y = torch.relu(c1(x.flatten(0, 1)))
        return c2(y).view(T, B, 32, S, S)

    def delta(x):
        return d2(torch.relu(d1(x)))

    rows = []
    for s in SPARSITIES:
        x = stepped_input((T, B, 2, S, S), s, device, seed=2)
        with torch.no_grad():
            for m in (d1, d2):
                m.reset_counters()
            delta(x)
            c = [m.op_counts() for m in (d1, d2)]
            ops = sum(k["macs"] + k["synops"] for k in c)
            ideal = sum(k["dense_macs"] for k in c) / max(1, ops)
            sp = [m.delta_streams()["input"].sparsity for m in (d1, d2)]
            t = timeit({"dense nn.Conv2d stack": lambda: dense(x),
                        "DeltaConv2d stack": lambda: delta(x)}, args.reps, device)  # fmt: skip
        rows.append({
            "layer": f"DeltaConv2d 2->32->32 3x3 {S}x{S} T={T} B={B}", "target_sparsity": s,
            "delta_sparsity_layer1": round(sp[0], 4), "delta_sparsity_layer2": round(sp[1], 4),
            "ideal": round(ideal, 2), "ms": t,
            "speedup_layer": t["dense nn.Conv2d stack"] / t["DeltaConv2d stack"],
        })  # fmt: skip
    return rows


# -- 3. DeltaGRU -----------------------------------------------------------------------
def bench_gru(args, device) -> list[dict]:
    from neurosparse.layers.delta_gru import DeltaGRU

    n, T, B = (128, 20, 1) if args.quick else (512, 200, 1)
    torch.manual_seed(2)
    gru = nn.GRU(n, n).to(device)
    with torch.no_grad():
        gru.weight_hh_l0.mul_(0.5)  # calmer hidden dynamics (fewer hidden deltas)
    delta = DeltaGRU.from_dense(gru, THRESHOLD)
    with torch.no_grad():
        delta.hidden_threshold.fill_(0.05)
    rows = []
    for s in SPARSITIES:
        x = stepped_input((T, B, n), s, device, seed=3).clamp(-3, 3)
        with torch.no_grad():
            delta.reset_counters()
            delta(x)
            c = delta.op_counts()
            ideal = c["dense_macs"] / max(1, c["macs"] + c["synops"])
            st = delta.delta_streams()
            t = timeit({"dense nn.GRU": lambda: gru(x), "DeltaGRU": lambda: delta(x)},
                       args.reps, device)  # fmt: skip
        rows.append({
            "layer": f"DeltaGRU({n},{n}) T={T} B={B}", "target_sparsity": s,
            "input_sparsity": round(st["input"].sparsity, 4),
            "hidden_sparsity": round(st["hidden"].sparsity, 4), "ideal": round(ideal, 2),
            "ms": t, "speedup_layer": t["dense nn.GRU"] / t["DeltaGRU"],
        })  # fmt: skip
    return rows


# -- 4. op reduction after training ---------------------------------------------------------
def gru_task(args) -> list[dict]:
    import copy

    from neurosparse.layers.delta_gru import DeltaGRU
    from neurosparse.layers.delta_penalty import delta_penalty

    T, S = 12, 16

    def blobs(n, seed):
        g = torch.Generator().manual_seed(seed)
        y = torch.randint(0, 4, (n,), generator=g)
        p0 = torch.randint(4, S - 4, (n, 2), generator=g).float()
        step = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])[y] * 0.5
        yy, xx = torch.meshgrid(torch.arange(S).float(), torch.arange(S).float(), indexing="ij")
        f = torch.stack([torch.exp(-((xx - (p0[:, :1, None] + step[:, :1, None] * t)) ** 2
                                     + (yy - (p0[:, 1:, None] + step[:, 1:, None] * t)) ** 2)
                                   / 4.0) for t in range(T)])  # fmt: skip
        return f.flatten(2) + 0.02 * torch.randn(T, n, S * S, generator=g), y

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = DeltaGRU(S * S, 64, threshold=0.0)
            self.out = nn.Linear(64, 4)

        def forward(self, x):
            return self.out(self.gru(x)[0][-1])

    def fit(net, data, lam, steps, seed):
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(net.parameters(), 3e-3)
        for _ in range(steps):
            i = torch.randint(0, data[1].numel(), (32,), generator=g)
            loss = nn.functional.cross_entropy(net(data[0][:, i]), data[1][i])
            if lam:
                loss = loss + lam * delta_penalty(net)
            opt.zero_grad()
            loss.backward()
            opt.step()

    def measure(net, data, name):
        net.gru.reset_counters()
        with torch.no_grad():
            acc = (net(data[0]).argmax(1) == data[1]).float().mean().item()
        c = net.gru.op_counts()
        sp = {k: round(s.sparsity, 4) for k, s in net.gru.delta_streams().items()}
        return {"model": name, "accuracy": round(acc, 4), "gru_sparsity": sp,
                "op_reduction": round(c["dense_macs"] / max(1, c["macs"] + c["synops"]), 2)}

    steps = 40 if args.quick else 300
    train, test = blobs(512, 1), blobs(512, 2)
    torch.manual_seed(0)
    base = Net()
    fit(base, train, 0.0, steps, 0)
    rows = [measure(base, test, "trained at θ=0 (every change sent)")]
    for lam in (0.0, 2.0):
        net = copy.deepcopy(base)
        for th in (net.gru.threshold, net.gru.hidden_threshold):
            th.fill_(0.1)
        fit(net, train, lam, steps, 1)
        rows.append(measure(net, test, f"refined at θ=0.1, penalty λ={lam}"))
    return rows


# -- CUDA results against the CPU --------------------------------------------------------
def check_cuda() -> list[dict]:
    """Each delta layer on CUDA (Numba CUDA kernels) against the same layer on the CPU."""
    import copy

    from neurosparse.layers.delta_conv2d import DeltaConv2d
    from neurosparse.layers.delta_gru import DeltaGRU
    from neurosparse.layers.delta_linear import DeltaLinear
    from neurosparse.layers.delta_lstm import DeltaLSTM
    from neurosparse.ops import registry

    torch.manual_seed(5)
    cases = [
        ("DeltaLinear", DeltaLinear(300, 200, threshold=THRESHOLD, mode="event"), (50, 4, 300)),
        ("DeltaConv2d", DeltaConv2d(3, 8, 3, stride=2, padding=1, threshold=THRESHOLD,
                                    mode="event"), (20, 2, 3, 17, 16)),
        ("DeltaGRU", DeltaGRU(40, 300, threshold=THRESHOLD), (60, 3, 40)),
        ("DeltaLSTM", DeltaLSTM(40, 1024, threshold=THRESHOLD), (30, 2, 40)),
    ]  # fmt: skip
    rows = []
    for name, cpu_layer, shape in cases:
        x = stepped_input(shape, 0.8, "cpu", seed=7)
        gpu_layer = copy.deepcopy(cpu_layer).cuda()
        with torch.no_grad():
            a = cpu_layer(x)
            b = gpu_layer(x.cuda())
        a, b = (a[0], b[0]) if isinstance(a, tuple) else (a, b)
        nnz = [{k: s.nnz for k, s in m.delta_streams().items()} for m in (cpu_layer, gpu_layer)]
        rows.append({"layer": name, "max_abs_diff": float((a - b.cpu()).abs().max()),
                     "nnz_cpu": nnz[0], "nnz_cuda": nnz[1]})  # fmt: skip
    rows.append({"kernels": [r for r in registry.table() if r[0].startswith(("delta", "event"))]})
    return rows


# -- report ----------------------------------------------------------------------------
def fmt_table(rows: list[dict], cols: list[tuple[str, str]]) -> str:
    head = "| " + " | ".join(c[0] for c in cols) + " |"
    sep = "|" + "|".join("---:" if i else "---" for i in range(len(cols))) + "|"
    lines = [head, sep]
    for r in rows:
        cells = []
        for _, key in cols:
            v = r
            for part in key.split("/"):
                v = v[part]
            cells.append(f"{v:.3g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# (--parts name, result key, benchmark, table title, table columns (header, key path))
SECTIONS = [
    ("linear", "linear", bench_linear, "DeltaLinear", [
        ("layer", "layer"), ("delta sparsity", "delta_sparsity"), ("ideal", "ideal"),
        ("dense ms", "ms/dense nn.Linear"), ("delta ms", "ms/DeltaLinear"),
        ("layer speed-up", "speedup_layer"),
        ("W·Δ event ms", "ms/W·Δ event kernel"), ("W·Δ CSR ms", "ms/W·Δ torch CSR"),
        ("W·Δ dense ms", "ms/W·Δ dense matmul"),
        ("event vs CSR", "speedup_kernel_vs_csr"),
        ("max err", "max_abs_err_vs_dense_on_xhat")]),
    ("conv", "conv", bench_conv, "DeltaConv2d stack", [
        ("layer", "layer"), ("sparsity L1", "delta_sparsity_layer1"),
        ("sparsity L2", "delta_sparsity_layer2"), ("ideal", "ideal"),
        ("dense ms", "ms/dense nn.Conv2d stack"), ("delta ms", "ms/DeltaConv2d stack"),
        ("speed-up", "speedup_layer")]),
    ("gru", "gru", bench_gru, "DeltaGRU", [
        ("layer", "layer"), ("input sparsity", "input_sparsity"),
        ("hidden sparsity", "hidden_sparsity"), ("ideal", "ideal"),
        ("dense ms", "ms/dense nn.GRU"), ("delta ms", "ms/DeltaGRU"),
        ("speed-up", "speedup_layer")]),
    ("task", "gru_task", lambda args, device: gru_task(args),  # CPU only: it trains
     "Op reduction on a small GRU task", [
        ("model", "model"), ("accuracy", "accuracy"), ("GRU op reduction", "op_reduction")]),
]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--threads", type=int, default=2, help="CPU threads (torch and Numba)")
    ap.add_argument("--batch", type=int, default=16, help="batch of the DeltaLinear sweep")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--parts", default="linear,conv,gru,task")
    ap.add_argument("--check", action="store_true", help="CUDA layers against the CPU first")
    ap.add_argument("--out", default=None,
                    help="JSON path (default benchmarks/results/delta.json; quick/ for --quick)")
    args = ap.parse_args()
    args.out = args.out or str(results_path("delta.json", args.quick))
    if args.quick:
        args.reps = 2
    import numba

    torch.set_num_threads(args.threads)
    numba.set_num_threads(min(args.threads, numba.config.NUMBA_NUM_THREADS))
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    hw = {
        "machine": platform.machine(), "processor": platform.processor(),
        "cpu_threads": args.threads, "torch": torch.__version__, "device": args.device,
        "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "precision": "fp32 strict (TF32 off)",
    }  # fmt: skip
    print(json.dumps(hw))
    result: dict = {"hardware": hw, "quick": args.quick}
    if args.check and args.device == "cuda":
        result["check"] = check_cuda()
        print(json.dumps(result["check"], indent=1))
    parts = args.parts.split(",")
    for part, key, run, title, cols in SECTIONS:
        if part not in parts or (part == "task" and args.device != "cpu"):
            continue
        result[key] = run(args, args.device)
        print(f"\n## {title}\n")
        print(fmt_table(result[key], cols))
    if "gru_task" in result:
        print(json.dumps([r["gru_sparsity"] for r in result["gru_task"]]))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
