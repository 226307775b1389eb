"""Benchmark: sequence memory, spatial pooler, active dendrites, k-winners (CPU).

Rows (each timed in this run, side by side with its alternatives):

* ``tm_random``   SequenceMemory 2048 columns × 32 cells, 40 random active columns per
  step, learning on (the worst case: every step grows 40 segments, so synapses pile
  up); steps/s early and late in the run, and the pure-Python twin of the kernel on
  the early window (ratio on identical work).
* ``tm_sequences`` the same memory on a stream of 20 learned sequences (length 10, in
  random order, 5 % random steps): the usual HTM workload; steps/s early and late.
* ``hellosptp``   htm.core's HelloSPTP shape (issue #267): 10,000-bit input, 20 %
  active → SpatialPooler (2048 columns, 40 active, potential radius 16) →
  SequenceMemory (2048 × 10). Compared with the published htm.core figures
  (SP 163 µs/step, TM 197 µs/step; 2019, their hardware) — htm.core itself cannot be
  installed here (no wheel on PyPI), nor can nupic.torch.
* ``sp_2048``     SpatialPooler(2048 → 2048, 40 active, global pools) on scalar codes.
* ``dendrites``   best-matching segment forward + backward: our Numba kernel, the
  ``auto`` choice (kernel for sparse contexts, matmul for dense ones) and the
  stock-PyTorch formulation (one matmul over all segments, argmax, gather), on dense
  and one-hot contexts.
* ``kwinners``    KWinners (boosted, duty cycles) vs bare ``torch.topk`` + scatter.

Usage: ``python benchmarks/sdr.py [--quick] [--out PATH]``.
"""

from __future__ import annotations

import os

# Numba's OpenMP threading layer leaves its workers spinning after a parallel region,
# which slows the next torch ops ~15x on a 2-core box; passive waiting avoids that.
# Must be set before numba or torch load libgomp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np
import torch

from neurosparse.ops import registry
from neurosparse.ops.sdr_dendrites import (
    _SegmentActivation,
    segment_activation,
    segment_activation_reference,
)
from neurosparse.sdr import RDSE, KWinners, ScalarEncoder, SequenceMemory, SpatialPooler
from neurosparse.sdr._tm_reference import ReferenceTemporalMemory

HTM_CORE_SP_US = 163.0  # htm.core issue #267, HelloSPTP, global inhibition
HTM_CORE_TM_US = 197.0  # same run: TM with 2048 columns × 10 cells


def _rate(fn, steps) -> tuple[float, float]:
    """(steps per wall second, steps per CPU second of this thread).

    The CPU-time rate is what a single-threaded loop achieves on an idle core; on a
    shared, busy machine it is the steadier of the two.
    """
    t0, c0 = time.perf_counter(), time.thread_time()
    for i in range(steps):
        fn(i)
    return steps / (time.perf_counter() - t0), steps / max(time.thread_time() - c0, 1e-9)


def _random_cols(rng, n):
    return [np.sort(rng.choice(2048, 40, replace=False)).astype(np.int64) for _ in range(n)]


def bench_tm_random(total: int, window: int, ref_steps: int) -> dict:
    rng = np.random.default_rng(0)
    cols = _random_cols(rng, total)
    tm = SequenceMemory(2048, 32, seed=0)
    tm.step(cols[0])  # compile / load the kernel
    tm = SequenceMemory(2048, 32, seed=0)
    early = _rate(lambda i: tm.step(cols[i]), window)
    for i in range(window, total - window):
        tm.step(cols[i])
    late = _rate(lambda i: tm.step(cols[total - window + i]), window)
    ref = ReferenceTemporalMemory(2048, 32, seed=0)
    ref_rate = _rate(lambda i: ref.step(cols[i]), ref_steps)
    tm2 = SequenceMemory(2048, 32, seed=0)
    same = _rate(lambda i: tm2.step(cols[i]), ref_steps)
    st = tm.stats()
    return {
        "steps": total, "window": window,
        "early_steps_per_s": early[0], "late_steps_per_s": late[0],
        "early_steps_per_cpu_s": early[1], "late_steps_per_cpu_s": late[1],
        "late_synapses": st["synapses"], "late_segments": st["segments"],
        "state_mb": st["state_bytes"] / 2**20,
        "python_ref_steps": ref_steps, "python_ref_steps_per_cpu_s": ref_rate[1],
        "kernel_same_steps_per_cpu_s": same[1], "speedup_vs_python_ref": same[1] / ref_rate[1],
    }  # fmt: skip


