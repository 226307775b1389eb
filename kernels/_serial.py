"""Single-threaded twins of the parallel CPU kernels, each cached under its own name.

A call too small to pay for starting a parallel region (~0.2 ms on the 2-core VM, more
when its cores are busy) runs a twin compiled without threads from the same Python
function. The twin must not be ``numba.njit(cache=True)(kernel.py_func)``: Numba names
its on-disk cache entry after the function's module, qualified name and first line, and
the index inside does not record ``parallel=True``, so such a twin shares the parallel
kernel's entry and whichever compiled first is loaded for both. That happened here: with
the serial code loaded for it, the parallel event gather at 3200 x 4096, 1 % input ran
80 ms on one core instead of 43 ms on two (2-core Intel Xeon VM).
"""

from __future__ import annotations

import types

import numba

# elements below which a pass over an input runs its twin: the event index's count and
# fill passes, the delta encoder and the running sum share one limit
SERIAL_BELOW = 1 << 17


def serial_twin(kernel):
    """``kernel``'s Python function compiled by ``numba.njit(cache=True)`` under the
    name ``<name>_serial`` (its own cache entry)."""
    f = kernel.py_func
    name = f.__name__ + "_serial"
    twin = types.FunctionType(f.__code__, f.__globals__, name, f.__defaults__, f.__closure__)
    twin.__qualname__ = f.__qualname__ + "_serial"
    twin.__module__ = f.__module__
    twin.__doc__ = f.__doc__
    return numba.njit(cache=True)(twin)
