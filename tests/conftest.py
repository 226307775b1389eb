"""Shared test configuration.

CUDA kernels are tested with Numba's CUDA simulator, which must be switched on before
numba is first imported. The simulator tests live in ``tests/cudasim/`` and are run by
``tests/test_cudasim.py`` in a child process with ``NUMBA_ENABLE_CUDASIM=1``; the main
run does not collect that folder itself.

Real DVS recordings: ``$NEUROSPARSE_DVS_DATA``, else ``<repo>/../shared/data/dvs`` (a git
worktree elsewhere sets the variable); the ``dvs_data`` fixture skips with a reason when
they are absent.
"""

import os
from pathlib import Path

import pytest

collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["cudasim"]


def dvs_data_dir() -> Path:
    env = os.environ.get("NEUROSPARSE_DVS_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared/data/dvs"


@pytest.fixture
def dvs_data() -> Path:
    """Folder of the real recordings (see PROVENANCE.md there); skips when absent."""
    path = dvs_data_dir()
    if not path.is_dir():
        pytest.skip(f"real DVS recordings not found at {path} (set NEUROSPARSE_DVS_DATA)")
    return path
