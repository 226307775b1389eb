"""neurosparse: spiking and neuromorphic simulation that works only where there are events."""

from __future__ import annotations

import os
import sys

# Threads. Numba picks its threading layer itself (TBB, else OpenMP, else workqueue):
# TBB and OpenMP run parallel kernels from several Python threads at once, the
# workqueue layer aborts the process when two threads launch one, so the package no
# longer forces it; NUMBA_THREADING_LAYER=workqueue opts in (docs/conventions.md).
# OpenMP workers spin after each parallel region unless OMP_WAIT_POLICY=PASSIVE, and on
# few cores the spinning starves torch's threads (benchmarks/results/sdr.md: the next
# torch op ~15x slower on 2 cores). libgomp, shared with torch, reads the policy once
# when it loads, so it is set only if torch is not loaded yet and the user left it unset.
if "OMP_WAIT_POLICY" not in os.environ and "torch" not in sys.modules:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"


def _source_checkout_kernels() -> None:
    """Make ``neurosparse.kernels`` importable when this package is imported from a source
    checkout without an editable install: ``python -m neurosparse.train`` run in the
    repository after ``pip install .`` finds this folder first, and the kernels live
    beside it in ``kernels/`` (``pyproject.toml`` maps them into the package when it is
    built; an editable install's finder does the same). The module keeps its installed
    name, so Numba's on-disk cache entries are the same ones."""
    here = os.path.dirname(os.path.abspath(__file__))
    src = os.path.join(os.path.dirname(here), "kernels")
    if os.path.isdir(os.path.join(here, "kernels")) or not os.path.isfile(
            os.path.join(src, "__init__.py")):  # fmt: skip
        return
    import importlib.util

    if importlib.util.find_spec(f"{__name__}.kernels") is not None:  # an editable finder
        return
    spec = importlib.util.spec_from_file_location(
        f"{__name__}.kernels", os.path.join(src, "__init__.py"), submodule_search_locations=[src]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)


_source_checkout_kernels()

from . import data, energy, errors, interop, layers, plasticity, sdr, viz  # noqa: E402
from .layers import (  # noqa: E402
    DeltaConv2d,
    DeltaEncoder,
    DeltaGRU,
    DeltaLinear,
    DeltaLSTM,
    EventConv2d,
    EventLinear,
    SparseEventLinear,
    delta_penalty,
    temporal_sparsity,
)
from .neurons import ALIF, IF, LIF, CubaLIF, NeuronState, SpikingNeuron, surrogate  # noqa: E402
from .sdr import DendriticLinear, KWinners, KWinners2d  # noqa: E402
from .sequential import Sequential  # noqa: E402
from .streaming import GraphStream  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ALIF",
    "IF",
    "LIF",
    "CubaLIF",
    "DeltaConv2d",
    "DeltaEncoder",
    "DeltaGRU",
    "DeltaLSTM",
    "DeltaLinear",
    "EventConv2d",
    "EventLinear",
    "GraphStream",
    "DendriticLinear",
    "KWinners",
    "KWinners2d",
    "NeuronState",
    "Sequential",
    "SparseEventLinear",
    "SpikingNeuron",
    "data",
    "energy",
    "errors",
    "interop",
    "layers",
    "plasticity",
    "sdr",
    "surrogate",
    "delta_penalty",
    "temporal_sparsity",
    "viz",
    "__version__",
]
