"""When an event layer takes the event path and when the dense one (``mode="auto"``).

The event kernels cost about ``events × fan-out`` and the dense matmul/convolution
``inputs × fan-out``, so the event path wins below some input activity (the crossover
rate) and loses above it. ``mode="event"`` / ``"dense"`` force a path; ``"auto"``
compares the activity of the call with the crossover of its shape and device:

- **Linear on the CPU**: the crossover is *measured on the machine it runs on*, the
  first time a shape of at least :data:`MEASURE_MIN_MACS` multiply-adds is called, and
  cached in ``$NEUROSPARSE_CACHE_DIR`` (default ``~/.cache/neurosparse``)
  ``/crossover-v4-<host>-<threads>t.json`` (:func:`measure_linear_cpu`: event op and
  ``F.linear`` alternate on random spikes at rising rates, each sample long enough to
  time, until the event path is slower; the crossover is interpolated where the median
  time ratio passes 1, :func:`crossover_from_ratios`; a few seconds once). Smaller
  shapes and other ops use the tables below.
- **Linear on CUDA** (:func:`cuda_linear_path`): dense. No rate is read (reading it
  would synchronise the host with the GPU and cannot happen inside graph capture), and
  without it the event kernel is not guaranteed to win (measured, see the function).
  ``mode="event"`` takes it; :func:`dense_linear_us` models the dense time at the
  precision torch will use (TF32 / bf16 / strict fp32, from the dtype,
  ``torch.backends.cuda.matmul.allow_tf32`` and ``torch.get_float32_matmul_precision``)
  for the benchmark's floors.
- **Overrides**: ``NEUROSPARSE_EVENT_CROSSOVER=<rate>`` fixes the crossover of every op
  and device (``0`` always dense, ``1`` event whenever any input is silent);
  :func:`set_crossover` fixes it for one op and device from code;
  ``NEUROSPARSE_MEASURE_CROSSOVER=0`` turns the CPU measurement off (tables only).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path

import torch

from .._checks import check_choice, finite_checks_on_gpu
from .._env import getenv

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
# Single rows and small batches (a streaming step): ``measure_linear_cpu`` three times
# each on the same VM, 2026-12-07, while other jobs ran on it; the lowest of the three
# (crossovers 0.0 / 0.0 / 0.0 at 1 x 256² and at 1 x 1024 x 512, 0.12 / 0.0 / 0.06 at
# 1 x 1024², 0.48 / 0.39 / 0.50 at 1 x 4096², 0.25 / 0.20 / 0.20 at 8 x 1024²): a call
# this small is mostly the event path's fixed cost (count pass, index, kernel entry),
# which the dense product does not pay.
LINEAR_CPU: list[tuple[tuple[int, ...], float]] = [
    ((3200, 4096, 4096), 0.31),
    ((32, 4096, 4096), 0.40),
    ((3200, 1024, 1024), 0.37),
    ((320, 1024, 1024), 0.40),
    ((3200, 256, 256), 0.40),
    ((1, 4096, 4096), 0.39),
    ((8, 1024, 1024), 0.20),
    ((1, 1024, 1024), 0.0),
    ((1, 256, 256), 0.0),
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

# Shapes of at least this many multiply-adds get a crossover measured on this machine
# (CPU linear; 0.1-4 s once per size class, cached); below it the whole call costs a few
# tens of µs and the table decides. (It was 2**24 until a single 1024 -> 512 row at 5 %
# input took the table's 0.40 of a 320-row shape: ``neurosparse bench``, one run on the
# 2-core VM, auto on the event path 184.9 µs against F.linear 79.8 µs.)
MEASURE_MIN_MACS = 1 << 20
_RATES = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
# One timed sample runs a path this long at least (calls repeated): a single call of a
# small shape (8 rows: ~0.1-1 ms) is at the mercy of one scheduler tick on a shared VM.
_SAMPLE_S = 0.003
# Past this much measuring, rates not yet reached count as losses (dense): a huge shape
# then gets a lower, safe crossover instead of a minute of timing.
_BUDGET_S = 6.0
# The crossover is put where the event path takes this fraction of the dense time, not
# where the two are equal: one measurement's median ratio near the crossover moved by
# ±30 % between runs on the 2-core VM (0.67-1.27 at 512 x 2048², 5 %), and auto must
# never be the slow choice, while just below the equal point the two paths cost about
# the same, so giving those rates to dense loses little.
SAFE_RATIO = 0.85
_FIXED: dict[tuple[str, str], float] = {}
_MEASURED: dict[tuple[int, int, int], float] | None = None


def set_crossover(op: str, device: str, rate: float | None) -> None:
    """Fix the crossover of ``op`` on ``device`` (None: back to measured / tables)."""
    if rate is None:
        _FIXED.pop((op, device), None)
    else:
        _FIXED[(op, device)] = float(rate)


def _cache_file() -> Path:
    # v4: measured with the parallel gather on all threads (v3 files could hold rates measured
    # with the serial code loaded for it, see kernels/_serial.py); v3: at SAFE_RATIO; the thread
    # count is part of the key because the dense product scales with it and the gather less
    root = os.environ.get("NEUROSPARSE_CACHE_DIR") or Path.home() / ".cache" / "neurosparse"
    host = platform.node() or "host"
    return Path(root) / f"crossover-v4-{host}-{torch.get_num_threads()}t.json"


def _bucket(shape: tuple[int, ...]) -> tuple[int, int, int]:
    # one measurement per power-of-two size class of (rows, in, out)
    return tuple(max(0, round(math.log2(max(1, d)))) for d in shape)  # type: ignore[return-value]


def _load_measured() -> dict:
    global _MEASURED
    if _MEASURED is None:
        try:
            raw = json.loads(_cache_file().read_text())
            _MEASURED = {tuple(int(v) for v in k.split("x")): float(r) for k, r in raw.items()}
        except (OSError, ValueError, AttributeError):
            _MEASURED = {}
    return _MEASURED


def crossover_from_ratios(rates, ratios, target: float = 1.0) -> float:
    """The crossover rate from median time ratios ``event / dense`` measured at rising
    ``rates``.

    The event path's time grows with the rate and the dense path's does not, so the
    crossover is where the ratio passes ``target`` (1: equal times): log-interpolated
    between the last rate with a ratio <= target and the first above it (the first loss
    ends the search: a noisy win above it is not trusted). 0.0 when the event path
    already lost at the lowest
    rate (dense, except for all-zero input); the highest rate when it never lost (a
    lower bound: nothing above it was measured). ``ratios`` may be shorter than
    ``rates`` (measurement stopped): unmeasured rates count as losses.
    """
    last_win = None
    for i, rate in enumerate(rates):
        if i >= len(ratios) or not ratios[i] <= target:  # NaN counts as a loss
            if last_win is None or i >= len(ratios) or not math.isfinite(ratios[i]):
                return 0.0 if last_win is None else rates[last_win]
            r0, r1 = rates[last_win], rate
            q0, q1 = max(ratios[last_win], 1e-9), ratios[i]
            frac = (math.log(target) - math.log(q0)) / (math.log(q1) - math.log(q0))
            return math.exp(math.log(r0) + frac * (math.log(r1) - math.log(r0)))
        last_win = i
    return rates[-1]


def _alternating_ratio(event, dense, rounds: int) -> float:
    """Median over ``rounds`` of (event sample) / (dense sample), the two sampled one right
    after the other (a load change between rounds falls on both); each sample repeats its
    path until :data:`_SAMPLE_S` has passed, and is the time per call."""

    def sample(fn, calls: int) -> float:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - t0) / calls

    event()
    dense()  # warm: first calls pay compilation and allocation
    calls_e = max(1, int(_SAMPLE_S / max(sample(event, 1), 1e-7)))
    calls_d = max(1, int(_SAMPLE_S / max(sample(dense, 1), 1e-7)))
    ratios = sorted(sample(event, calls_e) / sample(dense, calls_d) for _ in range(rounds))
    return ratios[len(ratios) // 2]


def measure_linear_cpu(shape: tuple[int, int, int], reps: int = 5) -> float:
    """Crossover of the event Linear against ``F.linear`` on this CPU for ``(rows, in,
    out)``: event call (count pass, index, gather) and dense product alternate ``reps``
    rounds at each rate of :data:`_RATES` in turn, until the event path is slower or
    :data:`_BUDGET_S` is spent; :func:`crossover_from_ratios` turns the median ratios
    into the crossover."""
    from ..ops.event_linear import event_linear_apply, index_linear, scan_linear

    m, k, n = shape
    g = torch.Generator().manual_seed(0)
    w = torch.randn(k, n, generator=g).t()  # stored as EventLinear stores it
    b = torch.randn(n, generator=g)
    ratios: list[float] = []
    start = time.perf_counter()
    with torch.no_grad():
        for rate in _RATES:
            x = (torch.rand(m, k, generator=g) < rate).float()

            def event(x=x):
                return event_linear_apply(x, w, b, index_linear(x, scan_linear(x)))

            ratios.append(_alternating_ratio(
                event, lambda x=x: torch.nn.functional.linear(x, w, b), reps))  # fmt: skip
            if ratios[-1] > SAFE_RATIO or time.perf_counter() - start > _BUDGET_S:
                break
    return crossover_from_ratios(_RATES, ratios, SAFE_RATIO)


def _measured_cpu(shape: tuple[int, ...]) -> float | None:
    if getenv("NEUROSPARSE_MEASURE_CROSSOVER", "1") in ("0", "false", "no"):
        return None
    if math.prod(shape) < MEASURE_MIN_MACS:
        return None
    table = _load_measured()
    key = _bucket(shape)
    if key not in table:
        m, k, n = (1 << e for e in key)
        table[key] = measure_linear_cpu((m, k, n))
        try:
            path = _cache_file()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"x".join(map(str, kk)): r for kk, r in table.items()}))
        except OSError:
            pass  # an unwritable cache only costs a measurement per process
    return table[key]


def crossover(op: str, device: str, shape: tuple[int, ...]) -> float:
    """Crossover activity for ``op`` (``"linear"``/``"conv2d"``) on ``device``.

    An override (:func:`set_crossover`, ``NEUROSPARSE_EVENT_CROSSOVER``) first; then,
    for the Linear on the CPU, the rate measured on this machine (module docstring);
    else the nearest measured shape of the tables. Devices without a table (e.g.
    ``mps``) use the CPU table.
    """
    if (op, device) in _FIXED:
        return _FIXED[(op, device)]
    env = getenv("NEUROSPARSE_EVENT_CROSSOVER")
    if env:
        return float(env)
    if op == "linear" and device == "cpu":
        measured = _measured_cpu(shape)
        if measured is not None:
            return measured
    table = _TABLES.get((op, device)) or _TABLES[(op, "cpu")]
    # the nearest entry of a table, kept per shape: the search costs ~30 µs of host time
    # per call, a streaming step's budget; kept with its table, so a replaced table is
    # searched anew
    key = (op, device, tuple(shape))
    hit = _NEAREST.get(key)
    if hit is not None and hit[0] is table:
        return hit[1]

    def distance(entry: tuple[tuple[int, ...], float]) -> float:
        return sum(abs(math.log(max(1, a)) - math.log(max(1, b))) for a, b in zip(entry[0], shape))

    rate = min(table, key=distance)[1]
    if len(_NEAREST) < 4096:  # shapes follow the data: keep the cache bounded
        _NEAREST[key] = (table, rate)
    return rate


_NEAREST: dict[tuple, tuple] = {}  # (op, device, shape) -> (table, its nearest crossover)


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


def choose_conv_path(mode: str, device: str, shape: tuple[int, ...], scan) -> str:
    """:func:`choose_path` for an event Conv2d over its scan (``ops.event_conv2d``). A CUDA
    scan that was not read back is read (one synchronisation) only when ``"auto"`` needs
    the rate: not when a path is forced or the crossover is 0 (dense always won), nor
    read for NaN/inf unless ``NEUROSPARSE_CHECK_FINITE_GPU=1``."""
    check_choice("mode", mode, MODES)
    if not scan.exact:
        if finite_checks_on_gpu():
            scan.read_back()
        if mode != "auto":
            return mode
        if crossover("conv2d", device, shape) <= 0:
            return "dense"
        scan = scan.read_back()
    return choose_path(mode, "conv2d", device, shape, scan.rate)


# -- CUDA Linear: dense unless asked -------------------------------------------------------
CUDA_EVENT_ROWS = 4  # rows of one block of kernels/event_linear_cuda.py (RT)
# Device ceilings of the model (H200, measured here: device-to-device copy 4.3 TB/s
# counting read+write; dense rates are the datasheet's, which cuBLAS nears at large M)
_HBM_BYTES_PER_US = 4.3e6
_FLOPS_PER_US = {"fp32": 60e6, "tf32": 400e6, "bf16": 790e6}


def dense_precision(dtype: torch.dtype) -> str:
    """What a dense product of this dtype runs at: ``"bf16"``, ``"tf32"`` or ``"fp32"``
    (float32 follows ``allow_tf32`` / ``get_float32_matmul_precision``)."""
    if dtype in (torch.bfloat16, torch.float16):
        return "bf16"
    if dtype == torch.float32 and (torch.backends.cuda.matmul.allow_tf32
                                   or torch.get_float32_matmul_precision() != "highest"):
        return "tf32"
    return "fp32"


def dense_linear_us(m: int, k: int, n: int, dtype: torch.dtype) -> float:
    """Model of a dense CUDA Linear's device time: weight bytes over HBM bandwidth or its
    arithmetic at the precision torch uses, whichever is longer."""
    return max(k * n * dtype.itemsize / _HBM_BYTES_PER_US,
               2 * m * k * n / _FLOPS_PER_US[dense_precision(dtype)])  # fmt: skip


def cuda_linear_path(mode: str, m: int, k: int, n: int, dtype: torch.dtype) -> str:
    """``"event"`` or ``"dense"`` for a CUDA Linear call of ``m`` rows.

    ``"auto"`` takes dense. Measured on an H200 (``benchmarks/gpu_events.py``, RESULTS.md):
    an eager event call costs more host time (numba's launch path) than a 4096² dense
    product takes on the device at any precision; in a CUDA graph the event kernel beats
    cuBLAS only at low activity and few rows, and knowing the activity of a call needs a
    device->host read (a synchronisation, impossible inside graph capture). So auto does
    not gamble on CUDA: ``mode="event"`` asks for the event kernel where the caller knows
    its inputs are sparse (streaming inference captured in a graph), and an override
    (``NEUROSPARSE_EVENT_CROSSOVER`` >= 1 or ``set_crossover("linear", "cuda", 1.0)``)
    makes auto take it."""
    check_choice("mode", mode, MODES)
    if mode != "auto":
        return mode
    fixed = _FIXED.get(("linear", "cuda"))
    env = getenv("NEUROSPARSE_EVENT_CROSSOVER")
    if fixed is not None or env:
        return "event" if (fixed if fixed is not None else float(env)) >= 1 else "dense"
    return "dense"


# -- op counters fed from the CUDA kernel's on-device tally --------------------------------
class LiveCount:
    """A counter value read from a device tally when asked (``int()``): the event kernel
    adds each call's counts into the tally, so counting costs no launch and no sync."""

    def __init__(self, tally: torch.Tensor, col: int, scale: int, minus: int = -1,
                 offset: int = 0) -> None:  # fmt: skip
        self.tally, self.col, self.scale, self.minus, self.offset = tally, col, scale, minus, offset

    def __int__(self) -> int:
        t = self.tally.tolist()
        v = t[self.col] - (t[self.minus] if self.minus >= 0 else 0)
        return v * self.scale + self.offset

    def __add__(self, other) -> LiveCount:
        return LiveCount(self.tally, self.col, self.scale, self.minus, self.offset + int(other))

    __radd__ = __add__


def add_host_counts(c, inputs: int, dense_macs: int) -> None:
    """Add a CUDA Linear call's host-known counts to a counter dict whose device counts
    are live views of its tally (:func:`device_tally`)."""
    c["inputs_in"] = c.get("inputs_in", 0) + inputs
    c["dense_macs"] = c.get("dense_macs", 0) + dense_macs


def device_tally(counter, x2d: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The int64 ``[3]`` tally of ``counter`` (an ``OpCounter`` module) for the CUDA event
    kernel, and the host-known counts of this call. Its ``synops`` / ``macs`` /
    ``events_in`` / ``weight_bytes_read`` entries are :class:`LiveCount` views of the
    tally, made once (again after ``reset_counters`` or a change of device or weight)."""
    n_out, n_in = weight.shape
    m = x2d.shape[0]
    key = (x2d.device, n_out, weight.element_size())
    c = counter._counts()
    held = counter.__dict__.get("_ns_tally")
    if held is not None and held[0] == key and c.get("events_in") is held[2]:
        # the usual call: the live views stand; add what the host knows (plain ints)
        add_host_counts(c, m * n_in, m * n_in * n_out)
        return held[1]
    tally = torch.zeros(3, dtype=torch.int64, device=x2d.device)
    for name, live in (("synops", LiveCount(tally, 1, n_out)),
                       ("macs", LiveCount(tally, 0, n_out, minus=1)),
                       ("events_in", LiveCount(tally, 0, 1)),
                       ("weight_bytes_read", LiveCount(tally, 0,
                                                       n_out * weight.element_size()))):
        c[name] = live + int(c.get(name, 0))  # fmt: skip
    counter.__dict__["_ns_tally"] = (key, tally, c["events_in"])
    counter.count_ops(inputs_in=x2d.numel(), dense_macs=m * n_in * n_out)
    return tally


def run_cuda_linear(mode: str, x2d: torch.Tensor, weight: torch.Tensor,
                    bias: torch.Tensor | None, counter=None) -> tuple[torch.Tensor, str]:
    """One CUDA Linear call with no host synchronisation: the path from
    :func:`cuda_linear_path`, counts (when ``counter`` is given) into its device tally.

    NaN/inf inputs are not checked (that needs a read-back): they propagate to their
    output rows as in ``nn.Linear``. ``NEUROSPARSE_CHECK_FINITE_GPU=1`` checks them
    (raising ``InputValueError``) at the cost of one synchronisation per call."""
    from ..ops import event_linear as ops

    m, k = x2d.shape
    if finite_checks_on_gpu():  # opt-in: reading the check back synchronises
        ops.scan_linear(x2d)
    path = cuda_linear_path(mode, m, k, weight.shape[0], x2d.dtype)
    tally = None if counter is None else device_tally(counter, x2d, weight)
    if path == "dense":
        if tally is not None:
            ops.count_cuda(x2d, tally)
        return torch.nn.functional.linear(x2d, weight, bias), path
    index = ops.cuda_index(x2d, tally)  # no scan: the kernel compacts and counts
    return ops.event_linear_apply(x2d, weight, bias, index), path
