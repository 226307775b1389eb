"""When an event layer takes the event path and when the dense one (``mode="auto"``).

The event kernels cost about ``events × fan-out`` and the dense matmul/convolution
``inputs × fan-out``, so the event path wins below some input activity (the crossover
rate) and loses above it. The crossover is not a guess: the tables below hold rates
measured by ``benchmarks/event_layers.py`` (command in each table's comment). For a shape
that was not measured, the nearest measured shape (in log size) supplies the rate.

``mode="event"`` / ``"dense"`` force a path; ``"auto"`` compares the measured activity
of the call with the crossover of its shape and device.
"""

from __future__ import annotations

import math

from .._checks import check_choice

MODES = ("auto", "event", "dense")

# Each entry: (shape, crossover activity). Linear shape: (rows M = T·B, in, out); conv
# shape: (samples, in_ch, out_ch, kernel taps, output pixels). The crossover is the
# activity at which the event path (count pass and index build included) takes as long as
# the dense path on the same machine, log-interpolated in the benchmark's rate sweep.
# Where the event path was faster at every measured rate, the entry is the highest rate
# measured (a lower bound: above it nothing was measured, so dense is chosen); 0.0 means
# the dense path was faster at every rate (event only for all-zero input).
#
# CPU: 2-core AMD EPYC (Zen 5) VM, 2 threads, float32, torch 2.14 (oneDNN / MKL). The
# machine was shared with other jobs during the runs, so these are indicative (±2×):
#   .venv/bin/python benchmarks/event_layers.py                            (linear rows)
#   .venv/bin/python benchmarks/event_layers.py --sections conv --reps 9   (conv rows)
LINEAR_CPU: list[tuple[tuple[int, ...], float]] = [
    ((3200, 4096, 4096), 0.31),
    ((32, 4096, 4096), 0.40),
    ((3200, 1024, 1024), 0.37),
    ((320, 1024, 1024), 0.40),
    ((3200, 256, 256), 0.40),
]
CONV_CPU: list[tuple[tuple[int, ...], float]] = [
    ((16, 2, 32, 25, 128 * 128), 0.50),
    ((16, 32, 64, 9, 128 * 128), 0.18),
]
# CUDA: one H200 (device tool), fp32 weights, dense path in strict fp32 (TF32 off), eager
# calls (Numba's ~0.5 ms of host time per event call included):
#   python3 benchmarks/event_layers.py --gpu --reps 10
#   python3 benchmarks/event_layers.py --gpu --sections conv --reps 5
LINEAR_CUDA: list[tuple[tuple[int, ...], float]] = [
    ((256, 4096, 4096), 0.0),
    ((8000, 4096, 4096), 0.055),
]
CONV_CUDA: list[tuple[tuple[int, ...], float]] = [
    ((16, 2, 32, 25, 128 * 128), 0.0),
    ((16, 32, 64, 9, 128 * 128), 0.0),
]

_TABLES = {
    ("linear", "cpu"): LINEAR_CPU,
    ("linear", "cuda"): LINEAR_CUDA,
    ("conv2d", "cpu"): CONV_CPU,
    ("conv2d", "cuda"): CONV_CUDA,
}


def crossover(op: str, device: str, shape: tuple[int, ...]) -> float:
    """Measured crossover activity for ``op`` (``"linear"``/``"conv2d"``) on ``device``.

    Devices without a table (e.g. ``mps``) use the CPU table.
    """
    table = _TABLES.get((op, device)) or _TABLES[(op, "cpu")]

    def distance(entry: tuple[tuple[int, ...], float]) -> float:
        return sum(abs(math.log(max(1, a)) - math.log(max(1, b))) for a, b in zip(entry[0], shape))

    return min(table, key=distance)[1]


def choose_path(mode: str, op: str, device: str, shape: tuple[int, ...], rate: float) -> str:
    """``"event"`` or ``"dense"`` for one call.

    Parameters
    ----------
    mode : {"auto", "event", "dense"}
    op : {"linear", "conv2d"}
    device : str
        ``tensor.device.type``.
    shape : tuple of int
        The call's shape key (see the tables above).
    rate : float
        Measured fraction of non-zero input elements in this call.
    """
    check_choice("mode", mode, MODES)
    if mode != "auto":
        return mode
    return "event" if rate < crossover(op, device, shape) else "dense"
