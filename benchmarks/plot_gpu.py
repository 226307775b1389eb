"""Plot the Open Neuromorphic GPU results written by ``benchmarks/gpu.py``.

    python benchmarks/plot_gpu.py [benchmarks/results/gpu_h100.json] [--out PNG]

Left: ms per training step against N for every library (fp32-strict). Right: the
neuron part (time minus the GEMM floor) of neurosparse and SpikingJelly, per precision.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("json", nargs="?", default=HERE / "results" / "gpu_h100.json", type=Path)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "gpu_h100.png")
    a = ap.parse_args()
    d = json.loads(a.json.read_text())
    ms: dict[tuple[str, str], dict[int, float]] = defaultdict(dict)
    for r in d["open_neuromorphic"]:
        if "median_ms" in r:
            ms[r["impl"].split(" (")[0], r["precision"]][r["N"]] = r["median_ms"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for (impl, prec), pts in sorted(ms.items()):
        if prec == "fp32":
            ns = sorted(pts)
            left.plot(ns, [pts[n] for n in ns], "o-", label=impl)
    left.set(xscale="log", yscale="log", xlabel="neurons N", ylabel="ms per step (fp32)",
             title="Linear(N, N) + LIF, T=500, B=16, fwd+bwd")  # fmt: skip
    left.set_xticks(
        sorted(ms["GEMM floor", "fp32"]), [str(n) for n in sorted(ms["GEMM floor", "fp32"])]
    )
    left.legend(fontsize=8)
    styles = {"fp32": "-", "tf32": "--", "bf16": ":"}
    for impl, color in (("neurosparse LIF", "C1"), ("SpikingJelly LIFNode", "C4")):
        for prec, ls in styles.items():
            floor = ms["GEMM floor", prec]
            pts = ms.get((impl, prec), {})
            ns = sorted(n for n in pts if n in floor)
            right.plot(ns, [pts[n] - floor[n] for n in ns], ls, color=color, marker="o",
                       label=f"{impl.split()[0]} {prec}")  # fmt: skip
    right.set(xscale="log", xlabel="neurons N", ylabel="ms above the GEMM floor",
              title="neuron part (lower is better)")  # fmt: skip
    right.set_xticks(
        sorted(ms["GEMM floor", "fp32"]), [str(n) for n in sorted(ms["GEMM floor", "fp32"])]
    )
    right.legend(fontsize=8)
    fig.suptitle(f"{d.get('device', 'GPU')}, torch {d.get('torch', '?')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(a.out, dpi=110)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
