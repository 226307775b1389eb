"""Run the CUDA-kernel tests of tests/cudasim/ under Numba's CUDA simulator (child processes).

The simulator runs every CUDA thread as a Python thread, so the suite takes about eleven
minutes on the 2-core VM and more on a slower CI machine. It runs in groups, each in its
own child process with its own time limit, so that one slow machine does not fail the
whole suite at one limit; the last group of each split file is the complement of the
others (``not (...)``), so a new test always lands in some group.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SIM = ROOT / "tests" / "cudasim"

# test_event_cases.py holds most of the simulator time (its wide, fused and list
# gathers launch thousands of simulated threads): split by test name
SPLITS = {
    "test_event_cases.py": [
        "wide_and_fused_gathers",
        "rows_tiles_and_chunks or kept_call_replays",
        "linear and not (wide_and_fused_gathers or rows_tiles_and_chunks or kept_call_replays)",
        "not linear",
    ],
}


def _groups() -> list:
    groups = []
    for path in sorted(SIM.glob("test_*.py")):
        for expr in SPLITS.get(path.name, [None]):
            groups.append(pytest.param(path.name, expr, id=f"{path.stem}[{expr or 'all'}]"))
    return groups


@pytest.mark.parametrize("name,expr", _groups())
def test_cuda_kernels_under_simulator(name, expr):
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "NEUROSPARSE_KERNELS": "numba"}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
           f"tests/cudasim/{name}"]  # fmt: skip
    if expr:
        cmd += ["-k", expr]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1500)  # fmt: skip
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, tail
    assert " passed" in proc.stdout, tail


def _collect(name: str, expr) -> list:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only",
           f"tests/cudasim/{name}"]  # fmt: skip
    if expr:
        cmd += ["-k", expr]
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return [ln for ln in proc.stdout.splitlines() if "::" in ln]


@pytest.mark.parametrize("name", sorted(SPLITS))
def test_split_groups_cover_every_simulator_test(name):
    # the groups of a split file must together select each of its tests exactly once
    everything = _collect(name, None)
    picked = [t for e in SPLITS[name] for t in _collect(name, e)]
    assert everything, name
    assert sorted(picked) == sorted(everything), name
