"""Run the CUDA-kernel tests of tests/cudasim/ under Numba's CUDA simulator (child process)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cuda_kernels_under_simulator():
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "NEUROSPARSE_KERNELS": "numba"}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/cudasim"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout, tail
