"""Plots: spike and event rasters, membrane traces, event-frame animations, sparsity over
time, energy per layer.

Every plot takes an optional ``ax`` and returns the matplotlib ``Axes`` it drew on (the
animation returns its ``FuncAnimation``), so plots compose into your own figures and
save with ``ax.figure.savefig(path)``. Nothing here selects a backend: without a display
matplotlib uses Agg by itself.

```python
from neurosparse import viz

out, spikes = viz.record_spikes(net, x)      # {layer: spikes [T, B, ...]}
viz.raster(spikes["2"]).figure.savefig("raster.png")
viz.sparsity_over_time(spikes)
viz.energy_per_layer(report)                 # report = ns.energy.Meter(...).report(...)
```
"""

from __future__ import annotations

from .animation import event_animation, event_frames, save_animation
from .energy import energy_per_layer
from .record import record_membrane, record_spikes
from .sparsity import sparsity_over_time, step_sparsity
from .spike_raster import raster
from .traces import membrane_traces

__all__ = [
    "raster",
    "membrane_traces",
    "event_animation",
    "event_frames",
    "save_animation",
    "sparsity_over_time",
    "step_sparsity",
    "energy_per_layer",
    "record_spikes",
    "record_membrane",
]
