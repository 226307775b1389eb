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
"""

import os

collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["cudasim"]
