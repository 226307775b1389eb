"""Torch-free Numba kernels (installed as ``neurosparse.kernels``).

Each op has a CPU twin (``numba.njit``) and, where it exists, a CUDA twin
(``numba.cuda.jit``) in its own module. Nothing here imports torch.
"""
