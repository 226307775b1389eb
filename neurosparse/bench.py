"""``neurosparse bench``: is the event path a win for *your* layer on *this* machine?

Times one ``EventLinear`` call (``mode="event"`` and ``mode="auto"``) against what a user
could pick instead -- dense ``F.linear`` (fp32; on CUDA also TF32 and bf16 weights) and
``torch.sparse`` (the input turned into CSR inside the timed call, since spikes change
every call) -- on Bernoulli spikes of the given batch, sizes and rate. Every path's output
is checked against the fp32 dense product first; timings are medians with min-max of
round-robin rounds, and each is given as a ratio to the fastest. For claims, the scripts
in ``benchmarks/`` hold the full comparisons (peers, ``torch.compile``, physical floors).
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from ._checks import check_choice, check_range
from .errors import DeviceError, ParameterError


@dataclass
class BenchResult:
    """Timings of one layer shape (µs per call: median, min, max) and the setting."""

    device: str
    batch: int
    in_features: int
    out_features: int
    rate: float
    events: int
    rounds: int
    us: dict[str, dict[str, float]] = field(default_factory=dict)
    auto_path: str = ""

    def fastest(self) -> str:
        return min(self.us, key=lambda k: self.us[k]["median"])

    def table(self) -> str:
        best = self.us[self.fastest()]["median"]
        w = max(len(k) for k in self.us)
        lines = [f"{'path':<{w}}  {'median µs':>10}  {'min-max µs':>17}  {'x fastest':>9}"]
        for name, t in self.us.items():
            mark = "  <- fastest" if name == self.fastest() else ""
            lines.append(f"{name:<{w}}  {t['median']:>10.1f}  "
                         f"{t['min']:>8.1f}-{t['max']:<8.1f}  {t['median'] / best:>9.2f}{mark}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return asdict(self)


def _sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def _time_us(fn: Callable[[], object], sync: Callable[[], None], calls: int) -> float:
    sync()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    sync()
    return (time.perf_counter() - t0) / calls * 1e6


def run_bench(batch: int = 1, in_features: int = 4096, out_features: int = 4096,
              rate: float = 0.01, device: str = "cpu", rounds: int = 7,
              calls: int = 20, seed: int = 0) -> BenchResult:  # fmt: skip
    """Time the paths of the module docstring; see :class:`BenchResult`."""
    from .layers.event_linear import EventLinear

    sizes = {"batch": batch, "in_features": in_features, "out_features": out_features,
             "rounds": rounds, "calls": calls}
    for name, v in sizes.items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ParameterError(f"{name} must be a positive int, got {v!r}")
    check_range("rate", rate, 0.0, 1.0)
    check_choice("device", device, ("cpu", "cuda"))
    if device == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device 'cuda' asked for, but torch sees no CUDA device; "
                          "use --device cpu")
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, in_features, generator=g) < rate).float().to(device)
    layers = {m: EventLinear(in_features, out_features, mode=m, device=device)
              for m in ("event", "auto")}  # fmt: skip
    layers["auto"].load_state_dict(layers["event"].state_dict())
    w = layers["event"].weight.detach()
    b = layers["event"].bias.detach()
    # the fp32 product every path must reproduce (TF32 off while it is taken)
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    with torch.no_grad():
        ref = F.linear(x, w, b)
    paths: dict[str, tuple[Callable[[], torch.Tensor], float]] = {
        "EventLinear event": (lambda: layers["event"](x), 1e-4),
        "EventLinear auto": (lambda: layers["auto"](x), 1e-4),
        "dense F.linear fp32": (lambda: F.linear(x, w, b), 1e-4),
        "torch.sparse CSR": (lambda: torch.addmm(b, x.to_sparse_csr(), w.t()), 1e-4),
    }
    if device == "cuda":
        wb, bb, xb = w.bfloat16(), b.bfloat16(), x.bfloat16()

        def tf32_linear():
            torch.backends.cuda.matmul.allow_tf32 = True
            try:
                return F.linear(x, w, b)
            finally:
                torch.backends.cuda.matmul.allow_tf32 = False

        paths["dense F.linear TF32"] = (tf32_linear, 2e-2)
        paths["dense F.linear bf16"] = (lambda: F.linear(xb, wb, bb), 6e-2)
    res = BenchResult(device, batch, in_features, out_features, float(rate),
                      int((x != 0).sum()), rounds)  # fmt: skip
    sync = _sync(device)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # torch's note that CSR support is in beta, once per process: not the user's
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support")
            for name, (fn, tol) in paths.items():
                got = fn().float()
                err = float((got - ref).abs().max()) if got.numel() else 0.0
                scale = float(ref.abs().max()) if ref.numel() else 0.0
                if err > tol * max(1.0, scale):
                    raise RuntimeError(f"{name} differs from the fp32 product by {err:.3g}; "
                                       "not timing a wrong result")  # fmt: skip
            res.auto_path = str(layers["auto"].last_path)  # the path auto took
            times: dict[str, list[float]] = {k: [] for k in paths}
            for fn, _ in paths.values():  # warm-up (kernel compilation, caches)
                fn()
            for _ in range(rounds):
                for name, (fn, _) in paths.items():
                    times[name].append(_time_us(fn, sync, calls))
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32
    res.us = {k: {"median": statistics.median(v), "min": min(v), "max": max(v)}
              for k, v in times.items()}  # fmt: skip
    return res
