"""One streaming step on the CPU: the single-threaded kernel twins against the parallel kernels.

``python benchmarks/cpu_streaming_twins.py [--rounds N] [--calls N] [--out F.json]``

A streaming step (one DVS frame, one time step of a delta layer) is a few dozen events:
starting a parallel region costs more than the work (~0.2 ms on the 2-core VM when
quiet, several ms when its cores are busy). Since 2026-12-07 such calls run the
single-threaded twins of the kernels (``kernels/_serial.py``); this script times, per
call, under ``torch.no_grad()``:

* ``EventConv2d(2, 8, 5, stride=4, padding=2)`` on one 2 x 128 x 128 frame at 0.05 %
  (the first layer of ``examples/09_streaming.py`` on the DVS128 recording);
* ``DeltaLinear(512, 256, threshold=0.1).step`` on ``[1, 512]``;
* ``DeltaGRU(128, 128, threshold=0.05).step`` on ``[1, 128]``;

each with the twins (``serial``, the default) and with the parallel kernels put in the
twins' place (``parallel``, the code before), beside what a user could run instead:
torch's dense ``nn.Conv2d`` / ``nn.Linear`` / ``nn.GRUCell`` of the same sizes on the
same input (``dense torch``; torch's own threads, as the user would have them). Rounds
interleave every case; medians
(min-max) of wall time per call, and the paired ratio serial / parallel per round.
Wall time, since a parallel region's cost is waiting for threads; run it on a quiet
machine and say so (``uptime``'s load is recorded).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import hardware  # noqa: E402

import neurosparse as ns  # noqa: E402
from neurosparse.kernels import delta_accumulate as ka  # noqa: E402
from neurosparse.kernels import delta_encode as kd  # noqa: E402
from neurosparse.kernels import delta_rnn as kr  # noqa: E402
from neurosparse.kernels import event_conv2d as kc  # noqa: E402

TWINS = ((kc, "conv_forward"), (kd, "delta_encode"), (ka, "running_sum"), (kr, "rnn_sequence"))
SERIAL = {(m, n): getattr(m, f"{n}_serial") for m, n in TWINS}


def use(serial: bool) -> None:
    for (mod, name), twin in SERIAL.items():
        setattr(mod, f"{name}_serial", twin if serial else getattr(mod, name))


def cases() -> dict:
    torch.manual_seed(0)
    conv = ns.EventConv2d(2, 8, 5, stride=4, padding=2, mode="event")
    frame = (torch.rand(1, 2, 128, 128) < 0.0005).float()
    lin = ns.DeltaLinear(512, 256, threshold=0.1)
    gru = ns.DeltaGRU(128, 128, threshold=0.05)
    xs = torch.randn(64, 1, 512).cumsum(0) * 0.1  # slowly changing: few deltas per step
    gs = torch.randn(64, 1, 128).cumsum(0) * 0.1
    t = {"i": 0}

    def nxt(seq):
        t["i"] = (t["i"] + 1) % 64
        return seq[t["i"]]

    dconv = torch.nn.Conv2d(2, 8, 5, stride=4, padding=2)
    dlin, dgru = torch.nn.Linear(512, 256), torch.nn.GRUCell(128, 128)
    hg = torch.zeros(1, 128)
    return {"EventConv2d, one DVS frame": (lambda: conv(frame), lambda: dconv(frame)),
            "DeltaLinear(512, 256).step": (lambda: lin.step(nxt(xs)), lambda: dlin(nxt(xs))),
            "DeltaGRU(128, 128).step": (lambda: gru.step(nxt(gs)),
                                        lambda: dgru(nxt(gs), hg))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--out", default="benchmarks/results/cpu_streaming_twins.json")
    args = ap.parse_args()
    fns = cases()
    kinds = ("serial", "parallel", "dense torch")
    times = {(c, k): [] for c in fns for k in kinds}
    with torch.no_grad():
        for serial in (True, False):  # compile and warm both
            use(serial)
            for f, g in fns.values():
                for _ in range(20):
                    f()
                    g()
        for _ in range(args.rounds):
            for c, k in times:
                use(k == "serial")
                f = fns[c][1] if k == "dense torch" else fns[c][0]
                t0 = time.perf_counter()
                for _ in range(args.calls):
                    f()
                times[(c, k)].append((time.perf_counter() - t0) / args.calls * 1e6)
    use(True)
    rows = {}
    print(f"load average {os.getloadavg()[0]:.2f}\n")
    print("| step, µs wall per call | serial twins (now) | parallel kernels (before) "
          "| serial / parallel, paired | dense torch |")
    print("|---|---:|---:|---:|---:|")

    def cell(d: dict, f: str = ".1f") -> str:
        return f"{d['median']:{f}} ({d['min']:{f}}-{d['max']:{f}})"

    for c in fns:
        s, p = times[(c, "serial")], times[(c, "parallel")]
        ratios = [a / b for a, b in zip(s, p)]
        rows[c] = {k: {"median": statistics.median(v), "min": min(v), "max": max(v)}
                   for k, v in (("serial", s), ("parallel", p), ("ratio", ratios),
                                ("dense torch", times[(c, "dense torch")]))}  # fmt: skip
        r = rows[c]
        print(f"| {c} | {cell(r['serial'])} | {cell(r['parallel'])} | "
              f"{cell(r['ratio'], '.2f')} | {cell(r['dense torch'])} |")
    out = {"hardware": hardware(), "load_average": os.getloadavg(), "rounds": args.rounds,
           "calls": args.calls, "us_per_call": rows}  # fmt: skip
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
