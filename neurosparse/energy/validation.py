"""Our estimates beside published measurements on silicon.

``python -m neurosparse.energy.validation`` prints the table of ``docs/energy.md``.

Every case builds the measured network with the sizes of the paper, runs it under a
:class:`~neurosparse.energy.Meter` with the activity stated in ``assumption`` (spikes
drawn at a fixed rate, so the counts do not depend on trained weights that are not
public), and puts our figure beside the paper's. The cases, all from

    Blouw, Choo, Hunsberger, Eliasmith (2019). "Benchmarking keyword spotting efficiency
    on neuromorphic hardware." Proc. 7th Annual Neuro-inspired Computational Elements
    Workshop (NICE '19), ACM. arXiv:1812.01739, Table 1 (measured power: idle, running,
    dynamic = running - idle; inferences per second; joules per inference = dynamic
    power / inferences per second).

The network is the keyword spotter of that paper: 390 inputs (MFCC features), two
hidden layers of 256 units, 29 character outputs, batch 1 (sizes from the authors' code,
``abr/power_benchmarks``, ``models.py``: ``n_inputs=390``, ``n_per_layer=256``, 26
letters + 3 symbols).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .meter import Meter

SOURCE = ("Blouw, Choo, Hunsberger & Eliasmith 2019, NICE '19 (arXiv:1812.01739), "
          "Table 1")
SIZES = (390, 256, 256, 29)


class RateSpikes(nn.Module):
    """A neuron stand-in that fires with a fixed probability per step (stated activity)."""

    is_spiking_neuron = True

    def __init__(self, rate: float, seed: int):
        super().__init__()
        self.rate = rate
        self.gen = torch.Generator().manual_seed(seed)

    def forward(self, x, state=None):
        spikes = (torch.rand(x.shape, generator=self.gen) < self.rate).to(x.dtype)
        return spikes, torch.zeros_like(x) if state is None else state


class KWS(nn.Module):
    """390-256-256-29; ``act`` is ``"relu"`` (the ANN on CPU/GPU) or a spike rate."""

    def __init__(self, act: str | float):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(SIZES[:-1], SIZES[1:]))
        if act == "relu":
            self.act = nn.ModuleList(nn.ReLU() for _ in self.fc)
        else:
            self.act = nn.ModuleList(RateSpikes(float(act), seed=i) for i in range(3))

        self.state: list = [None] * len(self.fc)

    def forward(self, x):
        for i, (fc, act) in enumerate(zip(self.fc, self.act)):
            x = act(fc(x)) if isinstance(act, nn.ReLU) else act(fc(x), self.state[i])
            if isinstance(x, tuple):  # a step of a stateful neuron: carry its state on
                x, self.state[i] = x
        return x


@dataclass
class Case:
    """One published measurement and how we model it."""

    key: str
    chip: str
    profile: str
    quantity: str  # "dynamic_j" or "latency_s"
    paper: float
    paper_text: str
    assumption: str
    gap: str


RATE, STEPS = 0.2, 10
CASES = (
    Case("loihi-energy", "Intel Loihi (paper's Table 1 row 'Loihi')", "loihi", "dynamic_j",
         0.081 / 296,
         "0.27 mJ (0.081 W dynamic / 296 inf/s)",
         f"spiking net, {STEPS} steps per inference, input and every layer firing with "
         f"probability {RATE} per step (paper gives no activity; assumption)",
         "the measured dynamic power includes the chip's x86 cores and host I/O that feed "
         "MFCC windows and read outputs (throughput 296 inf/s is I/O bound); the per-op "
         "model charges only synaptic ops, neuron updates and spikes"),
    Case("loihi-latency", "Intel Loihi (paper's Table 1 row 'Loihi')", "loihi", "latency_s",
         1 / 296,
         "3.38 ms (1 / 296 inf/s)", "as above",
         "the paper's rate is bound by host-chip I/O; our latency model is the chip's own "
         "compute time, unthrottled"),
    Case("cpu-energy", "CPU (paper's Table 1 row 'CPU')", "cpu-45nm", "dynamic_j",
         11.47 / 1813.63, "6.3 mJ (11.47 W dynamic / 1813.63 inf/s)",
         "ReLU ANN, one step, batch 1, every MAC executed",
         "45 nm circuit energies of the arithmetic and SRAM only; the measurement is a "
         "whole processor running TensorFlow at batch 1, dominated by framework and "
         "uncore power: the profile is an estimate of the arithmetic, not of a CPU"),
    Case("gpu-energy", "GPU (paper's Table 1 row 'GPU')", "gpu-a100-fp16", "dynamic_j",
         22.86 / 770.39, "29.8 mJ (22.86 W dynamic / 770.39 inf/s)",
         "ReLU ANN, one step, batch 1, every MAC executed",
         "the profile is a lower bound (energy per MAC of a fully used A100); a batch-1 "
         "network of 173k MACs leaves a GPU idle but powered; a different GPU model"),
)


def _run(case: Case) -> tuple[float, Meter]:
    spiking = case.profile == "loihi"
    net = KWS(RATE if spiking else "relu")
    gen = torch.Generator().manual_seed(1)
    with Meter(net) as meter, torch.no_grad():
        if spiking:
            for _ in range(STEPS):
                net((torch.rand(1, SIZES[0], generator=gen) < RATE).float())
        else:
            net(torch.rand(1, SIZES[0], generator=gen))
    result = meter.report(hardware=[case.profile]).hardware[0]
    return float(getattr(result, case.quantity)), meter


def evaluate() -> list[dict]:
    """Each case with our figure, the paper's and ours / paper."""
    rows = []
    for case in CASES:
        ours, _ = _run(case)
        rows.append({"case": case, "ours": ours, "paper": case.paper,
                     "ratio": ours / case.paper})
    return rows


def markdown(rows: list[dict]) -> str:
    from . import _format as fmt
    from .profiles import load_profile

    lines = ["| measured on | quantity | paper (measured) | ours | ours / paper | profile "
             "(provenance) | our assumption | why the gap |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        c = r["case"]
        unit = "J" if c.quantity.endswith("_j") else "s"
        q = "dynamic energy / inference" if unit == "J" else "time / inference"
        lines.append(
            f"| {c.chip} | {q} | {c.paper_text} | {fmt.unit(r['ours'], unit)} | "
            f"{r['ratio']:.2g} | `{c.profile}` ({load_profile(c.profile).provenance}) | "
            f"{c.assumption} | {c.gap} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover - prints the docs table
    print(f"Source of every measurement: {SOURCE}\n")
    print(markdown(evaluate()))
