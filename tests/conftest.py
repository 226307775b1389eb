"""Shared test configuration.

CUDA kernels are tested with Numba's CUDA simulator, which must be switched on before
numba is first imported. The simulator tests live in ``tests/cudasim/`` and are run by
``tests/test_cudasim.py`` in a child process with ``NUMBA_ENABLE_CUDASIM=1``; the main
run does not collect that folder itself.

Real event-camera recordings: tests find them with
``neurosparse.data.fetch_recordings.data_dir()`` (``$NEUROSPARSE_DATA_DIR``, else
``../shared/data/dvs`` beside the repository, else ``~/.cache/neurosparse/dvs``) and skip
with ``missing_reason()`` when they are absent; ``python -m
neurosparse.data.fetch_recordings`` downloads and verifies them.
The ``dvs_data`` fixture below does the same for tests that take the folder as a fixture.
"""

import os
import tempfile
from pathlib import Path

import pytest

from neurosparse.data.fetch_recordings import data_dir, missing_reason

# The CPU crossover of EventLinear(mode="auto") is measured once per machine and cached
# (layers/dispatch.py); the tests keep that cache out of the user's home folder.
os.environ.setdefault("NEUROSPARSE_CACHE_DIR", tempfile.mkdtemp(prefix="neurosparse-test-cache-"))

collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["cudasim"]


def dvs_data_dir() -> Path:
    return data_dir()


@pytest.fixture
def dvs_data() -> Path:
    """Folder of the real recordings (see PROVENANCE.md there); skips when absent."""
    path = dvs_data_dir()
    if not path.is_dir():
        pytest.skip(str(missing_reason()))
    return path
