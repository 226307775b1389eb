"""DVS data: decode throughput per format, streaming memory, transform throughput.

Side by side in one run, every number in million events per second (M ev/s, higher is
better): the median of repetitions interleaved across the decoders (so load changes on a
shared machine hit them alike), with the range over the repetitions, the file in the
page cache:

1. Real recordings in ``<repo>/../shared/data/dvs`` (skipped when absent): our
   ``read_events`` against the decoder a user would otherwise use for that format —
   Tonic (``tonic.io.read_mnist_file``), ``aedat`` (AEDAT 4), expelliarmus (DAT, EVT 2.0,
   EVT 3.0 — its EVT 3 timestamps are wrong, timed anyway), ``evt3`` (EVT 3.0).
2. A generated file of ``--events`` events (default 50 M; ``--quick``: 2 M) per writable
   format, written with our writers into a temporary folder and deleted afterwards, with
   the same decoders plus the raw-bytes floor (``np.fromfile`` of the data).
3. Peak Python-heap memory (``tracemalloc``: NumPy buffers included) of ``iter_events``
   on the large EVT 2.0 file against ``read_events``.
4. Transforms on random events in 128 x 128: ToSpikeTensor / ToFrame / ToVoxelGrid /
   Denoise against Tonic's transforms on the same events.

All our kernels run single-threaded (Numba, no ``parallel``); so do the peers.

    python benchmarks/data.py [--quick] [--events N] [--reps R] [--sections real,...]
                              [--out benchmarks/results/data.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from _timing import hardware, results_path, round_robin, wall_ms  # benchmarks/, beside this

import neurosparse.data as nd
from neurosparse.data.fetch_recordings import data_dir

warnings.filterwarnings("ignore")
ROOT = Path(__file__).resolve().parents[1]
DATA = data_dir()  # $NEUROSPARSE_DATA_DIR, else ../shared/data/dvs, as the tests


def cpu_ms(fn) -> float:
    """Process CPU ms of one call (``--clock cpu``).

    On a loaded machine wall time also counts the slices other processes held the cores
    (2 ms reads measured 2-7 ms); CPU time leaves them out. Fair only to single-threaded
    decoders: every one here is (its CPU time equals its wall time on an idle core, and
    none starts a thread).
    """
    t0 = time.process_time()
    fn()
    return (time.process_time() - t0) * 1e3


CLOCK = "wall"  # --clock


def times_s(fns: dict, reps: int) -> dict[str, list[float]]:
    """Seconds per call of each function, ``reps`` rounds interleaved after one warm-up
    call each (JIT, page cache). No gc.collect() between repetitions: on this VM it
    evicts caches and made a 50 µs read take 400 µs, for every decoder alike."""
    timer = cpu_ms if CLOCK == "cpu" else wall_ms
    return {k: [ms / 1e3 for ms in v] for k, v in round_robin(fns, reps, timer=timer).items()}


def timing_row(samples: list[float], n: int) -> dict:
    """Median seconds and M ev/s with their range over the repetitions."""
    s = float(np.median(samples))
    return {"s": s, "s_min": min(samples), "s_max": max(samples), "samples_s": samples,
            "mev_s": n / s / 1e6, "mev_s_min": n / max(samples) / 1e6,
            "mev_s_max": n / min(samples) / 1e6}  # fmt: skip


def oracles(fmt: str):
    """Independent decoders for ``fmt``: name -> callable(path) (only those installed)."""
    out = {}
    if fmt == "nmnist":
        import tonic

        dt = tonic.datasets.NMNIST.dtype
        out["tonic.io.read_mnist_file"] = lambda p: tonic.io.read_mnist_file(str(p), dtype=dt)
    if fmt == "aedat4":
        try:
            import aedat

            def read_aedat(p):
                parts = [pk["events"] for pk in aedat.Decoder(str(p)) if "events" in pk]
                return np.concatenate(parts)

            out["aedat.Decoder"] = read_aedat
        except ImportError:
            pass
    if fmt in ("dat", "evt2", "evt3"):
        try:
            import expelliarmus

            out["expelliarmus"] = lambda p, f=fmt: expelliarmus.Wizard(encoding=f).read(str(p))
        except ImportError:
            pass
    if fmt == "evt3":
        try:
            import evt3

            out["evt3.decode_file"] = lambda p: evt3.decode_file(str(p))
        except ImportError:
            pass
    return out


def bench_file(path: Path, fmt: str, n_events: int, reps: int, floor: bool = False
               ) -> list[dict]:  # fmt: skip
    fns = {"neurosparse.read_events": lambda: nd.read_events(path)}
    fns.update({name: lambda fn=fn: fn(path) for name, fn in oracles(fmt).items()})
    if floor:
        fns["raw bytes floor (np.fromfile)"] = lambda: np.fromfile(path, dtype=np.uint8)
    rows = [{"decoder": k, **timing_row(v, n_events)} for k, v in times_s(fns, reps).items()]
    ours = rows[0]["s"]
    for r in rows:
        r.update(file=path.name, format=fmt, events=n_events, ours_speedup=r["s"] / ours)
    return rows


REAL = [
    ("nmnist/Train/3/00008.bin", "nmnist"),
    ("ncaltech101/Faces_easy/image_0001.bin", "nmnist"),
    ("aedat2/IMU_translBoxes.aedat", "aedat2"),
    ("aedat4/tonic_sample.aedat4", "aedat4"),
    ("aedat4/aestream_davis.aedat4", "aedat4"),
    ("prophesee_dat/NCARS_obj_004397_td.dat", "dat"),
    ("evt2/evt2_sample.raw", "evt2"),
    ("evt3/evt3_sample.raw", "evt3"),
]


def generated_events(n: int, w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ev = nd.events.empty_events(n)
    # ~10 M ev/s of sensor activity: realistic timestamp density, many equal timestamps
    ev["t"] = np.sort(rng.integers(0, max(1, n // 10), n))
    ev["x"] = rng.integers(0, w, n)
    ev["y"] = rng.integers(0, h, n)
    ev["p"] = rng.integers(0, 2, n)
    return ev


def bench_generated(n: int, tmp: Path, reps: int) -> tuple[list[dict], dict]:
    rows = []
    mem = {}
    specs = [
        ("nmnist", ".bin", lambda p, e: nd.write_nmnist(p, e), (34, 34)),
        ("aedat2", ".aedat", lambda p, e: nd.write_aedat2(p, e, layout="davis"), (240, 180)),
        ("evt2", ".raw", lambda p, e: nd.write_evt2(p, e, sensor_size=(640, 480)), (640, 480)),
        ("evt3", ".raw", lambda p, e: nd.write_evt3(p, e, sensor_size=(1280, 720)), (1280, 720)),
    ]
    for fmt, suffix, writer, (w, h) in specs:
        ev = generated_events(n, w, h)
        path = tmp / f"big_{fmt}{suffix}"
        t0 = time.perf_counter()
        writer(path, ev)
        write_s = time.perf_counter() - t0
        del ev
        gc.collect()
        size = path.stat().st_size
        got = bench_file(path, fmt, n, reps, floor=True)
        for r in got:
            r.update(bytes=size, write_s=write_s)
        rows += got
        if fmt == "evt2":
            mem = bench_memory(path, size)
        path.unlink()
    return rows, mem


def bench_memory(path: Path, size: int) -> dict:
    out = {"file_bytes": size}
    for chunk in (100_000, 1_000_000):
        gc.collect()
        tracemalloc.start()
        n = 0
        for c in nd.iter_events(path, chunk_events=chunk):
            n += len(c)
        out[f"iter_events chunk={chunk:,} peak MB"] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    gc.collect()
    tracemalloc.start()
    ev = nd.read_events(path)
    out["read_events peak MB"] = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    out["events"] = len(ev)
    del ev
    return out


def bench_transforms(n: int, n_denoise: int, reps: int) -> list[dict]:
    import tonic.transforms as TT
    import torch

    size = (128, 128, 2)
    ev = generated_events(n, 128, 128, seed=1)
    ev["t"] = np.sort(np.random.default_rng(2).integers(0, 1_000_000, n))  # 1 s recording
    small = ev[:n_denoise].copy()
    cases = [
        (
            "events -> spike counts [T,C,H,W], dt 1 ms",
            n,
            lambda: nd.ToSpikeTensor(size, dt_us=1000, binary=False)(ev),
            lambda: torch.from_numpy(
                TT.ToFrame(size, time_window=1000, include_incomplete=True)(ev).astype(np.float32)
            ),
            "Tonic ToFrame(time_window) + torch",
        ),
        (
            "ToFrame(n_time_bins=20)",
            n,
            lambda: nd.ToFrame(size, n_time_bins=20)(ev),
            lambda: TT.ToFrame(size, n_time_bins=20)(ev),
            "Tonic ToFrame",
        ),
        (
            "ToVoxelGrid(n_time_bins=10)",
            n,
            lambda: nd.ToVoxelGrid(size, 10)(ev),
            lambda: TT.ToVoxelGrid(size, 10)(ev.copy()),  # Tonic rewrites p in place
            "Tonic ToVoxelGrid (incl. its input copy)",
        ),
        (
            "Denoise(filter_time=1000)",
            n_denoise,
            lambda: nd.Denoise(1000)(small),
            lambda: TT.Denoise(filter_time=1000)(small),
            "Tonic Denoise",
        ),
    ]
    rows = []
    for name, count, ours, theirs, peer in cases:
        t = times_s({"ours": ours, "peer": theirs}, reps)
        a, b = float(np.median(t["ours"])), float(np.median(t["peer"]))
        rows.append(
            {
                "transform": name,
                "events": count,
                "ours_mev_s": count / a / 1e6,
                "peer": peer,
                "peer_mev_s": count / b / 1e6,
                "speedup": b / a,
                "samples_s": t,
            }
        )
    return rows


def markdown(result: dict) -> str:
    lines = [
        "# DVS data benchmark (`benchmarks/data.py`)",
        "",
        f"Machine: {result.get('hardware', result['machine'])}. Numba kernels "
        f"single-threaded. Clock: {result.get('clock', 'wall')}. Command: "
        f"`{result['command']}`. M ev/s = million events per second (higher is better); "
        "'ours x' = how many times faster `read_events` is than that decoder.",
        "",
        "## Decode throughput",
        "",
        "| file | format | events | decoder | M ev/s, median (min-max) | ours x |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r in result["decode"]:
        lines.append(
            f"| {r['file']} | {r['format']} | {r['events']:,} | {r['decoder']} | "
            f"{r['mev_s']:.1f} ({r['mev_s_min']:.1f}-{r['mev_s_max']:.1f}) | "
            f"{r['ours_speedup']:.2f} |"
        )
    if result.get("memory"):
        m = result["memory"]
        lines += [
            "",
            "## Streaming memory (EVT 2.0 generated file)",
            "",
            f"File: {m['file_bytes'] / 1e6:.0f} MB, {m['events']:,} events.",
            "",
            "| reader | peak MB |",
            "|---|---:|",
        ]
        lines += [f"| {k.replace(' peak MB', '')} | {v:.1f} |" for k, v in m.items() if "peak" in k]
    lines += [
        "",
        "## Transforms",
        "",
        "| transform | events | ours M ev/s | peer | peer M ev/s | speedup |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in result["transforms"]:
        lines.append(
            f"| {r['transform']} | {r['events']:,} | {r['ours_mev_s']:.1f} | {r['peer']} | "
            f"{r['peer_mev_s']:.2f} | {r['speedup']:.0f}x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 M generated events, fewer reps")
    ap.add_argument("--events", type=int, default=None, help="events in the generated files")
    ap.add_argument("--out", default=None,
                    help="JSON path (default benchmarks/results/data.json; quick/ for --quick)")
    ap.add_argument("--md", default=None, help="Markdown path (default beside the JSON's default)")
    ap.add_argument("--reps", type=int, default=None,
                    help="interleaved repetitions (real files: this; generated: a third)")
    ap.add_argument("--sections", default="real,generated,transforms",
                    help="comma list of real, generated, transforms")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="time per call: wall clock, or process CPU time (loaded machines)")
    args = ap.parse_args()
    args.out = args.out or str(results_path("data.json", args.quick))
    args.md = args.md or str(results_path("data.md", args.quick))
    global CLOCK
    CLOCK = args.clock
    sec = set(args.sections.split(","))
    n = args.events or (2_000_000 if args.quick else 50_000_000)
    reps = args.reps or (6 if args.quick else 9)
    result = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}",
        "hardware": hardware(),
        "command": "python " + " ".join(sys.argv),
        "clock": CLOCK,
        "decode": [],
    }
    if "real" in sec:
        if DATA.is_dir():
            for rel, fmt in REAL:
                n_ev = len(nd.read_events(DATA / rel))
                result["decode"] += bench_file(DATA / rel, fmt, n_ev, reps)
        else:
            print(f"(real recordings not found at {DATA}; skipping them)")
    if "generated" in sec:
        tmp = Path(tempfile.mkdtemp(prefix="ns_data_bench_"))
        try:
            rows, mem = bench_generated(n, tmp, max(2, reps // 3))
            result["decode"] += rows
            result["memory"] = mem
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    if "transforms" in sec:
        n_tr = 500_000 if args.quick else 5_000_000
        result["transforms"] = bench_transforms(n_tr, 50_000 if args.quick else 200_000,
                                                max(2, reps // 3))  # fmt: skip
    else:
        result["transforms"] = []
    md = markdown(result)
    print(md)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    Path(args.md).write_text(md)
    print(f"wrote {args.out} and {args.md}")


if __name__ == "__main__":
    main()
