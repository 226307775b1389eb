"""Runs the CUDA-kernel tests of the event layers in the Numba CUDA simulator.

``NUMBA_ENABLE_CUDASIM`` must be set before numba is first imported, and this process
has imported it already, so the cases (``test_event_cudasim_cases.py``) run in a fresh
interpreter with the variable set. The subprocess's pytest output is shown on failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_cuda_kernels_in_simulator():
    here = Path(__file__).parent
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NEUROSPARSE_KERNELS="numba")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider",
         str(here / "test_event_cudasim_cases.py")],
        env=env, capture_output=True, text=True, timeout=600, cwd=here.parent,
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert " passed" in out and "skipped" not in out, out[-3000:]
