"""The fast CUDA launch packs kernel parameters the way numba's array ABI lays them out.

The launch itself needs a GPU (``tests/test_gpu.py`` holds it to numba's own launch
there); the parameter block is plain Python and ctypes, so it is checked here on CPU
tensors against NumPy's view of the same memory and against numba's data model, which
CI can run.
"""

import ctypes
import threading

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
    assert 5 + 2 * cuda_env._param_layout(arr) == len(_flat(model.get_argument_type()))


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.arange(24, dtype=torch.float32).view(4, 6),
        lambda: torch.arange(24, dtype=torch.float32).view(4, 6).t(),  # Fortran order
        lambda: torch.arange(48, dtype=torch.int32).view(4, 12)[1:, ::3],  # offset, gaps
        lambda: torch.zeros(5, dtype=torch.uint8),
        lambda: torch.arange(10, dtype=torch.float32)[1::3],  # 1-D, offset and stride
        lambda: torch.tensor(0.9),  # 0-d: a LIF step's scalar parameter
        lambda: torch.arange(24, dtype=torch.int64).view(2, 3, 4),
        lambda: torch.arange(60, dtype=torch.bfloat16).view(3, 4, 5)[:, 1],
    ],
)
def test_array_values_are_numpys_view_of_the_same_memory(make):
    t = make()
    # bf16 has no NumPy dtype: read its bits through int16, which has the same layout
    a = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy()
    got = cuda_env._array_values(t)
    assert got == (0, 0, a.size, a.itemsize, a.ctypes.data, *a.shape, *a.strides)


def _block(layout, args):
    kinds = tuple(map(cuda_env._arg_kind, args))
    return cuda_env._Packed(None, layout, kinds, None).slots()


def _read_pointers(slots) -> list:
    """What the driver reads: each parameter through its pointer, as int64 or float."""
    out = []
    for i, x in enumerate(slots.layout):
        first = sum(5 + 2 * y if type(y) is int else 1 for y in slots.layout[:i])
        n = 5 + 2 * x if type(x) is int else 1
        kind = ctypes.c_int64 if type(x) is int else x
        out += [kind.from_address(slots.pointers[first + j]).value for j in range(n)]
    return out


def test_block_interleaves_arrays_and_typed_scalars():
    x = torch.arange(6, dtype=torch.float32).view(2, 3)
    y = torch.zeros(4, dtype=torch.int64)[1:]
    slots = _block([2, ctypes.c_float, 1, ctypes.c_int64], [x, np.float32(0.5), y, 7])
    assert slots.fill([x, np.float32(0.5), y, 7])
    params = slots.values()
    assert params[:9] == list(cuda_env._array_values(x))
    assert params[9] == 0.5
    assert params[10:17] == [0, 0, 3, 8, y.data_ptr(), 3, 8]
    assert params[17] == 7
    assert len(params) == 18
    assert _read_pointers(slots) == params


def test_block_rewrites_only_what_changed_and_refuses_other_kinds():
    a = torch.arange(12, dtype=torch.float32).view(3, 4)
    slots = _block([2, ctypes.c_float], [a, np.float32(1.0)])
    assert slots.fill([a, np.float32(1.0)])
    b = torch.zeros(5, 2)  # same kind (fp32, rank 2, C order), other memory and shape
    assert slots.fill([b, np.float32(-2.5)])
    assert slots.values() == [*cuda_env._array_values(b), -2.5]
    assert _read_pointers(slots) == slots.values()
    # a view of b's memory in Fortran order: same pointer, another kind
    assert not slots.fill([b.t(), np.float32(0.0)])
    assert not slots.fill([b.double(), np.float32(0.0)])
    assert not slots.fill([b, 0.0])  # a Python float is not the np.float32 it was typed as
    assert not slots.fill([b])
    c = torch.ones(2, 7)
    assert slots.fill([c, np.float32(3.0)])  # usable again after a refusal
    assert slots.values() == [*cuda_env._array_values(c), 3.0]


def test_each_thread_has_its_own_block():
    x = torch.zeros(3)
    packed = cuda_env._Packed(None, [1], (cuda_env._arg_kind(x),), None)
    mine = packed.slots()
    other = []
    t = threading.Thread(target=lambda: other.append(packed.slots()))
    t.start()
    t.join()
    assert packed.slots() is mine and other[0] is not mine
    assert other[0].address != mine.address


def test_environment_picks_the_launch_path(monkeypatch):
    monkeypatch.setattr(cuda_env, "_SIM", [False])
    for value, mode in (("driver", "driver"), ("1", "driver"), ("core", "core"), ("0", "off"),
                        ("no", "off")):  # fmt: skip
        monkeypatch.setenv("NEUROSPARSE_CUDA_FAST_LAUNCH", value)
        assert cuda_env.fast_launch_mode() == mode
    monkeypatch.delenv("NEUROSPARSE_CUDA_FAST_LAUNCH")
    assert cuda_env.fast_launch_mode() == "driver"
    monkeypatch.setattr(cuda_env, "_SIM", [True])  # the simulator: numba's launch only
    monkeypatch.setenv("NEUROSPARSE_CUDA_FAST_LAUNCH", "driver")
    assert cuda_env.fast_launch_mode() == "off"


def test_driver_path_without_a_driver_handle_launches_through_cuda_core(monkeypatch):
    # the default path on a machine without cuda.bindings: the kept overload has no
    # CUfunction, so each call goes to cuda.core instead of numba's slow dispatcher
    monkeypatch.setattr(cuda_env, "fast_launch_mode", lambda: "driver")
    monkeypatch.setattr(cuda_env, "_thread", threading.local())
    x = torch.zeros(3)
    kernel = object()
    packed = cuda_env._Packed(None, [1, ctypes.c_float], (cuda_env._arg_kind(x),
                                                          cuda_env._arg_kind(1.5)), None)
    monkeypatch.setitem(cuda_env._packed, (kernel, *packed.kinds), packed)
    calls = []
    monkeypatch.setattr(cuda_env, "_fast_core", lambda p, *a: calls.append((p, a)))
    monkeypatch.setattr(cuda_env, "_fast", lambda *a: pytest.fail("no driver handle to use"))
    cuda_env.launch(kernel, 1, 32, "stream", x, 1.5)
    assert calls == [(packed, (1, 32, "stream", (x, 1.5)))]
