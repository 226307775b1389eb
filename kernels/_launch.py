"""How the torch-free CUDA launchers of this folder start a kernel.

They call ``_launch.launch(kernel, grid, block, stream, *args)`` rather than
``kernel[grid, block, stream](*args)`` so that ``neurosparse.ops.cuda_env`` can put its
cheaper launcher here (it skips numba-cuda's per-call argument typing; see that
module). Used alone, this folder launches through numba as usual.
"""

from __future__ import annotations


def plain(kernel, grid, block, stream, *args) -> None:
    """numba-cuda's own launch."""
    kernel[grid, block, stream](*args)


launch = plain


def set_launcher(fn) -> None:
    """Route every launch of this folder's CUDA launchers through ``fn``."""
    global launch
    launch = fn
