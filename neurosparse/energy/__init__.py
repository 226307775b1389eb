"""Energy and latency estimation for spiking and dense models on neuromorphic hardware.

>>> import neurosparse as ns                                     # doctest: +SKIP
>>> with ns.energy.Meter(model) as m:                            # doctest: +SKIP
...     model(spikes)
>>> report = m.report(hardware=["loihi", "speck", "gpu-a100-fp16", "cpu-45nm"])
>>> print(report); report.to_markdown("energy.md"); report.plot("energy.png")

See ``docs/energy.md`` for the counting rules, the energy/latency model and the
sources of every hardware constant.
"""

from __future__ import annotations

from .counts import FIELDS, LayerCounts
from .estimate import HardwareResult, estimate
from .meter import Meter
from .profiles import HardwareProfile, list_profiles, load_profile, validate_profile
from .report import Report
from .runner import cli_report

__all__ = [
    "Meter",
    "Report",
    "LayerCounts",
    "HardwareProfile",
    "HardwareResult",
    "FIELDS",
    "load_profile",
    "list_profiles",
    "validate_profile",
    "estimate",
    "cli_report",
]