def bench_tm_random_windows(runs: int, total: int = 10_000, window: int = 1000) -> dict:
    """Learning on random input, ``runs`` fresh memories: steps per CPU second of the
    stepping thread in each ``window`` of steps and cumulatively, median (min-max) over
    the runs. The rate falls as synapses pile up (every step grows 40 segments of 20
    synapses on random cells, so each step's 1,280 bursting cells have ~800·s/65,536
    outgoing synapses each at step s): the row is a curve, not one number."""
    rng = np.random.default_rng(0)
    cols = _random_cols(rng, total)
    SequenceMemory(2048, 32, seed=0).step(cols[0])  # compile / load the kernel
    per_run = []
    for _ in range(runs):
        tm = SequenceMemory(2048, 32, seed=0)
        cpu = []
        for w0 in range(0, total, window):
            c0 = time.thread_time()
            for i in range(w0, w0 + window):
                tm.step(cols[i])
            cpu.append(time.thread_time() - c0)
        per_run.append(cpu)
    cpu = np.array(per_run)
    out = {"runs": runs, "total": total, "window": window, "cpu_s": per_run, "windows": [],
           "cumulative": []}  # fmt: skip
    for j in range(cpu.shape[1]):
        w = window / cpu[:, j]
        c = (j + 1) * window / cpu[:, : j + 1].sum(1)
        out["windows"].append({"steps": [j * window, (j + 1) * window],
                               "median": float(np.median(w)), "min": float(w.min()),
                               "max": float(w.max())})  # fmt: skip
        out["cumulative"].append({"steps": [0, (j + 1) * window], "median": float(np.median(c)),
                                  "min": float(c.min()), "max": float(c.max())})  # fmt: skip
    return out


def bench_tm_sequences(total: int, window: int) -> dict:
    rng = np.random.default_rng(1)
    vocab = _random_cols(rng, 200)
    seqs = [[vocab[j] for j in rng.choice(200, 10, replace=False)] for _ in range(20)]
    stream = []
    while len(stream) < total:
        if rng.random() < 0.05:
            stream.append(_random_cols(rng, 1)[0])
        else:
            stream.extend(seqs[rng.integers(20)])
    tm = SequenceMemory(2048, 32, seed=0)
    anomalies = []

    def step(i):
        anomalies.append(tm.step(stream[i]).anomaly)

    early = _rate(step, window)
    for i in range(window, total - window):
        step(i)
    late = _rate(lambda i: step(total - window + i), window)
    st = tm.stats()
    return {
        "steps": total, "window": window,
        "early_steps_per_s": early[0], "late_steps_per_s": late[0],
        "early_steps_per_cpu_s": early[1], "late_steps_per_cpu_s": late[1],
        "early_mean_anomaly": float(np.mean(anomalies[:window])),
        "late_mean_anomaly": float(np.mean(anomalies[-window:])),
        "late_synapses": st["synapses"], "late_segments": st["segments"],
    }  # fmt: skip


def bench_hellosptp(steps: int) -> dict:
    rng = np.random.default_rng(2)
    enc = RDSE(10_000, 2_000, resolution=0.88, seed=1)
    codes = [enc(v) for v in rng.uniform(0, 1000, 500)]  # encoding is not timed
    sp = SpatialPooler(10_000, 2048, active=40, potential_radius=16, boost_strength=0.0, seed=0)
    tm = SequenceMemory(2048, cells_per_column=10, seed=0)
    sp(codes[0])
    cols = []
    sp_rate = _rate(lambda i: cols.append(sp(codes[i % 500], learn=True)), steps)
    tm_rate = _rate(lambda i: tm.step(cols[i], learn=True), steps)
    sp_us, tm_us = 1e6 / sp_rate[1], 1e6 / tm_rate[1]
    return {
        "steps": steps, "sp_us_per_step": sp_us, "tm_us_per_step": tm_us,
        "sp_us_per_step_wall": 1e6 / sp_rate[0], "tm_us_per_step_wall": 1e6 / tm_rate[0],
        "htm_core_sp_us_published": HTM_CORE_SP_US, "htm_core_tm_us_published": HTM_CORE_TM_US,
        "sp_ratio_vs_htm_core": HTM_CORE_SP_US / sp_us,
        "tm_ratio_vs_htm_core": HTM_CORE_TM_US / tm_us,
    }  # fmt: skip


