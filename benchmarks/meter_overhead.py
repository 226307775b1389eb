"""Cost of leaving ``neurosparse.energy.Meter`` on: the same inference with and without it.

``python benchmarks/meter_overhead.py [--repeats N] [--quick] [--device cpu|cuda]
[--out F.json] [--compare BEFORE.json]``; ``--merge A.json B.json ... --out F.json``
pools the timings of several runs (alternate runs of two versions on a shared machine,
then merge each side).

Cases, at the sizes of ``benchmarks/event_layers.py`` and of the peers' tutorials:

* ours, sequence mode: ``Sequential(EventLinear(1024, 1024), LIF)`` on ``[T=100, B=32]``
  spikes at 5 % (the layer counts itself; the neuron is hooked);
* ours, sequence mode: ``Sequential(EventConv2d(2, 32, 5, padding=2), LIF)`` on
  ``[T=4, B=4, 2, 128, 128]`` at 2 % (the DVS-sized conv of ``event_layers.py``);
* snnTorch, a Python loop over time: ``Linear(700, 256) + Leaky + Linear(256, 20) + Leaky``,
  ``T=100, B=32`` at 5 % (every layer foreign: forward hooks);
* snnTorch, a Python loop over time: ``2048-2048-2048``, ``T=25, B=64`` at 5 %.

Each case runs plain and metered in turn (interleaved, so both see the same load),
``torch.no_grad``, 1 CPU thread; the table gives medians with min-max and the overhead
of the medians. Times are the process's CPU time (``time.process_time``): on a machine
shared with other jobs, wall time mostly measures their load; with one thread, CPU time
is the work done (it still varies with cache and memory-bandwidth contention). The JSON
also keeps the wall times. ``--compare`` prints a before/after table against an earlier JSON.

``--device cuda`` runs the same cases with models and inputs on the GPU and times each
call by wall clock between two ``torch.cuda.synchronize()`` (CPU time would miss the GPU's
work); the meter itself never waits for the GPU inside a forward pass (its hooks only keep
references; counts are read back once per sequence).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numba
import torch
from torch import nn

from neurosparse import LIF, EventConv2d, EventLinear, Sequential
from neurosparse.energy import Meter


def _spikes(shape, rate, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=gen) < rate).float()


class SnnLoop(nn.Module):
    """snnTorch tutorial-style MLP: the loop over time inside forward."""

    def __init__(self, sizes):
        super().__init__()
        import snntorch as snn

        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.lif = nn.ModuleList(snn.Leaky(beta=0.9) for _ in self.fc)

    def forward(self, x):
        mems = [lif.init_leaky() for lif in self.lif]
        out = []
        for t in range(x.shape[0]):
            h = x[t]
            for i, (fc, lif) in enumerate(zip(self.fc, self.lif)):
                h, mems[i] = lif(fc(h), mems[i])
            out.append(h)
        return torch.stack(out)


def cases(quick: bool, device: str = "cpu"):
    torch.manual_seed(0)
    out = _cases(quick)
    return [(label, model.to(device), x.to(device)) for label, model, x in out]


def _cases(quick: bool):
    T = 20 if quick else 100
    out = [
        (f"ours EventLinear 1024-1024 + LIF, T={T}, B=32, 5%",
         Sequential(EventLinear(1024, 1024), LIF(beta=0.9)), _spikes((T, 32, 1024), 0.05)),
        ("ours EventConv2d 2x128x128->32 5x5 + LIF, T=4, B=4, 2%",
         Sequential(EventConv2d(2, 32, 5, padding=2), LIF(beta=0.9)),
         _spikes((4, 4, 2, 128, 128), 0.02)),
    ]
    try:
        import snntorch  # noqa: F401
    except ImportError:  # pragma: no cover - optional peer
        return out
    out.append((f"snnTorch loop 700-256-20, T={T}, B=32, 5%", SnnLoop((700, 256, 20)),
                _spikes((T, 32, 700), 0.05)))
    if not quick:
        out.append(("snnTorch loop 2048-2048-2048, T=25, B=64, 5%",
                    SnnLoop((2048, 2048, 2048)), _spikes((25, 64, 2048), 0.05)))
    return out


def _time(fn, cuda: bool = False) -> tuple[float, float]:
    """(CPU time, wall time) of one call; on CUDA the wall time includes the GPU's work."""
    # Numba's OpenMP layer resets the shared OpenMP thread count when our parallel
    # kernels launch (torch.get_num_threads() read 2 after an EventLinear call): pin both
    # to one thread before every timed call so every case really runs on one thread.
    numba.set_num_threads(1)
    torch.set_num_threads(1)
    if cuda:
        torch.cuda.synchronize()
    c0, t0 = time.process_time(), time.perf_counter()
    fn()
    if cuda:
        torch.cuda.synchronize()
    return time.process_time() - c0, time.perf_counter() - t0


