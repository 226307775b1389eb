"""The default demo: train a small spiking network on generated DVS recordings.

``neurosparse demo`` builds :class:`~neurosparse.data.SyntheticDVS` (bright or dark bars
moving in eight directions on a 32x32 sensor), bins the events into spike tensors
``[T, B, 2, 32, 32]``,
trains a two-layer LIF network with surrogate gradients for a few epochs on the CPU
(the input layer an event-driven ``EventLinear``: it gathers the weights of the pixels
that spiked instead of multiplying the zeros), and reports test accuracy, the spike
rate of every layer, and what one inference would cost on neuromorphic hardware.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from ._progress import progress_bar
from .data import SyntheticDVS, ToSpikeTensor, pad_time
from .energy import Meter
from .layers import EventLinear
from .neurons import LIF
from .neurons.surrogate import FastSigmoid
from .sequential import Sequential


@dataclass
class DemoConfig:
    n_train: int = 2048
    n_test: int = 512
    n_classes: int = 8
    sensor: int = 32
    dt_us: int = 5000
    time_bins: int = 20
    hidden: int = 128
    epochs: int = 5
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0


@dataclass
class DemoResult:
    accuracy: float
    chance: float
    train_accuracy: float
    spike_rates: dict[str, float] = field(default_factory=dict)
    input_rate: float = 0.0
    seconds: float = 0.0
    synops_per_inference: float = 0.0
    dense_macs_per_inference: float = 0.0
    energy_per_inference_j: dict[str, float] = field(default_factory=dict)
    energy_lines: list[str] = field(default_factory=list)


def build_model(cfg: DemoConfig) -> Sequential:
    """Flatten -> EventLinear -> LIF -> Linear -> LIF, applied to ``[T, B, 2, H, W]``."""
    n_in = 2 * cfg.sensor * cfg.sensor
    return Sequential(
        nn.Flatten(start_dim=2),
        EventLinear(n_in, cfg.hidden),
        LIF(beta=0.9, threshold=1.0, surrogate=FastSigmoid(10.0)),
        nn.Linear(cfg.hidden, cfg.n_classes),
        LIF(beta=0.9, threshold=1.0, surrogate=FastSigmoid(10.0)),
    )


def make_tensors(
    cfg: DemoConfig, n: int, seed: int, desc: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """All of a split as one spike tensor ``[T, N, 2, H, W]`` and labels ``[N]``; with
    ``desc``, a progress bar of that name (generating the data is the demo's first and
    longest silent stretch)."""
    size = (cfg.sensor, cfg.sensor, 2)
    tf = ToSpikeTensor(sensor_size=size, dt_us=cfg.dt_us, n_time_bins=cfg.time_bins, start_time=0)
    ds = SyntheticDVS(n, cfg.n_classes, size, cfg.dt_us * cfg.time_bins, seed=seed, transform=tf)
    idx = progress_bar(range(n), enabled=desc is not None, desc=desc, unit="recording")
    return pad_time([ds[i] for i in idx])


def spike_count_loss(out_spikes: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on output spike counts (rate coding)."""
    return nn.functional.cross_entropy(out_spikes.sum(0), labels)


