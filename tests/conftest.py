"""Shared test configuration.

CUDA kernels are tested with Numba's CUDA simulator, which must be switched on before
numba is first imported. The simulator tests live in ``tests/cudasim/`` and are run by
``tests/test_cudasim.py`` in a child process with ``NUMBA_ENABLE_CUDASIM=1``; the main
run does not collect that folder itself.
"""

import os

collect_ignore = [] if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" else ["cudasim"]