def measure(repeats: int, quick: bool, device: str = "cpu") -> list[dict]:
    rows = []
    cuda = device.startswith("cuda")
    for label, model, x in cases(quick, device):
        model.eval()

        def plain(m=model, a=x):
            with torch.no_grad():
                m(a)

        def metered(m=model, a=x):
            with torch.no_grad(), Meter(m) as meter:
                m(a)
            meter.counts()

        plain()
        metered()  # warm-up: kernels compiled, fan-out maps cached
        tp, tm, wp, wm = [], [], [], []
        for _ in range(repeats):
            for fn, cpu, wall in ((plain, tp, wp), (metered, tm, wm)):
                c, w = _time(fn, cuda)
                cpu.append(w if cuda else c)  # the table's times: wall clock on a GPU
                wall.append(w)
        p, m = statistics.median(tp), statistics.median(tm)
        rows.append({"case": label, "plain_s": tp, "metered_s": tm, "plain_wall_s": wp,
                     "metered_wall_s": wm, "plain_median_s": p, "metered_median_s": m,
                     "overhead": m / p - 1})
    return rows


def _ms(ts) -> str:
    return f"{statistics.median(ts) * 1e3:.1f} ({min(ts) * 1e3:.1f}-{max(ts) * 1e3:.1f})"


def table(rows, before=None) -> str:
    head = "| case | plain ms | metered ms | overhead |"
    sep = "|---|---:|---:|---:|"
    if before:
        head += " before: metered ms | before: overhead |"
        sep += "---:|---:|"
        old = {r["case"]: r for r in before["rows"]}
    lines = [head, sep]
    for r in rows:
        line = (f"| {r['case']} | {_ms(r['plain_s'])} | {_ms(r['metered_s'])} | "
                f"{100 * r['overhead']:+.1f} % |")
        if before:
            o = old.get(r["case"])
            line += (f" {_ms(o['metered_s'])} | {100 * o['overhead']:+.1f} % |" if o
                     else " - | - |")
        lines.append(line)
    return "\n".join(lines)


def merge(paths: list[str]) -> dict:
    """Pool the timings of several runs of the same cases."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    rows = []
    for r in runs[0]["rows"]:
        tp = [t for run in runs for q in run["rows"] if q["case"] == r["case"]
              for t in q["plain_s"]]
        tm = [t for run in runs for q in run["rows"] if q["case"] == r["case"]
              for t in q["metered_s"]]
        p, m = statistics.median(tp), statistics.median(tm)
        rows.append({"case": r["case"], "plain_s": tp, "metered_s": tm, "plain_median_s": p,
                     "metered_median_s": m, "overhead": m / p - 1})
    info = dict(runs[0]["info"], repeats=sum(run["info"]["repeats"] for run in runs),
                runs=len(runs))
    return {"info": info, "rows": rows}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--merge", nargs="+", help="JSON files of earlier runs to pool")
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", help="write the timings as JSON to this path")
    ap.add_argument("--compare", help="JSON of an earlier run: print before/after")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda: torch.cuda.is_available() is False on this machine")
    torch.set_num_threads(1)
    if args.merge:
        pooled = merge(args.merge)
        rows, info = pooled["rows"], pooled["info"]
    else:
        rows = measure(args.repeats, args.quick, args.device)
        info = {"torch": torch.__version__, "threads": 1, "repeats": args.repeats,
                "cpu": platform.processor() or platform.machine(), "device": args.device}
        if args.device.startswith("cuda"):
            info["gpu"] = torch.cuda.get_device_name()
    before = json.loads(Path(args.compare).read_text()) if args.compare else None
    where = (f"{info.get('gpu', 'GPU')}, wall time between cuda.synchronize()"
             if info.get("device", "cpu").startswith("cuda")
             else "CPU, 1 thread, process CPU time")
    print(f"Meter overhead, {where}, torch {info['torch']}, "
          f"median (min-max) of {info['repeats']} interleaved repeats, no_grad")
    print(table(rows, before))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"info": info, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
