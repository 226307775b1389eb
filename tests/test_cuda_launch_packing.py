"""The fast CUDA launch packs kernel parameters the way numba's array ABI lays them out.

The launch itself needs a GPU (``tests/test_gpu.py`` holds it to numba's own launch
there); the packing is plain Python, so it is checked here on CPU tensors against NumPy's
view of the same memory and against numba's data model, which CI can run.
"""

import ctypes

import numpy as np
import pytest
import torch
from numba.core import types
from numba.core.datamodel import default_manager

from neurosparse.ops import cuda_env


def _flat(t) -> list:
    out = []
    for x in t:
        out += _flat(x) if isinstance(x, tuple) else [x]
    return out


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_array_parameter_count_is_numbas_flattened_model(ndim):
    arr = types.Array(types.float32, ndim, "C")
    model = default_manager.lookup(arr)
    assert model._fields == ("meminfo", "parent", "nitems", "itemsize", "data", "shape",
                             "strides")  # fmt: skip
    assert len(cuda_env._param_ctors(arr)) == len(_flat(model.get_argument_type()))


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.arange(24, dtype=torch.float32).view(4, 6),
        lambda: torch.arange(24, dtype=torch.float32).view(4, 6).t(),  # Fortran order
        lambda: torch.arange(48, dtype=torch.int32).view(4, 12)[1:, ::3],  # offset, gaps
        lambda: torch.zeros(5, dtype=torch.uint8),
        lambda: torch.arange(60, dtype=torch.bfloat16).view(3, 4, 5)[:, 1],
    ],
)
def test_array_values_are_numpys_view_of_the_same_memory(make):
    t = make()
    # bf16 has no NumPy dtype: read its bits through int16, which has the same layout
    a = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
    got = cuda_env._array_values(t)
    assert got == (0, 0, a.size, a.itemsize, a.ctypes.data, *a.shape, *a.strides)


def test_packed_params_interleave_arrays_and_typed_scalars():
    x = torch.arange(6, dtype=torch.float32).view(2, 3)
    y = torch.zeros(4, dtype=torch.int64)[1:]
    packed = cuda_env._Packed(None, [None, ctypes.c_float, None, int], None)
    params = packed.params([x, np.float32(0.5), y, 7])
    assert params[:9] == list(cuda_env._array_values(x))
    assert isinstance(params[9], ctypes.c_float) and params[9].value == 0.5
    assert params[10:17] == [0, 0, 3, 8, y.data_ptr(), 3, 8]
    assert params[17] == 7 and type(params[17]) is int
    assert len(params) == 18