def train_epoch(model, opt, x, y, batch_size, gen, progress=None) -> float:
    """One pass in random order; returns the accuracy seen during the pass."""
    model.train()
    correct = 0
    order = torch.randperm(y.shape[0], generator=gen)
    for k in range(0, y.shape[0], batch_size):
        idx = order[k : k + batch_size]
        out, _ = model(x[:, idx])
        loss = spike_count_loss(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        correct += (out.sum(0).argmax(1) == y[idx]).sum().item()
        if progress is not None:
            progress.update(1)
            progress.set_postfix(loss=f"{loss.item():.3f}")
    return correct / y.shape[0]


@torch.no_grad()
def evaluate(model, x, y, batch_size: int = 128) -> tuple[float, dict[str, float]]:
    """Accuracy and the mean spike rate (spikes per neuron per step) of each LIF layer."""
    model.eval()
    rates: dict[str, list[float]] = {}
    hooks = []
    for name, m in model.named_modules():
        if getattr(m, "is_spiking_neuron", False):
            def hook(mod, inp, out, name=name):
                rates.setdefault(f"{name}:{type(mod).__name__}", []).append(out[0].mean().item())
            hooks.append(m.register_forward_hook(hook))
    correct = 0
    try:
        for k in range(0, y.shape[0], batch_size):
            out, _ = model(x[:, k : k + batch_size])
            correct += (out.sum(0).argmax(1) == y[k : k + batch_size]).sum().item()
    finally:
        for h in hooks:
            h.remove()
    return correct / y.shape[0], {k: sum(v) / len(v) for k, v in rates.items()}


def run_demo(cfg: DemoConfig | None = None, progress: bool = True) -> DemoResult:
    cfg = cfg or DemoConfig()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    names = ("generating train data", "generating test data") if progress else (None, None)
    x_tr, y_tr = make_tensors(cfg, cfg.n_train, cfg.seed, names[0])
    x_te, y_te = make_tensors(cfg, cfg.n_test, cfg.seed + 1, names[1])
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    steps = cfg.epochs * -(-cfg.n_train // cfg.batch_size)
    if progress:  # the first step waits for the kernels: say why it is slow
        tqdm.write("loading the Numba kernels (compiled on the first run only, then cached)")
    bar = progress_bar(total=steps, enabled=progress, desc="training")
    train_acc = 0.0
    for _ in range(cfg.epochs):
        train_acc = train_epoch(model, opt, x_tr, y_tr, cfg.batch_size, gen, bar)
    bar.close()
    acc, rates = evaluate(model, x_te, y_te)
    report = energy_report(model, x_te[:, :64])
    totals = report.totals
    return DemoResult(
        accuracy=acc, chance=1.0 / cfg.n_classes, train_accuracy=train_acc, spike_rates=rates,
        input_rate=x_te.mean().item(), seconds=time.perf_counter() - t0,
        synops_per_inference=totals["synops"], dense_macs_per_inference=totals["dense_macs"],
        energy_per_inference_j={r.name: r.energy_j for r in report.hardware},
        energy_lines=energy_lines(report),
    )  # fmt: skip


HARDWARE = ("loihi", "speck", "cpu-45nm", "gpu-a100-fp16")


def energy_lines(report) -> list[str]:
    """The demo's energy table: one row per profile, then one line per column."""
    from .energy import _format as fmt
    from .energy.report import bound_mark, dynamic_text

    rows = [f"{'energy / inference on':<22} {'total':>10} {'dynamic':>13} {'static':>10} "
            f"{'latency':>9}  provenance"]
    for r in report.hardware:
        # every energy of a lower-bound profile is one, as in the report's tables; Speck's
        # dynamic energy is "not published", not 0 J
        b = bound_mark(r)
        e, st = (b + fmt.unit(v, "J") for v in (r.energy_j, r.static_j))
        d = dynamic_text(r, r.dynamic_j)
        rows.append(f"  {r.name:<20} {e:>10} {d:>13} {st:>10} "
                    f"{fmt.unit(r.latency_s, 's'):>9}  {r.provenance}")
    rows += [
        "  total = dynamic + static; dynamic = counted ops x the profile's energy per op",
        "  (not published: the profile has no energy per op; total is static only);",
        "  static = static power x latency for the cores the network occupies (whole CPU/GPU);",
        "  latency = the profile's latency model (pipelined layers on neuromorphic chips);",
        "  provenance = measured silicon (-quoted: second-hand) / pre-silicon / estimate /",
        "  lower-bound (≥: the true energy is higher). Constants and sources: docs/energy.md",
    ]
    return rows


@torch.no_grad()
def energy_report(model, x: torch.Tensor, hardware=HARDWARE):
    """Count what ``model`` does on ``x`` and estimate it on ``hardware`` profiles."""
    model.eval()
    with Meter(model) as meter:
        model(x)
    return meter.report(hardware=list(hardware))
