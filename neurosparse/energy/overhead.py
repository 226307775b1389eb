"""Meter overhead on a model run.

``python -m neurosparse.energy.overhead [--quick] [--device cuda] [--threads N] [--out F.json]``

Times the same forward pass with and without a :class:`Meter` (best of interleaved
repeats, ``torch.no_grad``) on 2-layer fully connected SNNs stepped in a Python loop
(700 → 256 → 20 and 2048 → 2048 → 2048, snnTorch Leaky when installed, else ReLU) and a
convolutional net applied to a [T·B, C, H, W] batch, with and without temporal (delta)
counting. Prints a table; ``--out`` also writes JSON. For the before/after medians of
leaving the meter on, see ``benchmarks/meter_overhead.py``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch import nn

from .meter import Meter


def _neuron():
    try:
        import snntorch as snn

        return snn.Leaky(beta=0.9, init_hidden=True)
    except ImportError:  # pragma: no cover - optional peer
        return nn.ReLU()


class _LoopSNN(nn.Module):
    def __init__(self, n_in: int = 700, hidden: int = 256, n_out: int = 20):
        super().__init__()
        self.fc1, self.n1 = nn.Linear(n_in, hidden), _neuron()
        self.fc2, self.n2 = nn.Linear(hidden, n_out), _neuron()

    def forward(self, x):
        for mod in (self.n1, self.n2):
            if hasattr(mod, "reset_mem"):
                mod.reset_mem()
        return torch.stack([self.n2(self.fc2(self.n1(self.fc1(x[t]))))
                            for t in range(x.shape[0])])


class _ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(2, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 8 * 8, 10))

    def forward(self, x):
        T, B = x.shape[:2]
        return self.net(x.flatten(0, 1)).reshape(T, B, -1)


def _time_all(fns, repeats: int, device: str) -> list[float]:
    """Best-of-``repeats`` times of each function, runs interleaved so all see the same
    machine load (the minimum is the least load-disturbed estimate on a shared machine)."""
    def sync():
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    for fn in fns:  # warm-up (also builds the fan-out caches)
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - t0)
    return [min(t) for t in times]


def measure(quick: bool = False, device: str = "cpu") -> list[dict]:
    torch.manual_seed(0)
    T = 20 if quick else 100
    cases = [
        (f"loop SNN 700-256-20, T={T}, B=32", _LoopSNN(),
         (torch.rand(T, 32, 700) < 0.05).float()),
        (f"conv net 2x32x32, T={T // 4}, B=8", _ConvNet(),
         (torch.rand(T // 4, 8, 2, 32, 32) < 0.1).float()),
    ]
    if not quick:
        cases.append(("loop SNN 2048-2048-2048, T=25, B=64", _LoopSNN(2048, 2048, 2048),
                      (torch.rand(25, 64, 2048) < 0.05).float()))
    repeats = 5 if quick else 15
    rows = []
    for label, model, x in cases:
        model = model.to(device).eval()
        x = x.to(device)
        with torch.no_grad():
            # layout="TB": the conv net sees [T*B, ...], which no module of it can explain
            full = Meter(model, layout="TB")
            cheap = Meter(model, layout="TB", temporal=False)

            def run(meter, m=model, a=x):
                with meter:
                    m(a)

            base, t_full, t_cheap = _time_all(
                [lambda m=model, a=x: m(a), lambda f=full: run(f), lambda c=cheap: run(c)],
                repeats, device)
        rows.append({"case": label, "device": device, "plain_s": base, "metered_s": t_full,
                     "metered_no_temporal_s": t_cheap, "overhead": t_full / base - 1,
                     "overhead_no_temporal": t_cheap / base - 1})
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=None, help="also write the rows as JSON to this path")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 avoids OpenMP contention on shared machines)")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = measure(args.quick, args.device)
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else None
    info = {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "device": args.device,
            "gpu": gpu}
    print(f"Meter overhead on {args.device}{' (' + gpu + ')' if gpu else ''} (best of "
          f"interleaved repeats, torch {info['torch']}, {info['threads']} CPU threads, no_grad)")
    for r in rows:
        print(f"  {r['case']:<36} plain {r['plain_s'] * 1e3:8.2f} ms   metered "
              f"{r['metered_s'] * 1e3:8.2f} ms ({100 * r['overhead']:+6.1f}%)   "
              f"temporal=False {r['metered_no_temporal_s'] * 1e3:8.2f} ms "
              f"({100 * r['overhead_no_temporal']:+6.1f}%)")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"info": info, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
