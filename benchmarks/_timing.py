"""Timers and the machine description shared by the benchmark scripts (imported from
beside them)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def results_path(name: str, quick: bool) -> Path:
    """Where a run writes ``name`` when no path is given: ``benchmarks/results/``, or its
    git-ignored ``quick/`` folder for a ``--quick`` run, so that a smoke run never
    overwrites the measured files RESULTS.md cites."""
    return RESULTS_DIR / "quick" / name if quick else RESULTS_DIR / name


def wall_ms(fn: Callable[[], object]) -> float:
    """Wall-clock ms of one call."""
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def cuda_ms(fn: Callable[[], object], inner: int = 20) -> float:
    """CUDA-event time per call over ``inner`` back-to-back calls (host overhead shows)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(inner):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / inner


def host_ms(fn: Callable[[], object], reps: int = 50) -> float:
    """Host time per call (ms): one warm call, then ``reps`` calls with no synchronisation
    between them (the device queue absorbs them), synchronising outside the clock."""
    fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    t1 = time.perf_counter()
    torch.cuda.synchronize()
    return (t1 - t0) / reps * 1e3


def cuda_event_ms(fn: Callable[[], object]) -> float:
    """CUDA-event ms of one call, synchronised after it (device time of that call)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


def round_robin(fns: dict, reps: int, warmup: int = 1, timer=wall_ms) -> dict[str, list[float]]:
    """ms per call of every function, interleaved ``reps`` times after ``warmup`` calls,
    so drift of the machine over the run falls on all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            out[k].append(timer(fn))
    return out


def hardware() -> dict:
    """CPU model, cores, Python, torch, the GPU if any, OMP_WAIT_POLICY and the load."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY")}
    try:
        info["loadavg_start"] = os.getloadavg()
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def cuda_graph(fn: Callable[[], object]):
    """``fn`` captured in a CUDA graph (its replay), or None if it cannot be captured.

    Numba launches from Python cost ~25 µs of host time plus ~6 µs per array argument
    (measured on the H200 host), more than the kernels themselves at small batch; a graph
    replay shows the device time, as a user running small batches would get with
    ``torch.cuda.graphs``."""
    if not torch.cuda.is_available():
        return None
    try:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                fn()
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            fn()
        graph.replay()
        torch.cuda.synchronize()
        return graph.replay
    except Exception as exc:  # report, do not fail the run
        print(f"  (graph capture failed: {exc})")
        return None