def bench_sp_2048(steps: int) -> dict:
    enc = ScalarEncoder(2048, 40, 0, 100)
    codes = [enc(v) for v in np.random.default_rng(3).uniform(0, 100, 500)]
    sp = SpatialPooler(2048, 2048, active=40, seed=0)
    sp(codes[0])
    rate = _rate(lambda i: sp(codes[i % 500], learn=True), steps)
    return {"steps": steps, "us_per_step": 1e6 / rate[1], "us_per_step_wall": 1e6 / rate[0]}


def _time_call(fn, reps: int) -> float:
    """Median wall-clock milliseconds per call (the median shrugs off a busy neighbour)."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def bench_dendrites(reps: int) -> list[dict]:
    rows = []
    M, U, S, D = 256, 512, 8, 64
    g = torch.Generator().manual_seed(0)
    w = torch.randn(U, S, D, generator=g, requires_grad=True)
    for kind in ("dense", "one-hot"):
        if kind == "dense":
            c = torch.randn(M, D, generator=g)
        else:
            c = torch.nn.functional.one_hot(torch.randint(0, D, (M,), generator=g), D).float()
        c.requires_grad_()

        def run(fn):
            def go():
                v, _ = fn(c, w, "absmax")
                v.sum().backward()

            return go

        kernel = _time_call(run(lambda c_, w_, s_: _SegmentActivation.apply(c_, w_, True)), reps)
        auto = _time_call(run(segment_activation), reps)
        ref = _time_call(run(segment_activation_reference), reps)
        rows.append({
            "context": kind, "M": M, "units": U, "segments": S, "context_dim": D,
            "kernel_ms": kernel, "auto_ms": auto, "torch_ms": ref,
            "kernel_speedup": ref / kernel, "auto_speedup": ref / auto,
        })  # fmt: skip
    return rows


def bench_kwinners(reps: int) -> dict:
    x = torch.randn(256, 2048, requires_grad=True)
    kw = KWinners(2048, k=40, boost_strength=1.0)

    def ours():
        kw(x).sum().backward()

    def topk():
        idx = x.detach().topk(40, dim=1).indices
        mask = torch.zeros_like(x, dtype=torch.bool).scatter_(1, idx, True)
        x.masked_fill(~mask, 0).sum().backward()

    a, b = _time_call(ours, reps), _time_call(topk, reps)
    return {"shape": [256, 2048], "k": 40, "ours_ms": a, "topk_ms": b, "ratio": b / a}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke run")
    ap.add_argument("--out", default=None,
                    help="JSON path (default benchmarks/results/sdr.json; quick/ for --quick)")
    ap.add_argument("--tm-random-runs", type=int, default=0,
                    help="only the random-input learning curve, over this many fresh runs")
    args = ap.parse_args(argv)
    from _timing import results_path  # benchmarks/, beside this

    args.out = args.out or str(results_path("sdr.json", args.quick))
    q = args.quick
    if args.tm_random_runs:
        from _timing import hardware  # benchmarks/, beside this

        res = {"hardware": hardware(), "command": "python " + " ".join(sys.argv),
               "tm_random_windows": bench_tm_random_windows(args.tm_random_runs,
                                                            2000 if q else 10_000)}  # fmt: skip
        print(f"SequenceMemory 2048 x 32, learning on random input, {args.tm_random_runs} "
              f"runs; steps per CPU second, median (min-max); {res['hardware']}")
        for w, c in zip(res["tm_random_windows"]["windows"],
                        res["tm_random_windows"]["cumulative"]):  # fmt: skip
            print(f"  steps {w['steps'][0]:>5}-{w['steps'][1]:<5} window {w['median']:7.0f} "
                  f"({w['min']:.0f}-{w['max']:.0f})   cumulative {c['median']:7.0f} "
                  f"({c['min']:.0f}-{c['max']:.0f})")
        Path(args.out).write_text(json.dumps(res, indent=2))
        print(f"wrote {args.out}")
        return 0
    env = {
        "python": sys.version.split()[0], "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "numpy": np.__version__, "kernel_mode": registry.kernel_mode(),
        "tm_sp_threads": 1, "dendrites_kwinners_threads": 1,
        "peers": "htm.core and nupic.torch: not installable here (no PyPI distribution); "
        "htm.core figures are the published HelloSPTP numbers (issue #267, 2019)",
    }  # fmt: skip
    res: dict = {"env": env, "quick": q}
    res["tm_random"] = bench_tm_random(2000 if q else 10_000, 500 if q else 1000, 100 if q else 300)
    res["tm_sequences"] = bench_tm_sequences(2000 if q else 10_000, 500 if q else 1000)
    res["hellosptp"] = bench_hellosptp(500 if q else 5000)
    res["sp_2048"] = bench_sp_2048(300 if q else 2000)
    # one thread for torch and Numba alike: a fair per-core comparison, and immune to
    # OpenMP workers spinning on a shared machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    res["dendrites"] = bench_dendrites(5 if q else 20)
    res["kwinners"] = bench_kwinners(5 if q else 20)
    torch.set_num_threads(threads)

    print(
        f"# neurosparse.sdr benchmark ({'quick' if q else 'full'}) — {env['processor']}, "
        f"{env['cpus']} CPUs; TM/SP single-threaded kernels; rates per CPU second of the "
        "stepping thread (wall-clock rates are in the JSON)"
    )
    r = res["tm_random"]
    print(
        f"TM random 2048x32, 40 active: early {r['early_steps_per_cpu_s']:.0f} steps/s, late "
        f"{r['late_steps_per_cpu_s']:.0f} steps/s ({r['late_synapses']:,} synapses); "
        f"first {r['python_ref_steps']} steps: kernel {r['kernel_same_steps_per_cpu_s']:.0f} "
        f"vs pure-Python twin {r['python_ref_steps_per_cpu_s']:.1f} steps/s "
        f"= {r['speedup_vs_python_ref']:.0f}x"
    )
    r = res["tm_sequences"]
    print(
        f"TM sequences:  early {r['early_steps_per_cpu_s']:.0f} steps/s (anomaly "
        f"{r['early_mean_anomaly']:.2f}), late {r['late_steps_per_cpu_s']:.0f} steps/s "
        f"(anomaly {r['late_mean_anomaly']:.2f}, {r['late_synapses']:,} synapses)"
    )
    r = res["hellosptp"]
    print(
        f"HelloSPTP shape: SP {r['sp_us_per_step']:.0f} us/step (htm.core published "
        f"{HTM_CORE_SP_US:.0f}: x{r['sp_ratio_vs_htm_core']:.2f}), TM 2048x10 "
        f"{r['tm_us_per_step']:.0f} us/step (htm.core {HTM_CORE_TM_US:.0f}: "
        f"x{r['tm_ratio_vs_htm_core']:.2f})"
    )
    print(f"SP 2048->2048 global pools: {res['sp_2048']['us_per_step']:.0f} us/step")
    print("dendrites fwd+bwd (256 x 512 units x 8 segments x 64), 1 thread, median wall ms:")
    for d in res["dendrites"]:
        print(
            f"  {d['context']:8s} kernel {d['kernel_ms']:.2f} ms (x{d['kernel_speedup']:.2f}), "
            f"auto {d['auto_ms']:.2f} ms (x{d['auto_speedup']:.2f}), torch matmul+gather "
            f"{d['torch_ms']:.2f} ms"
        )
    k = res["kwinners"]
    print(
        f"KWinners fwd+bwd [256, 2048], k=40, 1 thread: ours {k['ours_ms']:.2f} ms, bare topk "
        f"{k['topk_ms']:.2f} ms (ratio {k['ratio']:.2f})"
    )
    print(env["peers"])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
