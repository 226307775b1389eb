"""A model file for ``neurosparse report``: a two-layer SNN on SyntheticDVS-sized input.

    neurosparse report examples/report_model.py:build --data example
    neurosparse report examples/report_model.py:build --data synthetic-dvs:8 \
        --hardware loihi,cpu-45nm,gpu-a100-fp16
"""

from torch import nn

import neurosparse as ns


def build():
    """Return the model and an example input ``[T, B, 2, 32, 32]`` (8 generated DVS
    recordings; ``--data`` replaces it)."""
    model = ns.Sequential(
        nn.Flatten(start_dim=2),
        nn.Linear(2 * 32 * 32, 128),
        ns.LIF(beta=0.9),
        nn.Linear(128, 8),
        ns.LIF(beta=0.9),
    )
    return model, ns.data.load_sample("synthetic-dvs:8")
